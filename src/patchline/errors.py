"""The one exception tree of patchline.

Every error patchline raises on purpose is an :class:`Error`; third-party errors
are translated at the boundary with ``raise ... from exc``. The CLI catches
``Error`` once, prints one line (the detail with ``-v``) and exits with 2.

::

    Error
    ├── ConfigError                 patchline.toml or an option is wrong
    ├── ReferenceError_             an image reference cannot be parsed
    ├── SourceError                 reading an image failed
    │   ├── RegistryError           the registry answered badly or went away
    │   │   └── AuthError           credentials missing or refused
    │   ├── ImageNotFound           no such image, tag or blob
    │   ├── ManifestError           a manifest, index or config is malformed
    │   ├── PlatformError           no manifest for the wanted platform
    │   └── BlobError               a blob is corrupt
    │       ├── DigestMismatch      its content does not hash to its digest
    │       └── LayerError          a layer cannot be decompressed or untarred
    ├── CatalogError                a cataloger cannot parse a file (becomes a Skipped)
    ├── CacheError                  the catalog cache cannot be used
    ├── SbomError                   an SBOM cannot be written
    ├── UpdateSourceError           an apt update source cannot be used (the suite is skipped)
    │   ├── IndexSignatureError     InRelease unsigned, badly signed or signed by an unknown key
    │   ├── IndexExpiredError       the Release file's Valid-Until has passed
    │   ├── IndexIntegrityError     an index or .deb does not match its SHA256 or size
    │   ├── IndexFormatError        a Release or Packages file is malformed
    │   ├── SuiteMissing            the suite, component or architecture is not there: nothing to update from
    │   └── NoUpdateRoute           patchline cannot tell or reach an image's update sources: assessed as unknown
    ├── AdvisoryError               advisory data cannot be used
    │   ├── FeedError               an advisory feed cannot be read at all (a bad record is a skip)
    │   └── VexError                a VEX document is malformed
    ├── HostError                   a host tool (podman, skopeo) is missing or failed
    ├── StoreError                  the fleet store cannot be opened, migrated or written
    ├── DiscoveryError              what runs where cannot be observed (podman, Kubernetes)
    ├── BuildError                  the fleet's recipes cannot be planned or built
    │   ├── ContainerfileError      a Containerfile cannot be parsed (FILE:LINE: why)
    │   └── GraphError              the build graph is invalid (a cycle between local images)
    ├── VerifyError                 an image's integration tests cannot be run (a failing test is a result)
    ├── SignError                   an image cannot be signed, or an SBOM or signature cannot be attached
    │   └── SignatureRefused        a signature is missing, invalid or names another identity
    ├── EventError                  an event cannot be published (it stays in the outbox)
    ├── RolloutError                a service cannot be rolled out
    │   ├── UnpromotableError       the digest failed verification or a rollout before: never again
    │   └── PolicyDenied            a rule of [policy] refuses it (the rule and the evidence named)
    └── PipelineError               a patch run cannot go on
        └── RunInProgress           another patchline process holds the run's current step
"""

from __future__ import annotations

__all__ = [
    "AdvisoryError",
    "AuthError",
    "BlobError",
    "BuildError",
    "CacheError",
    "CatalogError",
    "ConfigError",
    "ContainerfileError",
    "DigestMismatch",
    "DiscoveryError",
    "Error",
    "EventError",
    "FeedError",
    "GraphError",
    "HostError",
    "ImageNotFound",
    "IndexExpiredError",
    "IndexFormatError",
    "IndexIntegrityError",
    "IndexSignatureError",
    "LayerError",
    "ManifestError",
    "NoUpdateRoute",
    "PlatformError",
    "PolicyDenied",
    "ReferenceError_",
    "RegistryError",
    "RolloutError",
    "SbomError",
    "SignError",
    "SignatureRefused",
    "SourceError",
    "StoreError",
    "SuiteMissing",
    "UnpromotableError",
    "UpdateSourceError",
    "VerifyError",
    "VexError",
]


