"""The registry image source: the OCI distribution API (``/v2/``) over HTTP(S)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, Literal, Self, cast

import httpx

from patchline._http import tls_context
from patchline._model import Digest
from patchline.errors import (
    AuthError,
    BlobError,
    DigestMismatch,
    ImageNotFound,
    ManifestError,
    PlatformError,
    RegistryError,
)
from patchline.oci._auth import CredentialStore, RegistryAuthenticator
from patchline.oci._blob import VerifyingReader, new_hash
from patchline.oci._manifest import (
    host_platform,
    load_json,
    media_type_of,
    parse_config,
    parse_index,
    parse_manifest,
    select_platform,
)
from patchline.oci._reference import _DOCKER_HUB_API, DEFAULT_REGISTRY, ImageRef
from patchline.oci.interface import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    Descriptor,
    Platform,
    ResolvedImage,
)

__all__ = ["RegistryAPI", "RegistrySource", "new_registry_client"]

_ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))
_USER_AGENT = "patchline"
# Seconds to wait before each retry of a request that got a 5xx/429 or lost its connection.
_RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0)
_MAX_MANIFEST = 4 << 20  # distribution refuses to store larger manifests
_MAX_CONFIG = 32 << 20
_MAX_ERROR_BODY = 64 << 10
_MAX_NESTED_INDEXES = 2
_MANIFEST_DIGEST_ALGORITHMS = ("sha256", "sha512")
_DIGEST_SHAPE = re.compile(r"^[a-z0-9]+:[a-f0-9]{32,}$")


class RegistryAPI:
    """Authenticated requests to a registry's distribution API (``/v2/...``).

    For one repository (its ``repository:NAME:pull`` scope, its credentials) or,
    with ``repository=None``, for the registry itself (``/v2/_catalog``, scope
    ``registry:catalog:*``). Transport, authentication and retries are those
    described for :class:`RegistrySource`. A ``client`` given is shared, not
    closed; its certificate checks are then the caller's choice.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        registry: str,
        repository: str | None,
        *,
        insecure: bool = False,
        auth: CredentialStore | None = None,
        timeout: float = 60.0,
        client: httpx.Client | None = None,
    ) -> None:
        self._insecure = insecure
        self._host = _DOCKER_HUB_API if registry == DEFAULT_REGISTRY else registry
        self._owns_client = client is None
        self._client = client if client is not None else new_registry_client(insecure=insecure, timeout=timeout)
        self._auth = RegistryAuthenticator(
            self._client,
            registry=registry,
            repository=repository,
            store=auth if auth is not None else CredentialStore.from_environment(),
            host=self._host,
            insecure=insecure,
        )
        self._base: str | None = None
        self._base_lock = threading.Lock()

    @property
    def host(self) -> str:
        """The host the requests go to (``registry-1.docker.io`` for ``docker.io``)."""
        return self._host

    def request(
        self,
        path: str,
        *,
        what: str,
        method: Literal["GET", "HEAD", "POST", "PUT"] = "GET",
        headers: Mapping[str, str] | None = None,
        body_limit: int = _MAX_MANIFEST,
        content: bytes | None = None,
    ) -> tuple[httpx.Response, bytes]:
        """``method`` on ``path`` (``/v2/...`` with its query): the closed 2xx response and its body.

        Authenticated and retried like the source's own requests (``content``, the
        request body, is sent again on a retry). An error status raises the
        translated error (404: ``ImageNotFound``, 401 and 403: ``AuthError``, else
        ``RegistryError``); a body over ``body_limit`` bytes raises ``ManifestError``.
        """
        return self._request(
            path, what=what, headers=headers or {}, body_limit=body_limit, method=method, content=content
        )

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP --------------------------------------------------------------

    def _base_url(self) -> str:
        with self._base_lock:
            if self._base is None:
                self._base = self._ping()
            return self._base

    def _ping(self) -> str:
        """Find the scheme that works and learn the auth challenge from ``/v2/``."""
        schemes = ("https", "http") if self._insecure else ("https",)
        for scheme in schemes:
            base = f"{scheme}://{self._host}"
            fallback = scheme == "https" and self._insecure
            try:
                response, _ = self._attempts(
                    functools.partial(self._send, f"{base}/v2/", {}, _MAX_ERROR_BODY, False),
                    what="the API root /v2/",
                    passthrough=(httpx.ConnectError,) if fallback else (),
                )
            except httpx.ConnectError:
                continue  # no TLS there: speak plain HTTP
            except RegistryError as exc:
                if scheme == "https" and not self._insecure and isinstance(
                    exc.__cause__, httpx.ConnectError
                ):
                    raise RegistryError(
                        f"{exc.message} (if {self._host} is a plain-HTTP registry, "
                        "allow it with --insecure)",
                        detail=exc.detail,
                    ) from exc.__cause__
                raise
            if response.status_code == 401:
                self._auth.on_unauthorized(response, had_auth=False)
            elif response.status_code == 404:
                raise RegistryError(f"{self._host} does not serve the registry API (/v2/ is 404)")
            elif not (response.is_success or response.status_code == 403):
                raise _status_error(response, self._host, "the API root /v2/", b"")
            return base
        raise AssertionError("unreachable: the last scheme does not fall back")

    def _request(
        self,
        path: str,
        *,
        what: str,
        headers: Mapping[str, str],
        body_limit: int | None = None,
        raw: bool = False,
        method: str = "GET",
        content: bytes | None = None,
    ) -> tuple[httpx.Response, bytes]:
        """A request (GET) with auth and retries; a 2xx response, else the translated error.

        With ``body_limit`` the body is read (and the response closed); without,
        the response is left open for streaming and the caller closes it.
        """
        url = self._base_url() + path
        for auth_round in range(2):
            auth_headers = self._auth.headers()
            request_headers = {**headers, **auth_headers}
            response, body = self._attempts(
                functools.partial(self._send, url, request_headers, body_limit, raw, method, content), what=what
            )
            if response.status_code == 401:
                had_auth = "Authorization" in auth_headers
                response.close()
                if auth_round == 0 and self._auth.on_unauthorized(response, had_auth=had_auth):
                    continue
                if had_auth:
                    raise self._auth.refused(401)
                raise AuthError(
                    f"{self._host} refused anonymous access to {what} (HTTP 401): "
                    f"{_registry_message(body)}"
                )
            if response.is_success:
                return response, body
            raise _status_error(response, self._host, what, body)
        raise AssertionError("unreachable: the second auth round returns or raises")

    def _send(
        self,
        url: str,
        headers: Mapping[str, str],
        body_limit: int | None,
        raw: bool,
        method: str = "GET",
        content: bytes | None = None,
    ) -> tuple[httpx.Response, bytes]:
        request = self._client.build_request(method, url, headers=headers, content=content)
        response = self._client.send(request, stream=True)
        if body_limit is None and response.is_success:
            return response, b""
        try:
            if response.is_success and body_limit is not None:
                return response, _read_capped(response, body_limit, raw=raw, what=url)
            return response, _read_error_body(response)
        finally:
            response.close()

    def _attempts(
        self,
        call: Callable[[], tuple[httpx.Response, bytes]],
        *,
        what: str,
        passthrough: tuple[type[Exception], ...] = (),
    ) -> tuple[httpx.Response, bytes]:
        """Run ``call``, retrying on lost connections, 5xx and 429 (see ``_RETRY_DELAYS``)."""
        for attempt in range(len(_RETRY_DELAYS) + 1):
            last = attempt == len(_RETRY_DELAYS)
            try:
                response, body = call()
            except passthrough:
                raise
            except httpx.TransportError as exc:
                if last or _is_tls_failure(exc):
                    raise _transport_error(exc, self._host, what, attempt + 1) from exc
                time.sleep(_RETRY_DELAYS[attempt])
                continue
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise RegistryError(f"{self._host}: cannot fetch {what}: {exc}") from exc
            if (response.status_code >= 500 or response.status_code == 429) and not last:
                response.close()
                time.sleep(_RETRY_DELAYS[attempt])
                continue
            return response, body
        raise AssertionError("unreachable: the last attempt returns or raises")



