"""Update sources: what the distribution's own update repositories offer an image.

``sources_from_image_files`` picks an image's default sources (its release's
``-security`` and ``-updates`` suites on the host's mirrors); ``load_sources``
fetches and verifies their indexes; ``plan_upgrade`` / ``pending_updates``
compute what ``apt-get upgrade`` inside the image would install or keep back;
``read_changelogs`` fills in the CVEs each update's changelog names.
"""

from patchline.updates._candidates import CandidateDeb, KeptBack, UpgradePlan, pending_updates, plan_upgrade
from patchline.updates._changelog import (
    ChangelogEntry,
    ChangelogResult,
    changelog_entries,
    cves_since,
    read_changelogs,
)
from patchline.updates._packages import parse_packages
from patchline.updates._sources import (
    IMAGE_SOURCE_GLOBS,
    mirror_from_image_files,
    sources_from_image_files,
    ubuntu_sources_from_image_files,
)
from patchline.updates.apt import AptSuite, default_apt_cache_dir, load_sources
from patchline.updates.interface import (
    DEBIAN_ARCHIVE_KEYRING,
    UBUNTU_ARCHIVE_KEYRING,
    BinaryPackage,
    FetchOptions,
    IndexExpiredError,
    IndexFormatError,
    IndexIntegrityError,
    IndexSignatureError,
    PackagesIndex,
    ReleaseInfo,
    SourceIndexes,
    UpdateSource,
    UpdateSourceError,
)

__all__ = [
    "DEBIAN_ARCHIVE_KEYRING",
    "IMAGE_SOURCE_GLOBS",
    "UBUNTU_ARCHIVE_KEYRING",
    "AptSuite",
    "BinaryPackage",
    "CandidateDeb",
    "ChangelogEntry",
    "ChangelogResult",
    "FetchOptions",
    "IndexExpiredError",
    "IndexFormatError",
    "IndexIntegrityError",
    "IndexSignatureError",
    "KeptBack",
    "PackagesIndex",
    "ReleaseInfo",
    "SourceIndexes",
    "UpdateSource",
    "UpdateSourceError",
    "UpgradePlan",
    "changelog_entries",
    "cves_since",
    "default_apt_cache_dir",
    "load_sources",
    "mirror_from_image_files",
    "parse_packages",
    "pending_updates",
    "plan_upgrade",
    "read_changelogs",
    "sources_from_image_files",
    "ubuntu_sources_from_image_files",
]
