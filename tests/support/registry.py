"""Real registries for tests: CNCF distribution (``docker-registry``) on loopback.

Fixtures (``tests/conftest.py`` lists this module in ``pytest_plugins``, so every
test can name them):

``oci_test_layout``      (session) an OCI layout with tags ``single``, ``multi``
                         (an index: linux/amd64 + linux/arm64) and ``big`` (one
                         20 MB layer of random data); see :class:`TestLayout`.
``registry``             an anonymous registry, empty.
``basic_auth_registry``  htpasswd (bcrypt) Basic auth; user ``REGISTRY_USER``.
``token_auth_registry``  ``auth: token`` with a token server on another loopback
                         port that issues RS256 JWTs (x5c header) for the same user.
``stub_registry``        :class:`StubRegistry`: a tiny scripted HTTP server for
                         answers a real registry never gives (bad JSON, 500s).

Each registry fixture is a :class:`RunningRegistry`: ``push(layout, tag, dest)``
copies an image in with skopeo, ``blob_path(digest)`` is the blob's file in the
storage directory, ``write_auth_file(path)`` writes a containers auth.json for
it, ``kill()`` stops it at once. The fixtures skip, saying why, when
``docker-registry`` or ``skopeo`` (or bcrypt / openssl for the auth variants)
are missing.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from patchline.oci._manifest import host_platform

__all__ = [
    "REGISTRY_PASSWORD",
    "REGISTRY_USER",
    "LayoutImage",
    "Reply",
    "RunningRegistry",
    "StubRegistry",
    "TestLayout",
    "TokenServer",
    "basic_auth_registry",
    "build_test_layout",
    "oci_test_layout",
    "registry",
    "start_registry",
    "stub_registry",
    "token_auth_registry",
]

REGISTRY_USER = "patchline"
REGISTRY_PASSWORD = "s3cret-test-pass"
TOKEN_SERVICE = "patchline-test-registry"
TOKEN_ISSUER = "patchline-test-issuer"
SETUP_HINT = "run scripts/setup-host.sh"

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

AuthKind = Literal["none", "basic", "token"]


# -- images ------------------------------------------------------------------


@dataclass(frozen=True)
class LayoutImage:
    """One single-platform image written into a layout."""

    platform: str  # "linux/amd64"
    manifest_digest: str
    manifest_size: int
    config_digest: str
    layer_digests: tuple[str, ...]
    layer_sizes: tuple[int, ...]
    diff_ids: tuple[str, ...]
    files: Mapping[str, bytes]


@dataclass(frozen=True)
class TestLayout:
    """An OCI layout directory with the tags ``single``, ``multi`` and ``big``."""

    __test__ = False  # not a test class, despite the name

    path: Path
    single: LayoutImage  # for the host platform
    multi_index_digest: str
    multi: Mapping[str, LayoutImage]  # by platform: "linux/amd64", "linux/arm64"
    big: LayoutImage  # one layer of random data, for streaming tests

    def blob(self, digest: str) -> bytes:
        algorithm, hexpart = digest.split(":", 1)
        return (self.path / "blobs" / algorithm / hexpart).read_bytes()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write_blob(layout: Path, data: bytes) -> str:
    digest = _sha256(data)
    target = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return digest


def _layer(files: Mapping[str, bytes]) -> tuple[bytes, bytes]:
    """(tar, gzip of it), both reproducible."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(name).parent) for name in files} - {"."})
        for directory in dirs:
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o644, 0
            tar.addfile(info, io.BytesIO(content))
    tar_bytes = buffer.getvalue()
    return tar_bytes, gzip.compress(tar_bytes, compresslevel=1, mtime=0)