def new_registry_client(*, insecure: bool = False, timeout: float = 60.0) -> httpx.Client:
    """An httpx client as registry requests need it, to share between :class:`RegistryAPI` objects."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,  # blob GETs are redirected to object storage
        verify=False if insecure else tls_context(),
        headers={"User-Agent": _USER_AGENT},
    )


class RegistrySource(RegistryAPI):
    blobs_content_addressed = True  # blobs are fetched by digest and verified whenever they are read
    """An image in a registry, read through the OCI distribution API.

    Transport: HTTPS with certificate verification, for every registry, unless
    ``insecure=True`` (podman's ``--tls-verify=false``): then HTTPS *without*
    certificate verification is tried first and, when no TLS connection can be
    made, plain HTTP. That is for any host, a loopback one (``localhost``,
    ``127.*``) included; without ``insecure`` a plain-HTTP registry fails with a
    message that says so. Certificate checks are off for the registry's token
    server too when ``insecure`` is set.

    Authentication: see ``patchline.oci._auth``; ``auth=None`` reads the usual
    credential files. Manifests and the config are verified against their
    digests; a blob opened with :meth:`open_blob` is verified while it streams.
    Manifest and config requests are retried on 5xx and lost connections; a
    blob stream that breaks is not resumed (it raises ``RegistryError``).

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        ref: ImageRef,
        *,
        platform: Platform | None = None,
        insecure: bool = False,
        auth: CredentialStore | None = None,
        timeout: float = 60.0,
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            ref.registry, ref.repository, insecure=insecure, auth=auth, timeout=timeout, client=client
        )
        self._ref = ref
        self._platform = platform

    # -- ImageSource -------------------------------------------------------

    def resolve(self) -> ResolvedImage:
        """Fetch the manifest (an index: the wanted platform's entry) and the config."""
        wanted = self._platform or host_platform()
        media_type, doc, digest = self._fetch_manifest(self._ref.reference, self._ref.digest)
        from_index = False
        for _ in range(_MAX_NESTED_INDEXES):
            if media_type not in INDEX_TYPES:
                break
            chosen = select_platform(parse_index(doc), wanted)
            media_type, doc, digest = self._fetch_manifest(chosen.digest, chosen.digest)
            from_index = True
        if media_type not in MANIFEST_TYPES:
            raise ManifestError(f"{self._ref}: unsupported manifest media type {media_type}")
        config_descriptor, layers = parse_manifest(doc)
        config = parse_config(self._fetch_small_blob(config_descriptor, "image config"))
        if len(layers) != len(config.diff_ids):
            raise ManifestError(
                f"{self._ref}: the manifest lists {len(layers)} layers "
                f"but the config {len(config.diff_ids)} diff_ids"
            )
        if self._platform is not None and not from_index:
            have = (config.os, config.architecture)
            if have != (wanted.os, wanted.architecture):
                raise PlatformError(
                    f"{self._ref} is a single-platform image for {config.os}/"
                    f"{config.architecture}, not {wanted}"
                )
        tags = (f"{self._ref.registry}/{self._ref.repository}:{self._ref.tag}",)
        return ResolvedImage(
            reference=str(self._ref),
            manifest_digest=digest,
            config_digest=config_descriptor.digest,
            config=config,
            layers=layers,
            repo_tags=tags if self._ref.tag else (),
        )

    def manifest_digest(self) -> Digest:
        """The digest the reference points at now (an index's own digest for a multi-platform image)."""
        _media_type, _doc, digest = self._fetch_manifest(self._ref.reference, self._ref.digest)
        return digest

    def open_blob(self, descriptor: Descriptor) -> contextlib.AbstractContextManager[IO[bytes]]:
        """Stream a blob's stored bytes, verified against its digest and size.

        Nothing is requested until the context is entered.
        """
        return self._blob_stream(descriptor)

    # -- manifests and blobs -----------------------------------------------

    def _fetch_manifest(
        self, reference: str, expected: Digest | None
    ) -> tuple[str, Mapping[str, Any], Digest]:
        """Return (media type, document, digest) of a manifest or index, verified."""
        what = f"manifest {self._ref.repository}:{reference}" if expected is None else (
            f"manifest {self._ref.repository}@{reference}"
        )
        response, body = self._request(
            f"/v2/{self._ref.repository}/manifests/{reference}",
            what=what,
            headers={"Accept": _ACCEPT},
            body_limit=_MAX_MANIFEST,
        )
        digest = _verify_manifest_digest(
            body, expected, response.headers.get("Docker-Content-Digest"), what
        )
        doc = load_json(body, what)
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        fallback = content_type if content_type in (*INDEX_TYPES, *MANIFEST_TYPES) else None
        return media_type_of(doc, fallback), doc, digest

    def _fetch_small_blob(self, descriptor: Descriptor, what: str) -> bytes:
        _check_descriptor_digest(descriptor)
        if descriptor.size > _MAX_CONFIG:
            raise ManifestError(
                f"{what} {descriptor.digest} is too large ({descriptor.size} bytes)"
            )
        _, body = self._request(
            f"/v2/{self._ref.repository}/blobs/{descriptor.digest}",
            what=f"{what} {descriptor.digest}",
            headers={"Accept-Encoding": "identity"},
            body_limit=descriptor.size + 1,
            raw=True,
        )
        reader = VerifyingReader(
            io.BytesIO(body), digest=descriptor.digest, size=descriptor.size, what=what
        )
        return reader.read()

    @contextlib.contextmanager
    def _blob_stream(self, descriptor: Descriptor) -> Iterator[IO[bytes]]:
        _check_descriptor_digest(descriptor)
        what = f"blob {descriptor.digest}"
        response, _ = self._request(
            f"/v2/{self._ref.repository}/blobs/{descriptor.digest}",
            what=what,
            # The digest is over the stored bytes: no transfer decoding.
            headers={"Accept-Encoding": "identity"},
        )
        raw = _ResponseStream(response, host=self._host, what=what)
        reader = VerifyingReader(
            io.BufferedReader(raw, buffer_size=1 << 16),
            digest=descriptor.digest,
            size=descriptor.size,
            what=what,
        )
        try:
            # VerifyingReader has the read/close surface of IO[bytes] without the nominal type.
            yield cast("IO[bytes]", reader)
        finally:
            reader.close()


