"""RegistryWriter's protocol edge cases, against scripted answers a real registry rarely gives.

Pushing to a real registry is in tests/integration/test_attachments.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from patchline.errors import AuthError, BlobError, DigestMismatch, RegistryError
from patchline.oci import RegistryWriter, _registry
from patchline.oci._auth import CredentialStore

HOST = "registry.test:5000"
BASE = f"https://{HOST}"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DATA = b"signature payload"
Handler = Callable[[httpx.Request], httpx.Response]


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def no_retry_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_registry, "_RETRY_DELAYS", (0.0, 0.0, 0.0))


class Script:
    """Answers by (method, path); records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {("GET", "/v2/"): lambda _: httpx.Response(200, json={})}
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            return httpx.Response(404, json={"errors": [{"code": "NOT_FOUND", "message": "unknown"}]})
        return route(request)

    def methods(self) -> list[tuple[str, str]]:
        return [(r.method, r.url.path) for r in self.seen if r.url.path != "/v2/"]


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def writer(script: Script) -> Iterator[RegistryWriter]:
    client = httpx.Client(transport=httpx.MockTransport(script), follow_redirects=True)
    with client, RegistryWriter(HOST, auth=CredentialStore([]), client=client) as opened:
        yield opened


def _upload(script: Script, location: str, *, digest_header: str | None = None) -> None:
    """POST answers with ``location``; a PUT to the upload path ``/v2/app/blobs/uploads/u1`` stores DATA."""
    script.routes[("POST", "/v2/app/blobs/uploads/")] = lambda _: httpx.Response(202, headers={"Location": location})

    def put(request: httpx.Request) -> httpx.Response:
        assert request.content == DATA
        assert request.url.params["digest"] == _sha256(DATA)
        return httpx.Response(201, headers={"Docker-Content-Digest": digest_header or _sha256(DATA)})

    script.routes[("PUT", "/v2/app/blobs/uploads/u1")] = put


@pytest.mark.parametrize(
    "location",
    [
        "/v2/app/blobs/uploads/u1?_state=abc%3D%3D",  # absolute path, as distribution with relativeurls
        f"{BASE}/v2/app/blobs/uploads/u1?_state=abc%3D%3D",  # absolute URL, distribution's default
        f"https://{HOST.upper()}/v2/app/blobs/uploads/u1",  # host names are case-insensitive
        f"http://{HOST}/v2/app/blobs/uploads/u1",  # http:// from behind a TLS-terminating proxy
        "u1?_state=abc%3D%3D",  # relative to the POST's URL
    ],
)
def test_blob_upload_follows_the_location(script: Script, writer: RegistryWriter, location: str) -> None:
    _upload(script, location)

    assert writer.push_blob("app", DATA) == _sha256(DATA)

    put = script.seen[-1]
    assert put.method == "PUT"
    assert put.url.scheme == "https"  # the scheme that works, whatever the Location says
    assert put.url.path == "/v2/app/blobs/uploads/u1"
    if "_state" in location:
        # The registry's state token goes back as it came, the digest beside it.
        assert put.url.query.decode().startswith("_state=abc%3D%3D&digest=sha256")
    assert put.headers["Content-Type"] == "application/octet-stream"
    assert script.methods()[:2] == [("HEAD", f"/v2/app/blobs/{_sha256(DATA)}"), ("POST", "/v2/app/blobs/uploads/")]


def test_blob_the_registry_has_is_not_uploaded(script: Script, writer: RegistryWriter) -> None:
    script.routes[("HEAD", f"/v2/app/blobs/{_sha256(DATA)}")] = lambda _: httpx.Response(200)
    assert writer.push_blob("app", DATA) == _sha256(DATA)
    assert script.methods() == [("HEAD", f"/v2/app/blobs/{_sha256(DATA)}")]


def test_upload_location_on_another_host_is_not_followed(script: Script, writer: RegistryWriter) -> None:
    _upload(script, "https://elsewhere.test/v2/app/blobs/uploads/u1")
    with pytest.raises(RegistryError, match="upload location on another host"):
        writer.push_blob("app", DATA)
    assert all(r.url.host == "registry.test" for r in script.seen)


