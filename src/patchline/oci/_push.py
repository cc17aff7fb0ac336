"""Writing to a registry: blobs, manifests and tags through the distribution API.

The primitives the sign stage needs to put signatures and attachments beside an
image (``oci`` is the only package that talks to registries). Requests go through
:class:`~patchline.oci._registry.RegistryAPI`, so transport (``insecure``),
credentials, Bearer tokens and retries are the same as for reading; the token is
asked for the ``repository:NAME:pull,push`` scope (a token server grants the
subset the user holds, so reads work with read-only credentials too).
"""

from __future__ import annotations

import hashlib
import re
import threading
import urllib.parse
from typing import NamedTuple, Self

import httpx

from patchline._model import Digest
from patchline.errors import AuthError, BlobError, DigestMismatch, ImageNotFound, ManifestError, RegistryError
from patchline.oci._auth import CredentialStore, RegistryAuthenticator
from patchline.oci._manifest import load_json
from patchline.oci._reference import _DOCKER_HUB_API, DEFAULT_REGISTRY
from patchline.oci._registry import RegistryAPI, _verify_manifest_digest, new_registry_client
from patchline.oci.interface import INDEX_TYPES, MANIFEST_TYPES

__all__ = ["FetchedManifest", "RegistryWriter", "push_scope"]

_ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))
_MAX_MANIFEST = 4 << 20  # distribution refuses to store larger manifests
_DIGEST_SHAPE = re.compile(r"^sha256:[a-f0-9]{64}$")
_REPOSITORY_SHAPE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_REFERENCE_SHAPE = re.compile(r"^(?:[\w][\w.-]{0,127}|sha256:[a-f0-9]{64})$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class FetchedManifest(NamedTuple):
    """A manifest or index as the registry stored it: its bytes, media type and (verified) digest."""

    data: bytes
    media_type: str
    digest: Digest


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def sha256_digest(data: bytes) -> Digest:
    return Digest(f"sha256:{hashlib.sha256(data).hexdigest()}")


class _PushAuthenticator(RegistryAuthenticator):
    """Asks the token server for pull and push, not pull only."""

    def __init__(
        self, client: httpx.Client, *, registry: str, repository: str, store: CredentialStore,
        host: str | None = None, insecure: bool = False,
    ) -> None:
        super().__init__(client, registry=registry, repository=repository, store=store, host=host, insecure=insecure)
        self._push_scope = push_scope(repository)

    @property
    def scope(self) -> str:
        return self._push_scope

    def refused(self, status: int) -> AuthError:
        credential = self.credential()
        if credential is None:
            return super().refused(status)  # "no credentials were found", with the files searched
        who = f"user {credential.username!r}" if credential.username else "the identity token"
        return AuthError(
            f"{self._registry} refused {who} (from {credential.source}) for pushing to "
            f"{self._repository} (HTTP {status})"
        )


class _RepositoryAPI(RegistryAPI):
    """:class:`RegistryAPI` for one repository, authenticated for pushing."""

    def __init__(
        self, registry: str, repository: str, *, insecure: bool, auth: CredentialStore, client: httpx.Client
    ) -> None:
        super().__init__(registry, repository, insecure=insecure, auth=auth, client=client)
        self._auth = _PushAuthenticator(client, registry=registry, repository=repository, store=auth, host=self._host,
                                        insecure=insecure)

    def base_url(self) -> str:
        return self._base_url()

    def get_raw(self, path: str, *, what: str, limit: int) -> bytes:
        """GET a blob's stored bytes (no transfer decoding), at most ``limit`` of them."""
        _, body = self._request(
            path, what=what, headers={"Accept-Encoding": "identity"}, body_limit=limit + 1, raw=True
        )
        return body


class RegistryWriter:
    """Reads and writes manifests and blobs in the repositories of one registry.

    ``registry`` is a host as references name it (``127.0.0.1:5000``,
    ``docker.io``). Transport, authentication and retries are those of
    :class:`~patchline.oci.RegistrySource`. Methods take the repository path
    inside the registry (``team/app``). A ``client`` given is shared, not closed.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        registry: str,
        *,
        insecure: bool = False,
        auth: CredentialStore | None = None,
        timeout: float = 60.0,
        client: httpx.Client | None = None,
    ) -> None:
        self._registry = registry
        self._host = _DOCKER_HUB_API if registry == DEFAULT_REGISTRY else registry
        self._insecure = insecure
        self._store = auth if auth is not None else CredentialStore.from_environment()
        self._owns_client = client is None
        self._client = client if client is not None else new_registry_client(insecure=insecure, timeout=timeout)
        self._apis: dict[str, _RepositoryAPI] = {}
        self._lock = threading.Lock()

    @property
    def registry(self) -> str:
        """The registry as references name it (``127.0.0.1:5000``, ``docker.io``)."""
        return self._registry

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -----------------------------------------------------------

    def get_manifest(self, repository: str, reference: str) -> FetchedManifest | None:
        """The manifest (or index) a tag or digest names; ``None`` when the registry has none (404).

        Verified against the digest when ``reference`` is one, and against the
        ``Docker-Content-Digest`` header when the registry sends it.
        """
        api = self._api(repository)
        what = f"manifest {self._name(repository)}{_separator(reference)}{reference}"
        try:
            response, body = api.request(
                f"/v2/{repository}/manifests/{_check_reference(reference)}",
                what=what,
                headers={"Accept": _ACCEPT},
                body_limit=_MAX_MANIFEST,
            )
        except ImageNotFound:
            return None
        expected = Digest(reference) if reference.startswith("sha256:") else None
        digest = _verify_manifest_digest(body, expected, response.headers.get("Docker-Content-Digest"), what)
        # The declared type is covered by the digest; the header is the fallback OCI allows.
        media_type = _declared_media_type(body, what) or _content_type(response)
        if not media_type:
            raise ManifestError(f"{what} has no media type (no Content-Type and no mediaType field)")
        return FetchedManifest(body, media_type, digest)

    def get_blob(self, repository: str, digest: str, *, max_size: int) -> bytes:
        """A blob's bytes, verified against ``digest``; larger than ``max_size`` raises ``BlobError``."""
        what = f"blob {digest} of {self._name(repository)}"
        body = self._api(repository).get_raw(
            f"/v2/{repository}/blobs/{_check_digest(digest)}", what=what, limit=max_size
        )
        if len(body) > max_size:
            raise BlobError(f"{what} is larger than {max_size} bytes")
        actual = sha256_digest(body)
        if actual != digest:
            raise DigestMismatch(f"{what} does not match its digest: got {actual}")
        return body

    def blob_exists(self, repository: str, digest: str) -> bool:
        try:
            self._api(repository).request(
                f"/v2/{repository}/blobs/{_check_digest(digest)}",
                what=f"blob {digest} of {self._name(repository)}",
                method="HEAD",
            )
        except ImageNotFound:
            return False
        return True

    def manifest_exists(self, repository: str, digest: str) -> bool:
        """Whether the repository holds the manifest ``digest`` (a ``HEAD``, nothing is read)."""
        try:
            self._api(repository).request(
                f"/v2/{repository}/manifests/{_check_digest(digest)}",
                what=f"manifest {self._name(repository)}@{digest}",
                method="HEAD",
                headers={"Accept": _ACCEPT},
            )
        except ImageNotFound:
            return False
        return True

    def get_referrers(self, repository: str, digest: str, *, artifact_type: str | None = None) -> bytes | None:
        """The referrers API's index for ``digest``, or ``None`` when the registry has no such API (404).

        Distribution 2.8 has none; its clients use the referrers tag schema.
        """
        path = f"/v2/{repository}/referrers/{_check_digest(digest)}"
        if artifact_type:
            path += "?" + urllib.parse.urlencode({"artifactType": artifact_type})
        try:
            response, body = self._api(repository).request(
                path, what=f"referrers of {self._name(repository)}@{digest}", headers={"Accept": INDEX_TYPES[0]}
            )
        except ImageNotFound:
            return None
        if _content_type(response) != INDEX_TYPES[0]:
            return None  # a 200 that is not an index is not the referrers API (a catch-all page)
        return body

    # -- writing -----------------------------------------------------------

    def push_blob(self, repository: str, data: bytes) -> Digest:
        """Upload ``data`` as a blob (unless the repository has it already); return its digest.

        A monolithic upload: ``POST /v2/NAME/blobs/uploads/`` for a session, then one
        ``PUT`` of the bytes to its ``Location`` with ``?digest=``.
        """
        digest = sha256_digest(data)
        if self.blob_exists(repository, digest):
            return digest
        api = self._api(repository)
        name = self._name(repository)
        what = f"a blob upload to {name}"
        try:
            response, _ = api.request(
                f"/v2/{repository}/blobs/uploads/", what=what, method="POST", content=b"", body_limit=1 << 16
            )
            location = response.headers.get("Location")
            if not location:
                raise RegistryError(f"{self._host} started {what} without a Location to send it to")
            path = self._upload_path(api, f"/v2/{repository}/blobs/uploads/", location)
            query = urllib.parse.urlencode({"digest": digest})
            path += ("&" if "?" in path else "?") + query
            response, _ = api.request(
                path,
                what=f"blob {digest} for {name}",
                method="PUT",
                content=data,
                headers={"Content-Type": "application/octet-stream"},
                body_limit=1 << 16,
            )
        except ImageNotFound as exc:
            # A 404 here means the upload session is gone, not that something is missing.
            raise RegistryError(f"{self._host} lost {what}: {exc}") from exc
        served = response.headers.get("Docker-Content-Digest")
        if served and served != digest:
            raise DigestMismatch(
                f"{self._host} stored blob {digest} for {name} under the digest {served}"
            )
        return digest

    def push_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> Digest:
        """Store a manifest or index under a tag or its digest; return its digest.

        The registry's ``Docker-Content-Digest`` answer must be the digest of ``data``.
        """
        digest = sha256_digest(data)
        name = self._name(repository)
        if reference.startswith("sha256:") and reference != digest:
            raise DigestMismatch(f"manifest for {name} pushed by digest {reference} hashes to {digest}")
        what = f"manifest {name}{_separator(reference)}{reference}"
        try:
            response, _ = self._api(repository).request(
                f"/v2/{repository}/manifests/{_check_reference(reference)}",
                what=what,
                method="PUT",
                content=data,
                headers={"Content-Type": media_type},
                body_limit=1 << 16,
            )
        except ImageNotFound as exc:
            raise RegistryError(f"{self._host} refused {what}: {exc}") from exc
        served = response.headers.get("Docker-Content-Digest")
        if served and served != digest:
            raise DigestMismatch(f"{self._host} stored {what} under the digest {served}, not {digest}")
        return digest

    # -- plumbing ----------------------------------------------------------

    def _api(self, repository: str) -> _RepositoryAPI:
        if not _REPOSITORY_SHAPE.match(repository):
            raise RegistryError(f"invalid repository name {repository!r}")
        with self._lock:
            api = self._apis.get(repository)
            if api is None:
                api = _RepositoryAPI(
                    self._registry, repository, insecure=self._insecure, auth=self._store, client=self._client
                )
                self._apis[repository] = api
            return api

    def _name(self, repository: str) -> str:
        return f"{self._registry}/{repository}"

    def _upload_path(self, api: _RepositoryAPI, requested: str, location: str) -> str:
        """The path and query of an upload ``Location``, relative (to ``requested``) or absolute."""
        base = urllib.parse.urlsplit(api.base_url())
        target = urllib.parse.urlsplit(urllib.parse.urljoin(api.base_url() + requested, location))
        if _origin_host(target) != _origin_host(base):
            # Credentials go to the registry only; an upload elsewhere is not followed.
            raise RegistryError(
                f"{self._host} sent an upload location on another host ({target.hostname}); not supported"
            )
        path = target.path or "/"
        return f"{path}?{target.query}" if target.query else path


def _origin_host(url: urllib.parse.SplitResult) -> tuple[str, int | None]:
    # The scheme is left out: a TLS-terminating proxy may advertise http:// for an https:// registry.
    port = None if url.port == _DEFAULT_PORTS.get(url.scheme) else url.port
    return (url.hostname or "").lower(), port


def _separator(reference: str) -> str:
    return "@" if reference.startswith("sha256:") else ":"


def _check_digest(digest: str) -> str:
    # The digest goes into a URL path: only sha256 digests are written or read here.
    if not _DIGEST_SHAPE.match(digest):
        raise BlobError(f"malformed or unsupported digest {digest!r}")
    return digest


def _check_reference(reference: str) -> str:
    if not _REFERENCE_SHAPE.match(reference):
        raise RegistryError(f"invalid tag or digest {reference!r}")
    return reference


def _content_type(response: httpx.Response) -> str:
    return str(response.headers.get("Content-Type", "")).split(";")[0].strip()


def _declared_media_type(body: bytes, what: str) -> str:
    value = load_json(body, what).get("mediaType")
    return str(value) if isinstance(value, str) else ""
