"""OSV feeds are untrusted input: alias bombs, deep nesting, plain http, SHA-256 pins and download limits.

Downloads come from real HTTP(S) servers on 127.0.0.1 (an https one with a certificate made here).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import ipaddress
import shutil
import ssl
import threading
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from patchline.advisories import Advisory, AdvisoryIndex, OsvFeed
from patchline.advisories.osv import MAX_DOWNLOAD_BYTES, feed_source
from patchline.assess.model import AssessSkip
from patchline.errors import FeedError
from tests.unit.advisories.conftest import DATA

GOOD = DATA / "debian" / "DSA-5514-1.json"
ALIAS_REASON = "YAML aliases are not allowed in an OSV record"


def _alias_bomb(levels: int = 7) -> bytes:
    """A "billion laughs" OSV record: 9**levels strings once expanded, from a few hundred bytes."""
    lines = ["id: BOMB-1", "modified: 2024-01-01T00:00:00Z", "l0: &l0 [" + ",".join(["lol"] * 9) + "]"]
    lines += [f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    lines.append("affected: [{package: {ecosystem: PyPI, name: lol}, versions: ['1.0']}]")
    return ("\n".join(lines) + "\n").encode()


def _peak_bytes(run: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _split(records: list[Advisory | AssessSkip]) -> tuple[list[Advisory], list[AssessSkip]]:
    return [r for r in records if isinstance(r, Advisory)], [r for r in records if isinstance(r, AssessSkip)]


# -- YAML aliases and nesting -----------------------------------------------------------------------------------


def test_alias_bomb_in_a_directory_is_a_skip_in_bounded_memory(tmp_path: Path) -> None:
    feed_dir = tmp_path / "feed"
    feed_dir.mkdir()
    bomb = _alias_bomb()
    assert len(bomb) < 600
    (feed_dir / "BOMB-1.yaml").write_bytes(bomb)
    shutil.copy(GOOD, feed_dir)
    records: list[Advisory | AssessSkip] = []
    peak = _peak_bytes(lambda: records.extend(OsvFeed(feed_dir, cache_dir=tmp_path / "cache").records()))
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"
    advisories, skips = _split(records)
    assert [a.id for a in advisories] == ["DSA-5514-1"]  # the rest of the feed goes on
    assert [(Path(s.what).name, s.reason) for s in skips] == [("BOMB-1.yaml", ALIAS_REASON)]


def test_alias_bomb_in_a_zip_is_a_skip_of_the_lazy_index(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "all.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("BOMB-1.yaml", _alias_bomb())
        z.write(GOOD, GOOD.name)
    index: list[AdvisoryIndex] = []
    feed = OsvFeed(tmp_path / "all.zip", cache_dir=tmp_path / "cache")
    peak = _peak_bytes(lambda: index.append(AdvisoryIndex.build_lazy([feed])))
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"
    assert [(s.what, s.reason) for s in index[0].skipped] == [(f"{tmp_path / 'all.zip'}!BOMB-1.yaml", ALIAS_REASON)]
    assert index[0].advisories == 1


def test_stars_in_text_are_not_aliases(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "id: PYSEC-0000-8\nmodified: 2023-11-03T16:28:41Z\n"
        "details: \"**bold** and * a bullet\"\nsummary: '*emphasis*'\n"
        "affected:\n- package: {name: foo, ecosystem: PyPI}\n  versions: ['1.0']\n"
    )
    (advisory,) = OsvFeed(tmp_path, cache_dir=tmp_path / "c").records()
    assert isinstance(advisory, Advisory)
    assert advisory.details == "**bold** and * a bullet" and advisory.summary == "*emphasis*"


@pytest.mark.parametrize(("name", "text"), [("DEEP-1.json", "[" * 100_000), ("DEEP-2.yaml", "[" * 100_000)])
def test_deeply_nested_record_is_a_skip(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    shutil.copy(GOOD, tmp_path)
    advisories, skips = _split(list(OsvFeed(tmp_path, cache_dir=tmp_path / "cache").records()))
    assert [a.id for a in advisories] == ["DSA-5514-1"]
    assert len(skips) == 1 and Path(skips[0].what).name == name and "not valid" in skips[0].reason


# -- servers ----------------------------------------------------------------------------------------------------

Route = Callable[[http.server.BaseHTTPRequestHandler], None]


class _Server:
    """A thread serving files from ``root``, or custom answers from ``routes``, on 127.0.0.1."""

    def __init__(self, root: Path, tls: ssl.SSLContext | None = None) -> None:
        self.root = root
        self.routes: dict[str, Route] = {}
        self.paths: list[str] = []
        server_self = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: object, **kwargs: object) -> None:
                super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

            def do_GET(self) -> None:
                server_self.paths.append(self.path)
                route = server_self.routes.get(self.path)
                if route is not None:
                    route(self)
                else:
                    super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[_Server]:
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(GOOD, root / GOOD.name)
    with zipfile.ZipFile(root / "all.zip", "w") as z:
        z.write(GOOD, GOOD.name)
    with _Server(root) as running:
        yield running


def _certificate(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for a self-signed 127.0.0.1 certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(9999, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_ctx = ssl.create_default_context(cadata=cert_pem.decode())
    return server_ctx, client_ctx


# -- plain http -------------------------------------------------------------------------------------------------


def test_plain_http_feed_is_refused_before_any_request(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(FeedError, match=r"plain http://.*allow_http"):
        OsvFeed(f"{server.base}/all.zip", cache_dir=tmp_path / "cache")
    assert server.paths == []


@pytest.mark.parametrize("how", ["keyword", "fragment"])
def test_plain_http_feed_allowed_for_that_feed(server: _Server, tmp_path: Path, how: str) -> None:
    url = f"{server.base}/all.zip"
    feed = (OsvFeed(url, allow_http=True, cache_dir=tmp_path / "cache") if how == "keyword"
            else OsvFeed(f"{url}#allow_http", cache_dir=tmp_path / "cache"))
    assert [r.id for r in feed.records() if isinstance(r, Advisory)] == ["DSA-5514-1"]
    assert feed.name == url  # the options are not part of the feed's name


def test_unknown_fragment_option_is_refused(server: _Server) -> None:
    with pytest.raises(FeedError, match="unknown option 'allow-http'"):
        OsvFeed(f"{server.base}/all.zip#allow-http")


def test_https_redirect_to_plain_http_is_refused(server: _Server, tmp_path: Path) -> None:
    server_tls, client_tls = _certificate(tmp_path)

    def redirect(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", f"{server.base}/all.zip")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with _Server(tmp_path, tls=server_tls) as https, httpx.Client(verify=client_tls, follow_redirects=True) as client:
        https.routes["/all.zip"] = redirect
        with pytest.raises(FeedError, match="redirected to plain http"):
            list(OsvFeed(f"{https.base}/all.zip", client=client, cache_dir=tmp_path / "cache").records())
        allowed = OsvFeed(f"{https.base}/all.zip#allow_http", client=client, cache_dir=tmp_path / "cache")
        assert [r.id for r in allowed.records() if isinstance(r, Advisory)] == ["DSA-5514-1"]


# -- SHA-256 pins -----------------------------------------------------------------------------------------------


def test_sha256_pin_is_verified(server: _Server, tmp_path: Path) -> None:
    url = f"{server.base}/all.zip"
    digest = hashlib.sha256((server.root / "all.zip").read_bytes()).hexdigest()
    pinned = OsvFeed(feed_source(url, allow_http=True, sha256=digest), cache_dir=tmp_path / "cache")
    assert [r.id for r in pinned.records() if isinstance(r, Advisory)] == ["DSA-5514-1"]
    assert pinned.revision == f"sha256:{digest}"

    wrong = "0" * 64
    with pytest.raises(FeedError, match=f"pinned to {wrong}"):
        list(OsvFeed(url, allow_http=True, sha256=wrong, cache_dir=tmp_path / "other-cache").records())
    # The cached copy of a good download is checked too (the server answers 304 to the revalidation).
    with pytest.raises(FeedError, match=f"pinned to {wrong}"):
        list(OsvFeed(url, allow_http=True, sha256=wrong, cache_dir=tmp_path / "cache").records())


def test_sha256_pin_of_a_local_zip(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "all.zip", "w") as z:
        z.write(GOOD, GOOD.name)
    digest = hashlib.sha256((tmp_path / "all.zip").read_bytes()).hexdigest()
    assert len(list(OsvFeed(tmp_path / "all.zip", sha256=digest, cache_dir=tmp_path / "c").records())) == 1
    with pytest.raises(FeedError, match="pinned"):
        list(OsvFeed(tmp_path / "all.zip", sha256="f" * 64, cache_dir=tmp_path / "c").records())
    with pytest.raises(FeedError, match="64 hexadecimal digits"):
        OsvFeed(tmp_path / "all.zip", sha256="abc")


# -- download limits --------------------------------------------------------------------------------------------


def test_download_limit_is_one_gibibyte() -> None:
    assert MAX_DOWNLOAD_BYTES == 1 << 30


def test_content_length_over_the_default_limit_is_refused_unread(server: _Server, tmp_path: Path) -> None:
    def huge(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(MAX_DOWNLOAD_BYTES + 1))
        handler.end_headers()
        handler.wfile.write(b"PK\x03\x04" + bytes(1 << 16))  # and hangs up: never the whole body

    server.routes["/huge.zip"] = huge
    with pytest.raises(FeedError, match=f"{MAX_DOWNLOAD_BYTES + 1} bytes, over the {MAX_DOWNLOAD_BYTES}-byte"):
        list(OsvFeed(f"{server.base}/huge.zip#allow_http", cache_dir=tmp_path / "cache").records())
    assert not list((tmp_path / "cache" / "downloads").glob("*"))


@pytest.mark.timeout(60)
def test_endless_body_without_length_stops_at_the_limit(server: _Server, tmp_path: Path) -> None:
    sent = [0]

    def endless(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.protocol_version = "HTTP/1.0"  # no Content-Length: the body ends when the server hangs up
        handler.send_response(200)
        handler.end_headers()
        chunk = bytes(1 << 16)
        try:
            while sent[0] < 64 << 20:  # a safety stop for the test only
                handler.wfile.write(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass

    server.routes["/endless.zip"] = endless
    limit = 1 << 20
    feed = OsvFeed(f"{server.base}/endless.zip#allow_http", cache_dir=tmp_path / "cache", max_download_bytes=limit)
    with pytest.raises(FeedError, match=f"over the {limit}-byte download limit"):
        list(feed.records())
    assert sent[0] < 64 << 20  # the client hung up long before the server's own stop
    assert not list((tmp_path / "cache" / "downloads").glob("*"))


def test_compressed_answer_is_refused(server: _Server, tmp_path: Path) -> None:
    def gzipped(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    server.routes["/gz.zip"] = gzipped
    with pytest.raises(FeedError, match="Content-Encoding 'gzip'"):
        list(OsvFeed(f"{server.base}/gz.zip#allow_http", cache_dir=tmp_path / "cache").records())