def test_upload_without_location(script: Script, writer: RegistryWriter) -> None:
    script.routes[("POST", "/v2/app/blobs/uploads/")] = lambda _: httpx.Response(202)
    with pytest.raises(RegistryError, match="without a Location"):
        writer.push_blob("app", DATA)


def test_blob_stored_under_another_digest(script: Script, writer: RegistryWriter) -> None:
    _upload(script, "/v2/app/blobs/uploads/u1", digest_header=_sha256(b"other"))
    with pytest.raises(DigestMismatch, match="under the digest"):
        writer.push_blob("app", DATA)


def test_upload_session_lost(script: Script, writer: RegistryWriter) -> None:
    script.routes[("POST", "/v2/app/blobs/uploads/")] = lambda _: httpx.Response(
        202, headers={"Location": "/v2/app/blobs/uploads/gone"}
    )
    with pytest.raises(RegistryError, match="lost a blob upload"):
        writer.push_blob("app", DATA)


MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}).encode()


def test_push_manifest(script: Script, writer: RegistryWriter) -> None:
    def put(request: httpx.Request) -> httpx.Response:
        assert request.headers["Content-Type"] == OCI_MANIFEST
        assert request.content == MANIFEST
        return httpx.Response(201, headers={"Docker-Content-Digest": _sha256(MANIFEST)})

    script.routes[("PUT", "/v2/team/app/manifests/v1.sig")] = put
    assert writer.push_manifest("team/app", "v1.sig", MANIFEST, OCI_MANIFEST) == _sha256(MANIFEST)


def test_push_manifest_stored_under_another_digest(script: Script, writer: RegistryWriter) -> None:
    script.routes[("PUT", "/v2/app/manifests/1")] = lambda _: httpx.Response(
        201, headers={"Docker-Content-Digest": _sha256(b"something else")}
    )
    with pytest.raises(DigestMismatch, match="stored manifest"):
        writer.push_manifest("app", "1", MANIFEST, OCI_MANIFEST)


def test_push_manifest_by_a_digest_that_is_not_its_own(script: Script, writer: RegistryWriter) -> None:
    with pytest.raises(DigestMismatch):
        writer.push_manifest("app", _sha256(b"other"), MANIFEST, OCI_MANIFEST)
    assert script.seen == []


def test_missing_manifest_is_none(writer: RegistryWriter) -> None:
    assert writer.get_manifest("app", "sha256-" + "ab" * 32 + ".sig") is None


def test_get_manifest_checks_the_digest_header(script: Script, writer: RegistryWriter) -> None:
    script.routes[("GET", "/v2/app/manifests/1")] = lambda _: httpx.Response(
        200, content=MANIFEST, headers={"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": _sha256(b"x")}
    )
    with pytest.raises(DigestMismatch):
        writer.get_manifest("app", "1")


def test_get_manifest_by_digest_checks_the_bytes(script: Script, writer: RegistryWriter) -> None:
    wanted = _sha256(b"what was asked for")
    script.routes[("GET", f"/v2/app/manifests/{wanted}")] = lambda _: httpx.Response(
        200, content=MANIFEST, headers={"Content-Type": OCI_MANIFEST}
    )
    with pytest.raises(DigestMismatch):
        writer.get_manifest("app", wanted)


def test_get_manifest_media_type_falls_back_to_the_header(script: Script, writer: RegistryWriter) -> None:
    body = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    script.routes[("GET", "/v2/app/manifests/1")] = lambda _: httpx.Response(
        200, content=body, headers={"Content-Type": f"{OCI_INDEX}; charset=utf-8"}
    )
    fetched = writer.get_manifest("app", "1")
    assert fetched == (body, OCI_INDEX, _sha256(body))


def test_blob_that_does_not_match_its_digest(script: Script, writer: RegistryWriter) -> None:
    digest = _sha256(DATA)
    script.routes[("GET", f"/v2/app/blobs/{digest}")] = lambda _: httpx.Response(
        200, stream=httpx.ByteStream(b"tampered payload!")
    )
    with pytest.raises(DigestMismatch):
        writer.get_blob("app", digest, max_size=1024)


