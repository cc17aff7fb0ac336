"""The update-source plug-in interface: what a distribution's update repository offers.

An update source fetches and verifies its indexes and returns them as plain
data: one :class:`PackagesIndex` per (suite, component, architecture). The
candidate computation (``_candidates.py``) and the changelog reader
(``_changelog.py``) work on that data only. Implementations are sibling
modules: ``apt.py`` (Debian-style apt repositories).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple, Protocol

import httpx

from patchline._findings import AssessSkip
from patchline.errors import (
    IndexExpiredError,
    IndexFormatError,
    IndexIntegrityError,
    IndexSignatureError,
    UpdateSourceError,
)

__all__ = [
    "DEBIAN_ARCHIVE_KEYRING",
    "BinaryPackage",
    "FetchOptions",
    "IndexExpiredError",
    "IndexFormatError",
    "IndexIntegrityError",
    "IndexSignatureError",
    "PackagesIndex",
    "ReleaseInfo",
    "SourceIndexes",
    "UpdateSource",
    "UpdateSourceError",
]

DEBIAN_ARCHIVE_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
"""Where Debian's ``debian-archive-keyring`` package installs the archive keys."""
UBUNTU_ARCHIVE_KEYRING = Path("/usr/share/keyrings/ubuntu-archive-keyring.gpg")
"""Where the ``ubuntu-keyring`` package (Debian's, and Ubuntu's own) installs Ubuntu's archive keys."""


class BinaryPackage(NamedTuple):
    """One stanza of a Packages index, reduced to what the upgrade computation reads.

    A NamedTuple, not a dataclass: an index holds ~60,000 of them and a tuple
    loads from the parsed cache several times faster. Relation fields keep their
    raw text (``""`` when absent); ``_relations`` parses the few that are needed.
    """

    name: str
    version: str
    arch: str
    source_name: str
    source_version: str
    filename: str  # relative to the repository root (the suite URL's archive root)
    sha256: str
    size: int
    depends: str = ""
    pre_depends: str = ""
    breaks: str = ""
    conflicts: str = ""
    provides: str = ""


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    """The verified ``Release`` fields of one suite."""

    suite: str | None
    codename: str | None
    date: datetime | None
    valid_until: datetime | None
    components: tuple[str, ...]
    architectures: tuple[str, ...]
    acquire_by_hash: bool
    sha256: Mapping[str, tuple[str, int]]  # path below dists/SUITE/ -> (hex digest, size)
    signed_by: str | None  # the signing key's fingerprint; None when the signature was skipped
    document_sha256: str | None = None  # of the InRelease (or Release) file read: what provenance records


@dataclass(frozen=True, slots=True)
class PackagesIndex:
    """The parsed Packages index of one suite component for one architecture."""

    url: str  # archive root, ``.deb`` ``Filename`` fields are relative to it
    suite: str
    component: str
    arch: str
    sha256: str  # of the index file the packages were parsed from
    packages: tuple[BinaryPackage, ...]
    by_name: Mapping[str, tuple[BinaryPackage, ...]] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def build(
        cls, *, url: str, suite: str, component: str, arch: str, sha256: str, packages: tuple[BinaryPackage, ...]
    ) -> PackagesIndex:
        by_name: dict[str, list[BinaryPackage]] = {}
        for pkg in packages:
            by_name.setdefault(pkg.name, []).append(pkg)
        frozen = {name: tuple(entries) for name, entries in by_name.items()}
        return cls(url, suite, component, arch, sha256, packages, frozen)

    @property
    def label(self) -> str:
        """``URL SUITE/COMPONENT`` as reports show it."""
        return f"{self.url} {self.suite}/{self.component}"


@dataclass(frozen=True, slots=True)
class SourceIndexes:
    """What loading a set of update sources gave: the usable indexes and the skipped ones."""

    indexes: tuple[PackagesIndex, ...]
    skipped: tuple[AssessSkip, ...] = ()
    sources: tuple[str, ...] = ()  # "URL suite" of every source that was tried
    missing: tuple[str, ...] = ()  # the ``what`` of skips whose source is not there at all (SuiteMissing)
    releases: tuple[tuple[str, ReleaseInfo], ...] = ()  # ("URL suite", its verified Release) of each suite read

    @property
    def unread(self) -> tuple[AssessSkip, ...]:
        """Skips of sources that are there but could not be read or trusted (an outage, a bad signature):
        planned without them, their updates would look applied."""
        return tuple(s for s in self.skipped if s.what not in self.missing)

    @property
    def revision(self) -> str:
        """Short hash of the loaded indexes' contents: changes exactly when one of them does."""
        return hashlib.sha256(" ".join(sorted(i.sha256 for i in self.indexes)).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """How indexes are fetched and trusted.

    ``keyring`` is a binary OpenPGP keyring (``gpg --export`` output) handed to
    ``gpgv``. ``unsafe_skip_signature`` reads an unsigned or badly signed index:
    for tests and air-gapped mirrors only, never the default.
    """

    keyring: Path = DEBIAN_ARCHIVE_KEYRING
    unsafe_skip_signature: bool = False
    cache_dir: Path | None = None  # None: patchline.inventory.default_cache_dir() / "apt"
    client: httpx.Client | None = None  # None: one is made per call
    now: datetime | None = None  # None: the current time (for Valid-Until)
    timeout: float = 60.0


class UpdateSource(Protocol):
    """A distribution repository that offers updates; implementations are sibling modules."""

    @property
    def label(self) -> str:
        """``URL suite``, as :attr:`patchline.assess.model.Assessment.sources` shows it."""

    def fetch(self, options: FetchOptions) -> SourceIndexes:
        """Fetch, verify and parse this source's indexes.

        A component whose index is unusable is a skip in the result; a source
        that cannot be trusted at all (signature, expiry) raises
        :class:`UpdateSourceError`.
        """
        ...