class _ResponseStream(io.RawIOBase):
    """The raw (not transfer-decoded) body of a streamed response as a file.

    A connection that breaks mid-way raises ``RegistryError``; it is not retried.
    """

    def __init__(self, response: httpx.Response, *, host: str, what: str) -> None:
        super().__init__()
        self._response = response
        self._chunks = response.iter_raw()
        self._pending = b""
        self._offset = 0
        self._received = 0
        self._host = host
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._offset >= len(self._pending):
            try:
                self._pending = next(self._chunks, b"")
            except httpx.HTTPError as exc:
                raise RegistryError(
                    f"{self._host}: the connection broke while streaming {self._what} "
                    f"after {self._received} bytes ({type(exc).__name__}: {exc})"
                ) from exc
            self._offset = 0
            if not self._pending:
                return 0
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._pending) - self._offset)
        view[:n] = self._pending[self._offset : self._offset + n]
        self._offset += n
        self._received += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()


def _check_descriptor_digest(descriptor: Descriptor) -> None:
    # The digest goes into a URL path: refuse anything that is not algorithm:hex.
    if not _DIGEST_SHAPE.match(descriptor.digest):
        raise BlobError(f"malformed digest {descriptor.digest!r}")
    new_hash(descriptor.digest)


def _verify_manifest_digest(
    body: bytes, expected: Digest | None, header: str | None, what: str
) -> Digest:
    """The manifest's digest: checked against the reference's digest and the header."""

    def digest_of(algorithm: str) -> Digest | None:
        if algorithm not in _MANIFEST_DIGEST_ALGORITHMS:
            return None
        return Digest(f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}")

    if expected is not None:
        actual = digest_of(expected.split(":", 1)[0])
        if actual is None:
            raise ManifestError(f"{what}: unsupported digest algorithm in {expected}")
        if actual != expected:
            raise DigestMismatch(f"{what} does not match its digest: got {actual}")
    else:
        actual = Digest(f"sha256:{hashlib.sha256(body).hexdigest()}")
    if header:
        served = digest_of(header.split(":", 1)[0])
        # An algorithm we do not know leaves nothing to compare.
        if served is not None and served != header:
            raise DigestMismatch(
                f"{what} does not match the Docker-Content-Digest {header} the registry "
                f"sent: got {served}"
            )
    return actual


