"""RegistrySource against a scripted HTTP server: the answers a real registry never gives.

The real-registry behaviour is in tests/integration/test_registry_source.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchline.errors import (
    AuthError,
    DigestMismatch,
    ImageNotFound,
    ManifestError,
    RegistryError,
)
from patchline.oci import _registry
from patchline.oci._auth import CredentialStore
from patchline.oci._reference import ImageRef
from patchline.oci._registry import RegistrySource
from tests.support.registry import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    REGISTRY_PASSWORD,
    REGISTRY_USER,
    Reply,
    StubRegistry,
    free_port,
)

REPO = "test/img"


@pytest.fixture(autouse=True)
def no_retry_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_registry, "_RETRY_DELAYS", (0.0, 0.0, 0.0))


@pytest.fixture
def no_credentials() -> CredentialStore:
    return CredentialStore([])


def _image(stub: StubRegistry, *, tag: str = "1") -> str:
    """Serve a minimal valid image at REPO:tag; return the manifest digest."""
    config = json.dumps(
        {"os": "linux", "architecture": "amd64", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}
    ).encode()
    layer = b"layer bytes"
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": stub.add_blob(REPO, config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": stub.add_blob(REPO, layer), "size": len(layer)}],
        }
    ).encode()
    return stub.add_manifest(REPO, tag, manifest)


def _source(stub: StubRegistry, store: CredentialStore, reference: str = "1") -> RegistrySource:
    if reference.startswith("sha256:"):
        ref = ImageRef(stub.host, REPO, None, reference)  # type: ignore[arg-type]
    else:
        ref = ImageRef(stub.host, REPO, reference)
    return RegistrySource(ref, insecure=True, auth=store, timeout=5)


def test_resolves_a_valid_image(stub_registry: StubRegistry, no_credentials: CredentialStore) -> None:
    digest = _image(stub_registry)
    with _source(stub_registry, no_credentials) as source:
        resolved = source.resolve()
        assert resolved.manifest_digest == digest
        with source.open_blob(resolved.layers[0]) as stream:
            assert stream.read() == b"layer bytes"
    manifest_request = next(r for r in stub_registry.requests if "/manifests/" in r.path)
    assert OCI_MANIFEST in manifest_request.headers["Accept"]
    assert "application/vnd.docker.distribution.manifest.list.v2+json" in manifest_request.headers["Accept"]


def test_manifest_that_is_not_json(stub_registry: StubRegistry, no_credentials: CredentialStore) -> None:
    stub_registry.add_manifest(REPO, "1", b"<html>surely not a manifest</html>")
    with _source(stub_registry, no_credentials) as source, pytest.raises(ManifestError, match="not valid JSON"):
        source.resolve()


def test_docker_content_digest_mismatch(stub_registry: StubRegistry, no_credentials: CredentialStore) -> None:
    stub_registry.add_manifest(REPO, "1", b'{"schemaVersion": 2}', digest_header="sha256:" + "a" * 64)
    with _source(stub_registry, no_credentials) as source, pytest.raises(DigestMismatch, match="Docker-Content-Digest"):
        source.resolve()


def test_manifest_by_digest_that_hashes_otherwise(
    stub_registry: StubRegistry, no_credentials: CredentialStore
) -> None:
    wanted = "sha256:" + "b" * 64
    stub_registry.routes[f"/v2/{REPO}/manifests/{wanted}"] = Reply(
        200, b'{"schemaVersion": 2}', {"Content-Type": OCI_MANIFEST}
    )
    with _source(stub_registry, no_credentials, wanted) as source, pytest.raises(DigestMismatch):
        source.resolve()


def test_5xx_is_retried(stub_registry: StubRegistry, no_credentials: CredentialStore) -> None:
    digest = _image(stub_registry)
    path = f"/v2/{REPO}/manifests/1"
    good = stub_registry.routes[path]
    assert isinstance(good, Reply)
    stub_registry.routes[path] = [Reply(503), Reply(502), good]
    with _source(stub_registry, no_credentials) as source:
        assert source.resolve().manifest_digest == digest
    assert sum(r.path == path for r in stub_registry.requests) == 3


def test_5xx_that_persists(stub_registry: StubRegistry, no_credentials: CredentialStore) -> None:
    stub_registry.routes[f"/v2/{REPO}/manifests/1"] = Reply(500, b'{"errors":[{"code":"UNKNOWN","message":"boom"}]}')
    with _source(stub_registry, no_credentials) as source, pytest.raises(
        RegistryError, match=r"HTTP 500 after 4 attempts.*boom"
    ):
        source.resolve()


def test_404_is_image_not_found(stub_registry: StubRegistry, no_credentials: CredentialStore) -> None:
    with _source(stub_registry, no_credentials) as source, pytest.raises(ImageNotFound):
        source.resolve()


def test_nothing_listening(no_credentials: CredentialStore) -> None:
    ref = ImageRef(f"127.0.0.1:{free_port()}", REPO, "1")
    started = time.monotonic()
    with RegistrySource(ref, insecure=True, auth=no_credentials, timeout=5) as source, pytest.raises(
        RegistryError, match="cannot connect"
    ):
        source.resolve()
    assert time.monotonic() - started < 10


def test_plain_http_registry_without_insecure_says_so(
    stub_registry: StubRegistry, no_credentials: CredentialStore
) -> None:
    ref = ImageRef(stub_registry.host, REPO, "1")
    with RegistrySource(ref, auth=no_credentials, timeout=5) as source, pytest.raises(
        RegistryError, match="--insecure"
    ):
        source.resolve()


# -- Bearer flow ---------------------------------------------------------------


def _auth_file(tmp_path: Path, password: str = REGISTRY_PASSWORD) -> CredentialStore:
    encoded = base64.b64encode(f"{REGISTRY_USER}:{password}".encode()).decode()
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {"127.0.0.1": {"auth": encoded}}}))
    return CredentialStore([path])


@pytest.fixture
def bearer_stub(stub_registry: StubRegistry, tmp_path: Path) -> Iterator[StubRegistry]:
    stub_registry.bearer_token = "t0k3n"
    _image(stub_registry)
    yield stub_registry


@pytest.mark.parametrize("key", ["token", "access_token"])
def test_bearer_token_anonymous(bearer_stub: StubRegistry, no_credentials: CredentialStore, key: str) -> None:
    bearer_stub.token_key = key
    with _source(bearer_stub, no_credentials) as source:
        resolved = source.resolve()
        with source.open_blob(resolved.layers[0]) as stream:
            assert stream.read() == b"layer bytes"
    token_requests = [r for r in bearer_stub.requests if r.path == "/token"]
    assert len(token_requests) == 1  # cached for the scope
    assert token_requests[0].query == {"scope": ["repository:test/img:pull"], "service": ["stub"]}
    assert "Authorization" not in token_requests[0].headers


def test_bearer_token_with_basic_credentials(bearer_stub: StubRegistry, tmp_path: Path) -> None:
    bearer_stub.token_needs_password = True
    ref = ImageRef(bearer_stub.host, REPO, "1")
    store = _auth_file(tmp_path)
    # The auth file names the host without the port: that must not match.
    with RegistrySource(ref, insecure=True, auth=store) as source, pytest.raises(AuthError):
        source.resolve()
    path = tmp_path / "auth.json"
    doc = json.loads(path.read_text())
    doc["auths"] = {bearer_stub.host: doc["auths"]["127.0.0.1"]}
    path.write_text(json.dumps(doc))
    with RegistrySource(ref, insecure=True, auth=CredentialStore([path])) as source:
        source.resolve()
    token_request = [r for r in bearer_stub.requests if r.path == "/token"][-1]
    assert token_request.headers["Authorization"].startswith("Basic ")
    assert token_request.query["account"] == [REGISTRY_USER]


def test_bearer_token_refused(bearer_stub: StubRegistry, tmp_path: Path) -> None:
    bearer_stub.token_needs_password = True
    path = tmp_path / "auth.json"
    encoded = base64.b64encode(f"{REGISTRY_USER}:wrong".encode()).decode()
    path.write_text(json.dumps({"auths": {bearer_stub.host: {"auth": encoded}}}))
    ref = ImageRef(bearer_stub.host, REPO, "1")
    with RegistrySource(ref, insecure=True, auth=CredentialStore([path])) as source, pytest.raises(
        AuthError, match="refused user 'patchline'"
    ):
        source.resolve()


def test_identity_token_is_exchanged_with_post(bearer_stub: StubRegistry, tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"auths": {bearer_stub.host: {"identitytoken": "refresh"}}}))
    ref = ImageRef(bearer_stub.host, REPO, "1")
    with RegistrySource(ref, insecure=True, auth=CredentialStore([path])) as source:
        source.resolve()
    token_request = next(r for r in bearer_stub.requests if r.path == "/token")
    assert token_request.method == "POST"


def test_credential_helper_only_matters_when_auth_is_needed(
    stub_registry: StubRegistry, tmp_path: Path
) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"credHelpers": {stub_registry.host: "secretservice"}}))
    store = CredentialStore([path])
    _image(stub_registry)
    with _source(stub_registry, store) as source:
        source.resolve()  # anonymous registry: the helper is never consulted
    stub_registry.bearer_token = "t"
    with _source(stub_registry, store) as source, pytest.raises(
        AuthError, match="credential helpers are not supported yet"
    ):
        source.resolve()



def test_blob_redirect_to_storage_drops_credentials(stub_registry: StubRegistry) -> None:
    stub_registry.bearer_token = "t0k3n"
    _image(stub_registry)
    blob_path = f"/v2/{REPO}/blobs/sha256:{hashlib.sha256(b'layer bytes').hexdigest()}"
    storage = StubRegistry()  # another origin, as object storage is
    try:
        storage.routes["/bucket/layer"] = Reply(200, b"layer bytes")
        stub_registry.routes[blob_path] = Reply(307, headers={"Location": f"{storage.url}/bucket/layer?sig=1"})
        with _source(stub_registry, CredentialStore([])) as source:
            resolved = source.resolve()
            with source.open_blob(resolved.layers[0]) as stream:
                assert stream.read() == b"layer bytes"
    finally:
        storage.close()
    blob_request = next(r for r in stub_registry.requests if r.path == blob_path)
    assert blob_request.headers["Accept-Encoding"] == "identity"
    assert blob_request.headers["Authorization"] == "Bearer t0k3n"
    (storage_request,) = storage.requests
    assert storage_request.query == {"sig": ["1"]}
    assert "Authorization" not in storage_request.headers


# -- where credentials may go ----------------------------------------------------


def _challenging(stub: StubRegistry, realm: str) -> None:
    """Every manifest request answers 401 with a Bearer challenge naming ``realm``."""
    challenge = {"WWW-Authenticate": f'Bearer realm="{realm}",service="stub",scope="repository:test/img:pull"'}
    stub.routes[f"/v2/{REPO}/manifests/1"] = Reply(401, b"{}", challenge)


def test_a_plain_http_token_realm_of_a_secure_registry_gets_no_credentials(
        stub_registry: StubRegistry, tmp_path: Path) -> None:
    evil = StubRegistry()
    try:
        _challenging(stub_registry, f"{evil.url}/token")
        path = tmp_path / "auth.json"
        encoded = base64.b64encode(f"{REGISTRY_USER}:{REGISTRY_PASSWORD}".encode()).decode()
        path.write_text(json.dumps({"auths": {stub_registry.host: {"auth": encoded}}}))
        ref = ImageRef(stub_registry.host, REPO, "1")
        with RegistrySource(ref, insecure=True, auth=CredentialStore([path])) as source:
            source._auth._insecure = False  # as for an https registry: its realm must be https too
            with pytest.raises(AuthError, match="plain-HTTP token server"):
                source.resolve()
        assert evil.requests == []  # not even asked: the password never left
    finally:
        evil.close()


def test_an_oversized_token_response_is_refused(stub_registry: StubRegistry, no_credentials: CredentialStore) -> None:
    _challenging(stub_registry, f"{stub_registry.url}/token")
    stub_registry.routes["/token"] = Reply(200, b'{"token": "' + b"a" * (2 << 20) + b'"}')
    with _source(stub_registry, no_credentials) as source, pytest.raises(RegistryError, match="more than 1024 KiB"):
        source.resolve()


def _https_token_server(tmp_path: Path) -> tuple[str, list[str], object]:
    """An https server on 127.0.0.1 with a self-signed certificate nobody trusts; it records the paths asked."""
    import datetime as dt
    import http.server
    import ipaddress
    import ssl
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(when).not_valid_after(when + dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(
                "127.0.0.1"))]), critical=False).sign(key, hashes.SHA256()))
    (tmp_path / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = b'{"token": "t"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"https://127.0.0.1:{server.server_address[1]}", asked, server


def test_an_insecure_registry_does_not_make_its_token_server_insecure(
        stub_registry: StubRegistry, tmp_path: Path) -> None:
    """--insecure names one registry host: a token server elsewhere must still show a trusted certificate
    before the password goes to it (a self-signed one here: refused, nothing asked of it)."""
    url, asked, server = _https_token_server(tmp_path)
    try:
        _challenging(stub_registry, f"{url}/token")
        path = tmp_path / "auth.json"
        encoded = base64.b64encode(f"{REGISTRY_USER}:{REGISTRY_PASSWORD}".encode()).decode()
        path.write_text(json.dumps({"auths": {stub_registry.host: {"auth": encoded}}}))
        ref = ImageRef(stub_registry.host, REPO, "1")
        with RegistrySource(ref, insecure=True, auth=CredentialStore([path]), timeout=5) as source, \
                pytest.raises(RegistryError, match=r"cannot get a token .*CERTIFICATE_VERIFY_FAILED"):
            source.resolve()
        assert asked == []  # the TLS handshake failed: no request, no password
    finally:
        server.shutdown()  # type: ignore[attr-defined]