class Error(Exception):
    """Root of every error patchline raises on purpose.

    ``detail`` holds what ``-v`` shows beyond the one-line message.
    """

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class ConfigError(Error):
    """The configuration file or a command-line option is invalid."""


class ReferenceError_(Error):
    """An image reference cannot be parsed."""


class SourceError(Error):
    """Reading an image from its source failed."""


class RegistryError(SourceError):
    """A registry answered with an error, an unexpected response, or went away."""


class AuthError(RegistryError):
    """Credentials are missing or were refused."""


class ImageNotFound(SourceError):
    """The image, tag, manifest or blob does not exist."""


class ManifestError(SourceError):
    """A manifest, index or image config is malformed or of an unsupported type."""


class PlatformError(SourceError):
    """A multi-platform index has no manifest for the wanted platform."""


class BlobError(SourceError):
    """A blob's content is corrupt."""


class DigestMismatch(BlobError):
    """A blob's content does not hash to the digest that names it."""


class LayerError(BlobError):
    """A layer cannot be decompressed or is not a valid tar stream."""


class CatalogError(Error):
    """A cataloger cannot parse a file; the walker records it as a ``Skipped``."""


class CacheError(Error):
    """The catalog cache cannot be read or written."""


class SbomError(Error):
    """An SBOM document cannot be produced."""


class AdvisoryError(Error):
    """Advisory data (a feed, a VEX document) cannot be used."""


class FeedError(AdvisoryError):
    """An advisory feed cannot be read at all; a malformed record is an ``AssessSkip``."""


class VexError(AdvisoryError):
    """A VEX document is not valid OpenVEX."""


class UpdateSourceError(Error):
    """An apt update source cannot be fetched or used; the assessment skips it."""


class IndexSignatureError(UpdateSourceError):
    """An index is unsigned, or its OpenPGP signature does not verify with the keyring."""


class IndexExpiredError(UpdateSourceError):
    """A Release file's ``Valid-Until`` date has passed (a possibly replayed index)."""


class IndexIntegrityError(UpdateSourceError):
    """A fetched index or ``.deb`` does not match the SHA256 or size that names it."""


class IndexFormatError(UpdateSourceError):
    """A Release or Packages file is malformed."""


class SuiteMissing(UpdateSourceError):
    """The suite is not at the source (no InRelease or Release), or its Release lacks the wanted component or
    architecture. Unlike an unreachable or untrusted source, this holds until the configuration changes: the
    other sources are used without it."""


class NoUpdateRoute(UpdateSourceError):
    """patchline cannot tell which update sources an image takes updates from (its distribution has no update
    route in patchline, its release cannot be told, no mirror is known): the image's state is *unknown*, never
    clean."""


class HostError(Error):
    """A host tool patchline drives (podman, skopeo, buildah) is missing or failed."""


class StoreError(Error):
    """The fleet store cannot be opened, migrated or written."""


class DiscoveryError(Error):
    """The running workloads cannot be observed: podman failed, no Kubernetes cluster answers."""


class BuildError(Error):
    """The fleet's recipes cannot be planned, or a build step cannot run."""


class ContainerfileError(BuildError):
    """A Containerfile cannot be parsed; the message starts with ``FILE:LINE:``."""


class GraphError(BuildError):
    """The build graph is invalid, e.g. a cycle between local images."""


class VerifyError(Error):
    """An image's integration tests cannot be run at all (a test that fails is a result, not an error)."""


class SignError(Error):
    """An image cannot be signed, or its signature or SBOM cannot be attached or read."""


class SignatureRefused(SignError):
    """An image has no valid signature by the required key for the required identity."""


class EventError(Error):
    """An event cannot be published now; it stays in the outbox and is retried."""


class RolloutError(Error):
    """A service cannot be rolled out (configuration, target or state)."""


class UnpromotableError(RolloutError):
    """The digest failed verification or a rollout before and is never rolled out again."""


class PolicyDenied(RolloutError):
    """A rule of ``[policy]`` refuses the step; the message names the rule and the evidence."""


class PipelineError(Error):
    """A patch run cannot go on."""


class RunInProgress(PipelineError):
    """Another patchline process holds the lease of the run's current step; this one leaves the run alone."""
