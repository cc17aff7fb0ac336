"""Registry listing against scripted answers (httpx.MockTransport): pages, skips, odd registries.

The real registry (distribution 2.8) is in tests/integration/test_discovery_sources.py; it
ignores ``n`` on tags/list, so the Link pages of tags are exercised here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import pytest

from patchline.errors import ConfigError, ReferenceError_, RegistryError
from patchline.fleet import RegistryTag, list_registry_tags
from patchline.oci import _registry

HOST = "127.0.0.1:5000"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

Route = Callable[[httpx.Request], httpx.Response]


def _json(doc: Any, *, link: str | None = None, status: int = 200) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if link is not None:
        headers["Link"] = f'<{link}>; rel="next"'
    return httpx.Response(status, content=json.dumps(doc).encode(), headers=headers)


def _not_found(code: str = "NAME_UNKNOWN") -> httpx.Response:
    return _json({"errors": [{"code": code, "message": "unknown"}]}, status=404)


def _digest(name: str, tag: str) -> str:
    return "sha256:" + hashlib.sha256(f"{name}:{tag}".encode()).hexdigest()


class FakeRegistry:
    """Routes by (method, path); a page route gets the request's query as a dict."""

    def __init__(self) -> None:
        self.pages: dict[str, Callable[[Mapping[str, str]], httpx.Response]] = {}
        self.manifests: dict[tuple[str, str], Route] = {}
        self.seen: list[tuple[str, str]] = []  # (method, path?query)
        self.accepts: list[str] = []  # the Accept of each manifest request

    def handle(self, request: httpx.Request) -> httpx.Response:
        query = dict(request.url.params)
        self.seen.append((request.method, request.url.raw_path.decode()))
        path = request.url.path
        if path == "/v2/":
            return _json({})
        if path in self.pages:
            return self.pages[path](query)
        if "/manifests/" in path:
            self.accepts.append(request.headers.get("Accept", ""))
            name, _, tag = path.removeprefix("/v2/").rpartition("/manifests/")
            route = self.manifests.get((name, tag))
            if route is not None:
                return route(request)
            return _not_found("MANIFEST_UNKNOWN")
        return _not_found()

    def tagged(self, name: str, *tags: str, media_type: str = OCI_MANIFEST) -> None:
        for tag in tags:
            digest = _digest(name, tag)
            self.manifests[(name, tag)] = lambda request, d=digest: httpx.Response(
                200, headers={"Docker-Content-Digest": d, "Content-Type": media_type, "Content-Length": "10"}
            )

    def paged(self, path: str, key: str, pages: list[list[str]], *, link: str = "relative") -> None:
        """``pages`` served by ``last``: the first without it, each next after the previous page's end."""
        by_last = {None: 0, **{page[-1]: i + 1 for i, page in enumerate(pages[:-1])}}

        def serve(query: Mapping[str, str]) -> httpx.Response:
            index = by_last.get(query.get("last"))
            if index is None:
                return _json({key: []})
            page = pages[index]
            next_link = None
            if index + 1 < len(pages):
                target = f"{path}?last={page[-1]}&n={query.get('n')}"
                next_link = f"https://{HOST}{target}" if link == "absolute" else target
            return _json({"name": "x", key: page}, link=next_link if link != "none" else None)

        self.pages[path] = serve


@pytest.fixture(autouse=True)
def no_retry_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_registry, "_RETRY_DELAYS", (0.0, 0.0, 0.0))


@pytest.fixture
def fake() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def http(fake: FakeRegistry) -> Iterator[httpx.Client]:
    with httpx.Client(transport=httpx.MockTransport(fake.handle)) as client:
        yield client


def _list(http: httpx.Client, target: str = HOST, **kwargs: Any) -> list[RegistryTag]:
    return list(list_registry_tags(target, client=http, **kwargs))


