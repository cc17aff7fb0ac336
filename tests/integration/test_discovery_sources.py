"""The discovery sources against the real things: podman containers, a registry, (no) Kubernetes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from patchline.errors import AuthError, DiscoveryError, RegistryError
from patchline.fleet import RegistryTag, list_kubernetes_pods, list_podman_containers, list_registry_tags
from patchline.oci import _registry
from patchline.oci._registry import new_registry_client
from tests.support.registry import REGISTRY_USER, RunningRegistry, TestLayout

pytestmark = pytest.mark.integration

PROBE_IMAGE = "localhost/patchline/probe:busybox"  # scripts/setup-host.sh makes it from busybox-static
SETUP_HINT = "run scripts/setup-host.sh"


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, timeout=120)


# -- podman -----------------------------------------------------------------------------


@pytest.fixture
def sleepers() -> Iterator[list[str]]:
    """Two running containers of the probe image (``sleep 300``), removed afterwards."""
    if shutil.which("podman") is None:
        pytest.skip(f"podman not installed: {SETUP_HINT}")
    if _podman("image", "exists", PROBE_IMAGE, check=False).returncode != 0:
        pytest.skip(f"the probe image {PROBE_IMAGE} is missing: {SETUP_HINT}")
    run_id = uuid.uuid4().hex[:8]
    names = [f"patchline-discovery-{run_id}-{i}" for i in range(2)]
    try:
        for name in names:
            started = _podman(
                "run", "--detach", "--name", name, "--network", "none",
                "--label", "patchline.test=discovery", "--label", f"patchline.run={run_id}",
                PROBE_IMAGE, "/bin/busybox", "sleep", "300",
                check=False,
            )
            if started.returncode != 0:
                pytest.skip(f"podman run fails here: {started.stderr.strip()}; {SETUP_HINT}")
        yield names
    finally:
        _podman("rm", "--force", "--time", "0", *names, check=False)


def test_podman_lists_running_containers(sleepers: list[str]) -> None:
    before = datetime.now(UTC)
    found = {w.name: w for w in list_podman_containers()}
    repo_digests = json.loads(_podman("image", "inspect", "--format", "{{json .RepoDigests}}", PROBE_IMAGE).stdout)
    # One per manifest podman has seen for the name (a push elsewhere can add another): any of them is the image.
    probe_repo_digests = {d.split("@", 1)[1] for d in repo_digests if d.startswith("localhost/patchline/probe@")}
    assert probe_repo_digests
    for name in sleepers:
        workload = found[name]
        image_hex = _podman("inspect", "--format", "{{.Image}}", name).stdout.strip()
        container_id = _podman("inspect", "--format", "{{.Id}}", name).stdout.strip()
        assert workload.image_id == f"sha256:{image_hex}"
        assert workload.container_id == container_id
        assert workload.manifest_digest in probe_repo_digests
        assert (workload.runtime, workload.host, workload.namespace) == ("podman", socket.gethostname(), "")
        assert (workload.image_ref, workload.state) == (PROBE_IMAGE, "running")
        assert ("patchline.test", "discovery") in workload.labels
        assert workload.started_at is not None and workload.started_at.tzinfo is not None
        assert before - timedelta(minutes=5) < workload.started_at <= datetime.now(UTC)


def test_podman_stopped_container_leaves_the_running_list(sleepers: list[str]) -> None:
    stopped, running = sleepers
    _podman("stop", "--time", "0", stopped)
    names = {w.name for w in list_podman_containers(host="host-a")}
    assert running in names and stopped not in names
    everything = {w.name: w for w in list_podman_containers(all=True, host="host-a")}
    assert everything[stopped].state == "exited"
    assert everything[running].state == "running"
    assert everything[stopped].host == "host-a"


def test_podman_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(DiscoveryError, match="podman is not installed"):
        list_podman_containers(podman=str(tmp_path / "no-podman"))


def test_podman_failure_shows_its_stderr(tmp_path: Path) -> None:
    if shutil.which("podman") is None:
        pytest.skip(f"podman not installed: {SETUP_HINT}")
    broken = tmp_path / "podman"
    broken.write_text('#!/bin/sh\nexec podman --log-level=nonsense "$@"\n')
    broken.chmod(0o755)
    with pytest.raises(DiscoveryError, match=r"`podman ps` failed \(exit \d+\): .*nonsense") as caught:
        list_podman_containers(podman=str(broken))
    assert "\n" not in str(caught.value)


# -- registry ---------------------------------------------------------------------------

# repository -> tag -> the layout tag pushed there ("multi" is an OCI index)
FLEET = {
    "team-a/api": {"1": "single", "2": "multi", "3": "single"},
    "team-a/web": {"1": "single", "latest": "multi"},
    "team-b/db": {"15": "single", "16": "single", "17": "multi", "18": "single", "19": "single"},
    "tools/probe": {"x": "single"},
    "zeta": {"stable": "multi"},
}


@pytest.fixture(autouse=True)
def isolated_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credential file of the host may leak into a test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR", "DOCKER_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def _push_fleet(reg: RunningRegistry, layout: TestLayout) -> None:
    for repository, tags in FLEET.items():
        for tag, source in tags.items():
            reg.push(layout.path, source, f"{repository}:{tag}", all_platforms=source == "multi")


def _skopeo_digest(reg: RunningRegistry, reference: str) -> str:
    command = ["skopeo", "inspect", "--tls-verify=false", "--no-tags", f"docker://{reg.ref(reference)}"]
    if reg.username is not None:
        command[2:2] = ["--creds", f"{reg.username}:{reg.password}"]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
    return str(json.loads(result.stdout)["Digest"])


class RequestLog:
    """The paths and queries of every request a client sends."""

    def __init__(self) -> None:
        self.urls: list[httpx.URL] = []

    def __call__(self, request: httpx.Request) -> None:
        self.urls.append(request.url)

    def gets(self, path: str) -> list[httpx.URL]:
        return [u for u in self.urls if u.path == path]


@pytest.fixture
def logged_client() -> Iterator[tuple[httpx.Client, RequestLog]]:
    log = RequestLog()
    client = new_registry_client(insecure=True, timeout=10)
    client.event_hooks["request"].append(log)
    with client:
        yield client, log


def test_registry_lists_every_tag_across_pages(
    registry: RunningRegistry, oci_test_layout: TestLayout, logged_client: tuple[httpx.Client, RequestLog]
) -> None:
    _push_fleet(registry, oci_test_layout)
    client, log = logged_client
    tags = list(list_registry_tags(registry.host, insecure=True, page_size=2, client=client))
    expected = {(f"{registry.host}/{repo}", tag) for repo, repo_tags in FLEET.items() for tag in repo_tags}
    assert sorted((t.repository, t.tag) for t in tags) == sorted(expected)
    by_layout = {"single": oci_test_layout.single.manifest_digest, "multi": oci_test_layout.multi_index_digest}
    media = {"single": "application/vnd.oci.image.manifest.v1+json", "multi": "application/vnd.oci.image.index.v1+json"}
    for found in tags:
        repository = found.repository.removeprefix(f"{registry.host}/")
        source = FLEET[repository][found.tag]
        assert found.manifest_digest == by_layout[source]
        assert found.manifest_digest == _skopeo_digest(registry, f"{repository}:{found.tag}")
        assert found.media_type == media[source]
    # 5 repositories in pages of 2, lexically: the registry's Link headers were followed.
    catalog_pages = [dict(u.params) for u in log.gets("/v2/_catalog")]
    assert catalog_pages == [{"n": "2"}, {"last": "team-a/web", "n": "2"}, {"last": "tools/probe", "n": "2"}]
    # distribution 2.8 ignores n on tags/list (it answers every tag, no Link; the unit tests cover
    # Link pages of tags): a page longer than n ends the listing, a full one without Link gets one
    # `last=` request more.
    assert [dict(u.params) for u in log.gets("/v2/team-b/db/tags/list")] == [{"n": "2"}]
    web_tag_pages = [dict(u.params) for u in log.gets("/v2/team-a/web/tags/list")]
    assert web_tag_pages[0] == {"n": "2"} and len(web_tag_pages) <= 2


def test_registry_single_repository(registry: RunningRegistry, oci_test_layout: TestLayout) -> None:
    _push_fleet(registry, oci_test_layout)
    tags = list(list_registry_tags(f"{registry.host}/team-a/web", insecure=True, page_size=1))
    assert sorted(tags, key=lambda t: t.tag) == [
        RegistryTag(f"{registry.host}/team-a/web", "1", oci_test_layout.single.manifest_digest,
                    "application/vnd.oci.image.manifest.v1+json"),
        RegistryTag(f"{registry.host}/team-a/web", "latest", oci_test_layout.multi_index_digest,
                    "application/vnd.oci.image.index.v1+json"),
    ]
    with pytest.raises(RegistryError, match=f"repository nothing/here not found in {registry.host}"):
        list(list_registry_tags(f"{registry.host}/nothing/here", insecure=True))


def test_registry_repository_and_tag_vanishing_mid_listing(
    registry: RunningRegistry, oci_test_layout: TestLayout
) -> None:
    _push_fleet(registry, oci_test_layout)
    repositories = registry.storage / "docker" / "registry" / "v2" / "repositories"
    skipped: list[tuple[str, str]] = []
    listing = list_registry_tags(
        registry.host, insecure=True, page_size=2, on_skip=lambda what, why: skipped.append((what, why))
    )
    first = next(listing)
    # The catalog's first page named team-a/api and team-a/web; all tags of team-a/api are listed,
    # the first of them HEADed. Now one of its other tags and the whole of team-a/web go away.
    assert first.repository == f"{registry.host}/team-a/api"
    gone_tag = next(tag for tag in FLEET["team-a/api"] if tag != first.tag)
    shutil.rmtree(repositories / "team-a" / "api" / "_manifests" / "tags" / gone_tag)
    shutil.rmtree(repositories / "team-a" / "web")
    rest = list(listing)
    names = {(t.repository.removeprefix(f"{registry.host}/"), t.tag) for t in [first, *rest]}
    expected = {(repo, tag) for repo, tags in FLEET.items() for tag in tags if repo != "team-a/web"}
    assert names == expected - {("team-a/api", gone_tag)}
    assert [what for what, _ in skipped] == [f"{registry.host}/team-a/api:{gone_tag}", f"{registry.host}/team-a/web"]
    assert all("went away" in why for _, why in skipped)


def test_registry_basic_auth_for_the_catalog(
    basic_auth_registry: RunningRegistry, oci_test_layout: TestLayout, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    basic_auth_registry.push(oci_test_layout.path, "single", "secret/app:1")
    with pytest.raises(AuthError, match="no credentials were found"):
        list(list_registry_tags(basic_auth_registry.host, insecure=True))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(basic_auth_registry.write_auth_file(tmp_path / "auth.json")))
    tags = list(list_registry_tags(basic_auth_registry.host, insecure=True, page_size=1))
    assert [(t.repository, t.tag, t.manifest_digest) for t in tags] == [
        (f"{basic_auth_registry.host}/secret/app", "1", oci_test_layout.single.manifest_digest)
    ]


def test_registry_token_auth_for_the_catalog(
    token_auth_registry: RunningRegistry, oci_test_layout: TestLayout, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    token_auth_registry.push(oci_test_layout.path, "multi", "secret/app:1", all_platforms=True)
    token_auth_registry.push(oci_test_layout.path, "single", "secret/lib:2")
    assert token_auth_registry.token_server is not None
    token_auth_registry.token_server.requests.clear()
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(token_auth_registry.write_auth_file(tmp_path / "auth.json")))
    tags = list(list_registry_tags(token_auth_registry.host, insecure=True, page_size=1))
    assert [(t.repository.split("/", 1)[1], t.tag, t.manifest_digest) for t in tags] == [
        ("secret/app", "1", oci_test_layout.multi_index_digest),
        ("secret/lib", "2", oci_test_layout.single.manifest_digest),
    ]
    requests = token_auth_registry.token_server.requests
    assert all(r["account"] == REGISTRY_USER and r["ok"] for r in requests)
    scopes = [r["query"]["scope"] for r in requests]
    # One token per scope, reused across the pages.
    assert scopes == [["registry:catalog:*"], ["repository:secret/app:pull"], ["repository:secret/lib:pull"]]


def test_registry_token_auth_wrong_password(
    token_auth_registry: RunningRegistry, oci_test_layout: TestLayout, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token_auth_registry.push(oci_test_layout.path, "single", "secret/app:1")
    auth_file = token_auth_registry.write_auth_file(tmp_path / "auth.json", password="wrong")
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(auth_file))
    with pytest.raises(AuthError, match=r"token server .* refused user 'patchline' .* registry:catalog:\*"):
        list(list_registry_tags(token_auth_registry.host, insecure=True))


def test_registry_killed_before_listing(
    registry: RunningRegistry, oci_test_layout: TestLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_registry, "_RETRY_DELAYS", (0.05, 0.05, 0.05))
    registry.push(oci_test_layout.path, "single", "team/app:1")
    registry.kill()
    started = time.monotonic()
    with pytest.raises(RegistryError, match=f"{registry.host}: cannot connect"):
        list(list_registry_tags(registry.host, insecure=True))
    assert time.monotonic() - started < 10


def test_registry_plain_http_needs_insecure(registry: RunningRegistry) -> None:
    with pytest.raises(RegistryError, match="--insecure"):
        list(list_registry_tags(registry.host))


# -- kubernetes -------------------------------------------------------------------------


def _kubeconfig_present() -> bool:
    path = os.environ.get("KUBECONFIG") or "~/.kube/config"
    return any(Path(p).expanduser().is_file() for p in path.split(os.pathsep) if p)


def test_kubernetes_without_kubeconfig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(missing))
    with pytest.raises(DiscoveryError, match=f"^no Kubernetes cluster reachable: no kubeconfig at {missing}"):
        list_kubernetes_pods()


def test_kubernetes_api_server_not_answering(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(  # JSON is YAML
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "gone", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
                "users": [{"name": "someone", "user": {"token": "t0k3n"}}],
                "contexts": [{"name": "gone-ctx", "context": {"cluster": "gone", "user": "someone"}}],
                "current-context": "gone-ctx",
            }
        )
    )
    started = time.monotonic()
    with pytest.raises(DiscoveryError, match=r"^no Kubernetes cluster reachable: context 'gone-ctx'") as caught:
        list_kubernetes_pods(kubeconfig=str(kubeconfig), namespace="default")
    assert "Connection refused" in str(caught.value) and "\n" not in str(caught.value)
    assert time.monotonic() - started < 10
    with pytest.raises(DiscoveryError, match=r"cannot be used: .*nope"):
        list_kubernetes_pods(kubeconfig=str(kubeconfig), context="nope")


@pytest.mark.skipif(
    not _kubeconfig_present(),
    reason="no Kubernetes cluster reachable from this machine (no kubeconfig); "
    "discovery against a real cluster needs one",
)
def test_kubernetes_lists_running_pods() -> None:
    workloads = list_kubernetes_pods()
    assert workloads, "a reachable cluster runs at least its system pods"
    for workload in workloads:
        assert workload.runtime == "kubernetes" and workload.state == "running"
        assert workload.namespace and "/" in workload.name and workload.image_ref
        assert workload.started_at is not None and workload.started_at.utcoffset() == timedelta(0)
        assert workload.manifest_digest is not None or workload.image_id is not None
    system = list_kubernetes_pods(namespace="kube-system")
    assert {w.container_id for w in system} <= {w.container_id for w in workloads}