def _image(layout: Path, platform: str, layers: list[Mapping[str, bytes]]) -> LayoutImage:
    os_name, arch = platform.split("/")[:2]
    layer_descriptors: list[dict[str, Any]] = []
    diff_ids: list[str] = []
    files: dict[str, bytes] = {}
    for layer_files in layers:
        tar_bytes, gz_bytes = _layer(layer_files)
        diff_ids.append(_sha256(tar_bytes))
        layer_descriptors.append(
            {"mediaType": OCI_LAYER_GZIP, "digest": _write_blob(layout, gz_bytes),
             "size": len(gz_bytes)}
        )
        files.update(layer_files)
    config = json.dumps(
        {
            "architecture": arch,
            "os": os_name,
            "created": "2024-01-01T00:00:00Z",
            "config": {"Env": ["PATH=/usr/bin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"patchline test layer {i}"} for i in range(len(layers))],
        },
        sort_keys=True,
    ).encode()
    config_digest = _write_blob(layout, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": layer_descriptors,
        },
        sort_keys=True,
    ).encode()
    return LayoutImage(
        platform=platform,
        manifest_digest=_write_blob(layout, manifest),
        manifest_size=len(manifest),
        config_digest=config_digest,
        layer_digests=tuple(d["digest"] for d in layer_descriptors),
        layer_sizes=tuple(d["size"] for d in layer_descriptors),
        diff_ids=tuple(diff_ids),
        files=files,
    )


def build_test_layout(path: Path, *, big_layer_bytes: int = 20 << 20) -> TestLayout:
    """Write the test images as an OCI layout at ``path`` (see :class:`TestLayout`)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    host = host_platform()
    host_name = f"{host.os}/{host.architecture}"
    single = _image(
        path,
        host_name,
        [
            {"etc/os-release": b'ID=patchline-test\nVERSION_ID="1"\n', "bin/hello": b"hello\n"},
            {"etc/motd": b"second layer\n"},
        ],
    )
    multi = {
        platform: _image(path, platform, [{"etc/arch": platform.encode() + b"\n"}])
        for platform in ("linux/amd64", "linux/arm64")
    }
    index_entries = []
    for platform, image in multi.items():
        os_name, arch = platform.split("/")
        entry: dict[str, Any] = {
            "mediaType": OCI_MANIFEST,
            "digest": image.manifest_digest,
            "size": image.manifest_size,
            "platform": {"os": os_name, "architecture": arch},
        }
        if arch == "arm64":
            entry["platform"]["variant"] = "v8"
        index_entries.append(entry)
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index_entries}, sort_keys=True
    ).encode()
    index_digest = _write_blob(path, index)
    big = _image(path, host_name, [{"big.bin": os.urandom(big_layer_bytes)}])

    def ref(tag: str, digest: str, size: int, media_type: str) -> dict[str, Any]:
        return {
            "mediaType": media_type,
            "digest": digest,
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }

    top = {
        "schemaVersion": 2,
        "manifests": [
            ref("single", single.manifest_digest, single.manifest_size, OCI_MANIFEST),
            ref("multi", index_digest, len(index), OCI_INDEX),
            ref("big", big.manifest_digest, big.manifest_size, OCI_MANIFEST),
        ],
    }
    (path / "index.json").write_text(json.dumps(top, indent=1))
    return TestLayout(path, single, index_digest, multi, big)


# -- processes ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_tools(*tools: str) -> None:
    """Skip the test, with the reason, when a host tool is missing."""
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed: {SETUP_HINT}")


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for htpasswd: the ``bcrypt`` module, else apache2-utils' htpasswd."""
    try:
        import bcrypt
    except ImportError:
        pass
    else:
        return str(bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode())
    if shutil.which("htpasswd"):
        out = subprocess.run(
            ["htpasswd", "-nbB", "-C", "5", "user", password],
            check=True, capture_output=True, text=True,
        ).stdout
        return out.strip().split(":", 1)[1]
    pytest.skip("neither the bcrypt module nor htpasswd is installed: pip install -e '.[test]'")


@dataclass
class RunningRegistry:
    """A ``docker-registry serve`` process on 127.0.0.1 with its own storage."""

    host: str  # 127.0.0.1:PORT
    storage: Path
    workdir: Path
    process: subprocess.Popen[bytes]
    auth: AuthKind
    username: str | None = None
    password: str | None = None
    token_server: TokenServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def ref(self, name: str) -> str:
        """``127.0.0.1:PORT/NAME`` (NAME is ``repo:tag`` or ``repo@digest``)."""
        return f"{self.host}/{name}"

    def blob_path(self, digest: str) -> Path:
        algorithm, hexpart = digest.split(":", 1)
        return (
            self.storage / "docker" / "registry" / "v2" / "blobs" / algorithm / hexpart[:2]
            / hexpart / "data"
        )

    def push(self, layout: Path, tag: str, dest: str, *, all_platforms: bool = False) -> None:
        """``skopeo copy oci:LAYOUT:TAG docker://HOST/DEST`` (``--all`` for an index)."""
        policy = self.workdir / "policy.json"
        if not policy.exists():
            policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
        command = [
            "skopeo", "--policy", str(policy), "copy", "--quiet",
            "--dest-tls-verify=false", "--dest-authfile", str(self.workdir / "no-auth.json"),
        ]
        if self.username is not None:
            command += ["--dest-creds", f"{self.username}:{self.password}"]
        if all_platforms:
            command.append("--all")
        command += [f"oci:{layout}:{tag}", f"docker://{self.host}/{dest}"]
        env = {**os.environ, "REGISTRY_AUTH_FILE": str(self.workdir / "no-auth.json")}
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"skopeo copy failed: {result.stderr.strip()}\n{self.log_tail()}")

    def write_auth_file(
        self, path: Path, *, username: str | None = None, password: str | None = None
    ) -> Path:
        """A containers auth.json with this registry's (or the given) credentials."""
        user = username if username is not None else self.username
        secret = password if password is not None else self.password
        encoded = base64.b64encode(f"{user}:{secret}".encode()).decode()
        path.write_text(json.dumps({"auths": {self.host: {"auth": encoded}}}))
        return path

    def log_tail(self, lines: int = 20) -> str:
        log = self.workdir / "registry.log"
        if not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """Stop the registry at once (SIGKILL), as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def _registry_config(
    storage: Path, port: int, auth: AuthKind, workdir: Path, token: TokenServer | None
) -> str:
    lines = [
        "version: 0.1",
        "log:",
        "  level: info",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        f"  secret: {uuid.uuid4().hex}",
    ]
    if auth == "basic":
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text(f"{REGISTRY_USER}:{bcrypt_hash(REGISTRY_PASSWORD)}\n")
        lines += ["auth:", "  htpasswd:", "    realm: patchline-test", f"    path: {htpasswd}"]
    elif auth == "token":
        assert token is not None
        lines += [
            "auth:",
            "  token:",
            f"    realm: {token.url}/token",
            f"    service: {TOKEN_SERVICE}",
            f"    issuer: {TOKEN_ISSUER}",
            f"    rootcertbundle: {token.cert_path}",
        ]
    return "\n".join(lines) + "\n"


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    with httpx.Client(trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"docker-registry exited with {process.returncode}:\n"
                    + log.read_text(errors="replace")[-2000:]
                )
            with contextlib.suppress(httpx.TransportError):
                client.get(url)
                return
            time.sleep(0.05)
    raise RuntimeError(f"docker-registry did not answer at {url} within 20 s")


@contextlib.contextmanager
def start_registry(workdir: Path, *, auth: AuthKind = "none") -> Iterator[RunningRegistry]:
    """Run ``docker-registry serve`` on a free loopback port until the block ends."""
    require_tools("docker-registry", "skopeo")
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    with contextlib.ExitStack() as stack:
        token: TokenServer | None = None
        if auth == "token":
            token = stack.enter_context(TokenServer.start(workdir / "token"))
        port = free_port()
        config = workdir / "config.yml"
        config.write_text(_registry_config(storage, port, auth, workdir, token))
        log = workdir / "registry.log"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                ["docker-registry", "serve", str(config)],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        running = RunningRegistry(
            host=f"127.0.0.1:{port}", storage=storage, workdir=workdir, process=process,
            auth=auth,
            username=REGISTRY_USER if auth != "none" else None,
            password=REGISTRY_PASSWORD if auth != "none" else None,
            token_server=token,
        )
        stack.callback(running.stop)
        _wait_until_serving(f"{running.url}/v2/", process, log)
        yield running


# -- token server ---------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class TokenServer:
    """Issues distribution-style JWTs (RS256, ``x5c`` header) on 127.0.0.1.

    ``GET /token?service=...&scope=repository:NAME:ACTIONS`` with Basic
    ``REGISTRY_USER``/``REGISTRY_PASSWORD`` grants the scopes asked for; without
    credentials it grants nothing; with wrong ones it answers 401.
    """

    url: str
    cert_path: Path
    key_path: Path
    cert_der: bytes
    requests: list[dict[str, Any]] = field(default_factory=list)

    def sign(self, claims: Mapping[str, Any]) -> str:
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self.cert_der).decode()]}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key_path)],
            input=signing_input.encode(), capture_output=True, check=True,
        ).stdout
        return f"{signing_input}.{_b64url(signature)}"

    def issue(self, account: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": TOKEN_ISSUER, "sub": account, "aud": TOKEN_SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex,
            "access": access,
        }
        return self.sign(claims)

    @classmethod
    @contextlib.contextmanager
    def start(cls, workdir: Path) -> Iterator[TokenServer]:
        require_tools("openssl")
        workdir.mkdir(parents=True, exist_ok=True)
        cert, key = workdir / "cert.pem", workdir / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
             "-out", str(cert), "-days", "2", "-subj", "/CN=patchline-test-token-issuer"],
            check=True, capture_output=True,
        )
        der = subprocess.run(
            ["openssl", "x509", "-in", str(cert), "-outform", "DER"],
            check=True, capture_output=True,
        ).stdout
        server_ref: list[TokenServer] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                token_server = server_ref[0]
                parsed = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(parsed.query)
                account = None
                good = True
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    account = user
                    good = (user, password) == (REGISTRY_USER, REGISTRY_PASSWORD)
                token_server.requests.append(
                    {"path": parsed.path, "query": query, "account": account, "ok": good}
                )
                if parsed.path != "/token" or query.get("service") != [TOKEN_SERVICE]:
                    self._reply(404, {"error": "unknown service"})
                elif not good:
                    self._reply(401, {"details": "wrong username or password"})
                else:
                    scopes = query.get("scope", []) if account else []
                    token = token_server.issue(account or "", scopes)
                    self._reply(200, {"token": token, "access_token": token, "expires_in": 300})

            def _reply(self, status: int, doc: Mapping[str, Any]) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        server = cls(f"http://127.0.0.1:{httpd.server_address[1]}", cert, key, der)
        server_ref.append(server)
        thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        try:
            yield server
        finally:
            httpd.shutdown()
            httpd.server_close()


# -- a scripted stand-in ---------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]


class StubRegistry:
    """An HTTP server on 127.0.0.1 that answers registry paths from a table.

    For the answers a real registry never gives: a manifest that is not JSON, a
    wrong ``Docker-Content-Digest``, 500s, a Bearer challenge it scripts itself.
    ``routes[path]`` is a :class:`Reply`, a list of them (served in turn, the last
    one repeated), or a function of the :class:`SeenRequest`. ``/v2/`` answers 200
    unless routed. With ``bearer_token`` set, every ``/v2/`` path wants
    ``Authorization: Bearer TOKEN`` and ``/token`` hands it out (to
    ``REGISTRY_USER``/``REGISTRY_PASSWORD`` if ``token_needs_password``).
    """

    def __init__(self) -> None:
        self.routes: dict[str, Reply | list[Reply] | Callable[[SeenRequest], Reply]] = {}
        self.requests: list[SeenRequest] = []
        self.bearer_token: str | None = None
        self.token_needs_password = False
        self.token_key = "token"
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self._answer("POST")

            def _answer(self, method: str) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                seen = SeenRequest(
                    method, parsed.path, urllib.parse.parse_qs(parsed.query), dict(self.headers)
                )
                stub.requests.append(seen)
                reply = stub._reply_for(seen)
                self.send_response(reply.status)
                headers = {"Content-Length": str(len(reply.body)), **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def add_manifest(
        self, repository: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST,
        *, digest_header: str | None = None,
    ) -> str:
        digest = _sha256(body)
        headers = {"Content-Type": media_type, "Docker-Content-Digest": digest_header or digest}
        self.routes[f"/v2/{repository}/manifests/{reference}"] = Reply(200, body, headers)
        self.routes[f"/v2/{repository}/manifests/{digest}"] = Reply(200, body, headers)
        return digest

    def add_blob(self, repository: str, body: bytes) -> str:
        digest = _sha256(body)
        self.routes[f"/v2/{repository}/blobs/{digest}"] = Reply(200, body)
        return digest

    def _reply_for(self, seen: SeenRequest) -> Reply:
        if self.bearer_token is not None:
            if seen.path == "/token":
                return self._token_reply(seen)
            if seen.headers.get("Authorization") != f"Bearer {self.bearer_token}":
                challenge = (
                    f'Bearer realm="{self.url}/token",service="stub",'
                    f'scope="repository:test/img:pull"'
                )
                body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                return Reply(401, body, {"WWW-Authenticate": challenge})
        route = self.routes.get(seen.path)
        if route is None:
            if seen.path == "/v2/":
                return Reply(200, b"{}")
            return Reply(404, b'{"errors":[{"code":"NOT_FOUND","message":"unknown"}]}')
        if isinstance(route, list):
            return route.pop(0) if len(route) > 1 else route[0]
        if callable(route):
            return route(seen)
        return route

    def _token_reply(self, seen: SeenRequest) -> Reply:
        if self.token_needs_password:
            expected = base64.b64encode(f"{REGISTRY_USER}:{REGISTRY_PASSWORD}".encode()).decode()
            if seen.headers.get("Authorization") != f"Basic {expected}":
                return Reply(401, b'{"details":"bad credentials"}')
        body = json.dumps({self.token_key: self.bearer_token, "expires_in": 300}).encode()
        return Reply(200, body, {"Content-Type": "application/json"})

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# -- fixtures ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def oci_test_layout(tmp_path_factory: pytest.TempPathFactory) -> TestLayout:
    return build_test_layout(tmp_path_factory.mktemp("oci-layout") / "layout")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    with start_registry(tmp_path / "registry") as running:
        yield running


@pytest.fixture
def basic_auth_registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    with start_registry(tmp_path / "registry-basic", auth="basic") as running:
        yield running


@pytest.fixture
def token_auth_registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    with start_registry(tmp_path / "registry-token", auth="token") as running:
        yield running


@pytest.fixture
def stub_registry() -> Iterator[StubRegistry]:
    stub = StubRegistry()
    try:
        yield stub
    finally:
        stub.close()


def forget_local_images_of(host: str) -> None:
    """Remove from podman storage every name of registry ``host``: by name, not by ``REPO:TAG`` (images pulled
    by digest have no tag) and not by ID (a reproducible build shares its ID with another registry's copy,
    which must stay)."""
    listing = subprocess.run(["podman", "images", "--format", "json"], capture_output=True, text=True, check=False)
    try:
        images = json.loads(listing.stdout or "[]") if listing.returncode == 0 else []
    except json.JSONDecodeError:
        return
    mine = sorted({n for i in images for n in i.get("Names") or () if n.startswith(host + "/")})
    if mine:
        subprocess.run(["podman", "rmi", *mine], capture_output=True, check=False)


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports (replica N of a service listens on first + N)."""
    for _ in range(200):
        first = random.randint(20000, 40000)
        try:
            with contextlib.ExitStack() as stack:
                for port in range(first, first + count):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError(f"no run of {count} free loopback ports")