def test_catalog_and_tags_follow_link_pages(fake: FakeRegistry, http: httpx.Client) -> None:
    fake.paged("/v2/_catalog", "repositories", [["alpha", "beta/x"], ["gamma"]])
    fake.paged("/v2/alpha/tags/list", "tags", [["1", "2"], ["3", "4"], ["5"]], link="absolute")
    fake.paged("/v2/beta/x/tags/list", "tags", [["latest"]])
    fake.paged("/v2/gamma/tags/list", "tags", [["v1", "v2"], ["v3"]])
    fake.tagged("alpha", "1", "2", "3", "4", "5")
    fake.tagged("beta/x", "latest", media_type=OCI_INDEX)
    fake.tagged("gamma", "v1", "v2", "v3")
    tags = _list(http, page_size=2)
    assert [(t.repository, t.tag) for t in tags] == [
        *((f"{HOST}/alpha", t) for t in "12345"),
        (f"{HOST}/beta/x", "latest"),
        *((f"{HOST}/gamma", t) for t in ("v1", "v2", "v3")),
    ]
    assert tags[5] == RegistryTag(f"{HOST}/beta/x", "latest", _digest("beta/x", "latest"), OCI_INDEX)
    assert all(t.manifest_digest == _digest(t.repository.split("/", 1)[1], t.tag) for t in tags)
    assert tags[0].reference == f"{HOST}/alpha:1"
    listings = [path for method, path in fake.seen if "/manifests/" not in path and path != "/v2/"]
    assert listings[:4] == [
        "/v2/_catalog?n=2",
        "/v2/alpha/tags/list?n=2",
        "/v2/alpha/tags/list?last=2&n=2",
        "/v2/alpha/tags/list?last=4&n=2",
    ]
    assert "/v2/_catalog?last=beta/x&n=2" in listings
    heads = [path for method, path in fake.seen if method == "HEAD"]
    assert len(heads) == 9 and not any(m == "GET" and "/manifests/" in p for m, p in fake.seen)


def test_without_link_a_full_page_asks_for_the_next(fake: FakeRegistry, http: httpx.Client) -> None:
    fake.paged("/v2/_catalog", "repositories", [["a", "b"], ["c"]], link="none")
    for name in "abc":
        fake.paged(f"/v2/{name}/tags/list", "tags", [["1"]])
        fake.tagged(name, "1")
    assert [t.repository for t in _list(http, page_size=2)] == [f"{HOST}/a", f"{HOST}/b", f"{HOST}/c"]
    assert ("GET", "/v2/_catalog?n=2&last=b") in fake.seen


def test_a_registry_that_ignores_n(fake: FakeRegistry, http: httpx.Client) -> None:
    """distribution 2.8 on tags/list: every tag at once, no Link, n and last ignored."""
    fake.pages["/v2/_catalog"] = lambda query: _json({"repositories": ["many", "two"]})
    fake.pages["/v2/many/tags/list"] = lambda query: _json({"name": "many", "tags": ["3", "1", "2"]})
    fake.pages["/v2/two/tags/list"] = lambda query: _json({"name": "two", "tags": ["b", "a"]})
    fake.tagged("many", "1", "2", "3")
    fake.tagged("two", "a", "b")
    tags = _list(http, page_size=2)
    assert [(t.repository.rsplit("/", 1)[1], t.tag) for t in tags] == [
        ("many", "3"), ("many", "1"), ("many", "2"), ("two", "b"), ("two", "a")
    ]
    # More than n names: that was all. Exactly n and no Link: one `last=` more, which brings nothing new.
    assert [p for _, p in fake.seen if p.startswith("/v2/many/tags")] == ["/v2/many/tags/list?n=2"]
    assert [p for _, p in fake.seen if p.startswith("/v2/two/tags")] == [
        "/v2/two/tags/list?n=2", "/v2/two/tags/list?n=2&last=a"
    ]


def test_vanished_repository_and_tag_are_skipped(fake: FakeRegistry, http: httpx.Client) -> None:
    fake.paged("/v2/_catalog", "repositories", [["gone", "kept"]])
    fake.paged("/v2/kept/tags/list", "tags", [["1", "2", "3"]])
    fake.tagged("kept", "1", "3")  # 2 was deleted after the listing
    skipped: list[tuple[str, str]] = []
    tags = _list(http, on_skip=lambda what, why: skipped.append((what, why)))
    assert [t.tag for t in tags] == ["1", "3"]
    assert [what for what, _ in skipped] == [f"{HOST}/gone", f"{HOST}/kept:2"]
    assert "went away after the catalog named it" in skipped[0][1] and "NAME_UNKNOWN" in skipped[0][1]
    assert "went away after it was listed" in skipped[1][1]
    assert _list(http) == tags  # without on_skip: skipped all the same


def test_repository_without_tags(fake: FakeRegistry, http: httpx.Client) -> None:
    fake.paged("/v2/_catalog", "repositories", [["empty"]])
    fake.pages["/v2/empty/tags/list"] = lambda query: _json({"name": "empty", "tags": None})
    assert _list(http) == []