def test_blob_over_the_limit(script: Script, writer: RegistryWriter) -> None:
    digest = _sha256(DATA)
    # A fresh stream per answer: blobs are read raw, and MockTransport cannot replay content=.
    script.routes[("GET", f"/v2/app/blobs/{digest}")] = lambda _: httpx.Response(200, stream=httpx.ByteStream(DATA))
    with pytest.raises(BlobError, match="larger than"):
        writer.get_blob("app", digest, max_size=4)
    assert writer.get_blob("app", digest, max_size=len(DATA)) == DATA


def test_referrers_api(script: Script, writer: RegistryWriter) -> None:
    digest = _sha256(MANIFEST)
    assert writer.get_referrers("app", digest) is None  # 404: distribution 2.8
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()
    script.routes[("GET", f"/v2/app/referrers/{digest}")] = lambda _: httpx.Response(
        200, content=index, headers={"Content-Type": OCI_INDEX}
    )
    assert writer.get_referrers("app", digest, artifact_type="application/vnd.cyclonedx+json") == index
    assert script.seen[-1].url.params["artifactType"] == "application/vnd.cyclonedx+json"
    script.routes[("GET", f"/v2/app/referrers/{digest}")] = lambda _: httpx.Response(
        200, content=b"<html>catch-all</html>", headers={"Content-Type": "text/html"}
    )
    assert writer.get_referrers("app", digest) is None


def test_bearer_token_is_asked_for_pull_and_push(script: Script, writer: RegistryWriter) -> None:
    challenge = f'Bearer realm="{BASE}/token",service="registry.test"'

    def authorised(answer: Handler) -> Handler:
        def handle(request: httpx.Request) -> httpx.Response:
            if request.headers.get("Authorization") != "Bearer T":
                return httpx.Response(401, headers={"WWW-Authenticate": challenge}, json={"errors": []})
            return answer(request)

        return handle

    script.routes[("GET", "/v2/")] = authorised(lambda _: httpx.Response(200, json={}))
    script.routes[("GET", "/token")] = lambda _: httpx.Response(200, json={"token": "T", "expires_in": 300})
    script.routes[("PUT", "/v2/app/manifests/1")] = authorised(
        lambda _: httpx.Response(201, headers={"Docker-Content-Digest": _sha256(MANIFEST)})
    )

    writer.push_manifest("app", "1", MANIFEST, OCI_MANIFEST)

    tokens = [r for r in script.seen if r.url.path == "/token"]
    assert [r.url.params["scope"] for r in tokens] == ["repository:app:pull,push"]
    assert tokens[0].url.params["service"] == "registry.test"


@pytest.mark.parametrize(
    ("repository", "reference"),
    [("App", "1"), ("app/../x", "1"), ("app", "a/b"), ("app", "1?x=y")],
)
def test_names_that_would_change_the_url_are_refused(
    script: Script, writer: RegistryWriter, repository: str, reference: str
) -> None:
    with pytest.raises(RegistryError, match="invalid"):
        writer.push_manifest(repository, reference, MANIFEST, OCI_MANIFEST)
    assert script.seen == []


def test_credentials_refused_for_a_push(script: Script, tmp_path: Path) -> None:
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auths": {HOST: {"auth": base64.b64encode(b"ci:wrong").decode()}}}))

    def refuse(_: httpx.Request) -> httpx.Response:
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="registry"'}, json={"errors": []})

    script.routes[("GET", "/v2/")] = refuse
    script.routes[("PUT", "/v2/app/manifests/1")] = refuse
    client = httpx.Client(transport=httpx.MockTransport(script))
    refused = pytest.raises(AuthError, match=re.escape(f"refused user 'ci' (from {auth_file}) for pushing to app"))
    with client, RegistryWriter(HOST, auth=CredentialStore([auth_file]), client=client) as writer, refused:
        writer.push_manifest("app", "1", MANIFEST, OCI_MANIFEST)