def _read_capped(response: httpx.Response, limit: int, *, raw: bool, what: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_raw() if raw else response.iter_bytes():
        total += len(chunk)
        if total > limit:
            # A blob longer than its descriptor is corrupt; a manifest that large is not one.
            error = BlobError if raw else ManifestError
            raise error(f"{what} is larger than {limit - 1 if raw else limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _read_error_body(response: httpx.Response) -> bytes:
    with contextlib.suppress(httpx.HTTPError):
        chunks: list[bytes] = []
        total = 0
        for chunk in response.iter_bytes():
            chunks.append(chunk)
            total += len(chunk)
            if total >= _MAX_ERROR_BODY:
                break
        return b"".join(chunks)[:_MAX_ERROR_BODY]
    return b""


def _registry_message(body: bytes) -> str:
    """``CODE: message`` from a distribution error body, or a short excerpt."""
    with contextlib.suppress(ValueError, ManifestError):
        doc = load_json(body, "error")
        errors = doc.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return f"{first.get('code', '?')}: {first.get('message', '')}".strip()
    text = body[:200].decode("utf-8", "replace").strip()
    return text or "no detail"


def _status_error(
    response: httpx.Response, host: str, what: str, body: bytes
) -> RegistryError | ImageNotFound:
    status = response.status_code
    message = _registry_message(body)
    if status == 404:
        return ImageNotFound(f"{what} not found in {host} ({message})")
    if status == 403:
        return AuthError(f"{host} denied access to {what} (HTTP 403: {message})")
    if status >= 500:
        return RegistryError(
            f"{host} failed to serve {what}: HTTP {status} after "
            f"{len(_RETRY_DELAYS) + 1} attempts ({message})"
        )
    return RegistryError(f"{host} answered HTTP {status} for {what} ({message})")


def _is_tls_failure(exc: BaseException) -> bool:
    """A failed TLS handshake: retrying it would fail the same way."""
    seen: BaseException | None = exc
    for _ in range(8):  # the cause chain is short; do not follow a cycle
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _transport_error(
    exc: httpx.TransportError, host: str, what: str, attempts: int
) -> RegistryError:
    if isinstance(exc, httpx.ConnectTimeout):
        problem = "timed out connecting"
    elif isinstance(exc, httpx.ConnectError):
        problem = "cannot connect"
    elif isinstance(exc, httpx.TimeoutException):
        problem = "timed out"
    else:
        problem = "the connection failed"
    return RegistryError(
        f"{host}: {problem} while fetching {what} "
        f"({attempts} attempt{'s' if attempts != 1 else ''}): "
        f"{type(exc).__name__}: {exc}"
    )