def test_head_without_digest_falls_back_to_get(fake: FakeRegistry, http: httpx.Client) -> None:
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()

    def manifest(request: httpx.Request) -> httpx.Response:
        if request.method == "HEAD":
            return httpx.Response(200, headers={"Content-Length": str(len(body))})
        return httpx.Response(200, content=body)

    fake.paged("/v2/app/tags/list", "tags", [["1"]])
    fake.manifests[("app", "1")] = manifest
    (tag,) = _list(http, f"{HOST}/app")
    assert tag.manifest_digest == "sha256:" + hashlib.sha256(body).hexdigest()
    assert tag.media_type == OCI_INDEX  # from the body: no Content-Type was sent
    assert [m for m, p in fake.seen if "/manifests/" in p] == ["HEAD", "GET"]
    for accept in fake.accepts:
        assert {a.strip() for a in accept.split(",")} == {
            OCI_INDEX,
            OCI_MANIFEST,
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        }


def test_single_repository_target(fake: FakeRegistry, http: httpx.Client) -> None:
    fake.paged("/v2/team/app/tags/list", "tags", [["1"]])
    fake.tagged("team/app", "1")
    assert [t.reference for t in _list(http, f"docker://{HOST}/team/app/")] == [f"{HOST}/team/app:1"]
    assert not any("_catalog" in p for _, p in fake.seen)
    with pytest.raises(RegistryError, match=f"^repository team/nothing not found in {HOST}$"):
        _list(http, f"{HOST}/team/nothing")


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (lambda q: _not_found("UNSUPPORTED"), f"{HOST} does not serve the catalog API"),
        (lambda q: httpx.Response(200, content=b"<html>"), "the catalog of .* is not JSON"),
        (lambda q: _json(["a"]), "JSON that is not an object"),
        (lambda q: _json({"repositories": "a"}), "'repositories' is not a list of names"),
        (lambda q: _json({"repositories": ["a", "b"]}, link="https://198.51.100.7/v2/_catalog?last=b"), "another host"),
        (lambda q: _json({"repositories": ["a", "b"]}, link="/v2/_catalog?n=2"), "loop back"),
        (lambda q: _json({"repositories": ["a", "b"]}, link="/elsewhere?x=1"), "not an API path"),
        (lambda q: _json({}, status=500), "HTTP 500 after 4 attempts"),
    ],
)
def test_catalog_errors(
    fake: FakeRegistry, http: httpx.Client, route: Callable[[Mapping[str, str]], httpx.Response], message: str
) -> None:
    fake.pages["/v2/_catalog"] = route
    for name in "ab":
        fake.paged(f"/v2/{name}/tags/list", "tags", [["1"]])
        fake.tagged(name, "1")
    with pytest.raises(RegistryError, match=message) as caught:
        _list(http, page_size=2)
    assert "\n" not in str(caught.value)


def test_catalog_refused(fake: FakeRegistry, http: httpx.Client) -> None:
    fake.pages["/v2/_catalog"] = lambda q: _json({"errors": [{"code": "DENIED", "message": "no"}]}, status=403)
    with pytest.raises(RegistryError, match="denied access to the catalog"):
        _list(http)


def test_names_that_cannot_go_into_a_path_are_skipped(fake: FakeRegistry, http: httpx.Client) -> None:
    fake.paged("/v2/_catalog", "repositories", [["../admin", "ok"]])
    fake.pages["/v2/ok/tags/list"] = lambda q: _json({"name": "ok", "tags": ["1", "a/../../b", "-x"]})
    fake.tagged("ok", "1")
    skipped: list[str] = []
    tags = _list(http, on_skip=lambda what, why: skipped.append(what))
    assert [t.reference for t in tags] == [f"{HOST}/ok:1"]
    assert skipped == [f"{HOST}/../admin", f"{HOST}/ok:a/../../b", f"{HOST}/ok:-x"]
    assert not any(".." in p for _, p in fake.seen)


@pytest.mark.parametrize(
    "target",
    ["", "/team/app", "no host/app", f"{HOST}/team/app:1", f"{HOST}/team/app@sha256:{'a' * 64}", f"{HOST}/Team/App"],
)
def test_bad_targets(target: str, http: httpx.Client) -> None:
    with pytest.raises(ReferenceError_):
        list_registry_tags(target, client=http)  # at the call, before any iteration


def test_page_size_must_be_positive(http: httpx.Client) -> None:
    with pytest.raises(ConfigError, match="page_size"):
        list_registry_tags(HOST, client=http, page_size=0)
