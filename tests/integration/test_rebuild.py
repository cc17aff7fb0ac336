"""plan and rebuild on real images: buildah builds, a loopback registry, the real bookworm-security suite and a
local signed apt repository.

The fleets are built FROM the session's debootstrap bookworm image (``debian_base_image``), which lacks every
update published since bookworm's release: the real pending security updates of the live test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from patchline._config import Config, load_config
from patchline.build import BuildStatus, ReasonCode, plan_fleet, rebuild, rebuild_options
from patchline.store import Store, open_store
from tests.support.aptrepo import AptRepo
from tests.support.images import BuiltImage
from tests.support.registry import RunningRegistry, forget_local_images_of, require_tools, start_registry

pytestmark = pytest.mark.usefixtures("_build_tools")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "fleet"
CLEANUP = ("rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log /var/log/alternatives.log "
           "/var/cache/ldconfig/aux-cache /var/lib/dpkg/*-old /var/cache/debconf/*-old")


@pytest.fixture
def _build_tools() -> None:
    require_tools("buildah", "podman", "skopeo", "docker-registry")


@pytest.fixture
def forget_local_images(registry: RunningRegistry) -> Iterator[None]:
    """Remove the images the builds tagged for this test's registry from local storage afterwards."""
    yield
    forget_local_images_of(registry.host)


def write_config(directory: Path, registry: RunningRegistry, *, base: BuiltImage | None = None,
                 update_sources: bool = True, extra: str = "", images: str = '[[images]]\nglob = "*"\n',
                 pending: str = "security", sign: str = "[sign]\nenabled = false\n") -> Config:
    args = f'args = {{DEBIAN_BASE = "{base.reference}"}}\n' if base is not None else ""
    (directory / "patchline.toml").write_text(
        f'[registries]\ninsecure = ["{registry.host}"]\n\n'
        f'[build]\nregistry = "{registry.host}"\nnamespace = "example"\njobs = 2\n'
        f'update_sources = {str(update_sources).lower()}\npending = "{pending}"\n'
        f'logs = "{directory / "logs"}"\n{args}\n'
        f'[store]\nurl = "sqlite:///{directory / "patchline.db"}"\n\n{sign}\n{extra}\n{images}')
    return load_config(directory / "patchline.toml")


def registry_digest(registry: RunningRegistry, repository: str, tag: str) -> str:
    response = httpx.head(f"{registry.url}/v2/{repository}/manifests/{tag}", headers={"Accept": ", ".join([
        "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"])})
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]


def reasons(plan: Any) -> dict[str, set[ReasonCode]]:
    return {item.name: {r.code for r in item.reasons} for item in plan.items}


def run_rebuild(config: Config, store: Store, **kw: Any) -> Any:
    fleet = plan_fleet(config, store, **kw)
    return fleet.plan, rebuild(fleet.plan, fleet.graph, store, rebuild_options(config), hashes=fleet.hashes)


@pytest.mark.usefixtures("forget_local_images")
def test_example_fleet_against_the_real_security_suite(tmp_path: Path, registry: RunningRegistry,
                                                       debian_base_image: BuiltImage) -> None:
    """Built from bookworm main: pending updates; plan names every image in order; rebuild fixes them all."""
    fleet_dir = tmp_path / "fleet"
    shutil.copytree(EXAMPLES, fleet_dir)
    config = write_config(fleet_dir, registry, base=debian_base_image, update_sources=False)
    with open_store(config.store.url) as store:
        first_plan, first = run_rebuild(config, store)
        assert [i.name for i in first_plan.waves[0]] == ["base"]
        assert {r.name: r.status for r in first.results} == dict.fromkeys(
            ["base", "tools", "web", "worker", "web-admin"], BuildStatus.BUILT)
        by_name = {r.name: r for r in first.results}
        assert all(by_name["base"].finished <= r.started for r in first.results if r.name != "base")
        assert by_name["web"].finished <= by_name["web-admin"].started

        plan = plan_fleet(config, store).plan
        why = reasons(plan)
        assert set(why) == {"base", "tools", "web", "worker", "web-admin"}
        assert ReasonCode.PENDING_UPDATES in why["base"]
        assert all(ReasonCode.BASE_REBUILT in why[n] for n in ("tools", "web", "worker", "web-admin"))
        assert [sorted(i.name for i in w) for w in plan.waves] == [["base"], ["tools", "web", "worker"],
                                                                   ["web-admin"]]
        base_pending = next(r for r in plan.items[0].reasons if r.code is ReasonCode.PENDING_UPDATES).items
        assert base_pending  # the real bookworm-security updates the debootstrap image lacks

        config = write_config(fleet_dir, registry, base=debian_base_image, update_sources=True)
        second = rebuild(plan, plan_fleet(config, store).graph, store, rebuild_options(config),
                         hashes=plan_fleet(config, store).hashes)
        assert {r.name: r.status for r in second.results} == dict.fromkeys(
            ["base", "tools", "web", "worker", "web-admin"], BuildStatus.BUILT), [r.error for r in second.results]
        base = next(r for r in second.results if r.name == "base")
        assert base.verification is not None and set(base_pending) <= set(base.verification.fixed)
        assert base.verification.pending_after == 0
        for r in second.results:
            repository = f"example/{r.name}"
            assert registry_digest(registry, repository, "latest") == r.manifest_digest
            assert r.bases and all("@sha256:" in ref or len(ref) == 71 for ref in r.bases.values())

        assert not plan_fleet(config, store).plan, "a second plan after the rebuild must be empty"

        # Same inputs, same image: forcing the base gives an unchanged build and skips its dependants.
        forced_plan, forced = run_rebuild(config, store, force=["base"])
        assert forced_plan.items[0].name == "base"
        statuses = {r.name: r.status for r in forced.results}
        assert statuses["base"] is BuildStatus.UNCHANGED, forced.results[0].error
        assert {statuses[n] for n in ("tools", "web", "worker", "web-admin")} == {BuildStatus.SKIPPED}


def hello_fleet(root: Path, base: BuiltImage) -> None:
    """base <- hello-a <- hello-a-child, base <- hello-b, base <- plain; hello comes from the mounted suite."""
    install = (f"RUN set -e; apt-get update -q; DEBIAN_FRONTEND=noninteractive apt-get install -y -q pl-hello; "
               f"apt-get clean; {CLEANUP}\n")
    local = "ARG PATCHLINE_REGISTRY\nFROM ${PATCHLINE_REGISTRY}/example/%s:latest\n"
    files = {
        "base": f"FROM {base.reference}\nRUN echo base > /etc/fleet-base\n",
        "hello-a": local % "base" + install,
        "hello-b": local % "base" + install,
        "plain": local % "base" + "RUN echo plain > /etc/plain\n",
        "hello-a-child": local % "hello-a" + "RUN echo child > /etc/child\n",
    }
    for name, text in files.items():
        (root / name).mkdir(parents=True)
        (root / name / "Containerfile").write_text(text)


def local_suite(apt_repo: AptRepo) -> str:
    return (f'[updates]\nkeyring = "{apt_repo.keyring}"\n'
            f'[[updates.sources]]\nurl = "{apt_repo.url}"\nsuite = "stable-security"\n')


@pytest.mark.usefixtures("forget_local_images")
def test_a_fixed_package_in_two_images_plans_exactly_those_and_their_dependants(
        tmp_path: Path, registry: RunningRegistry, debian_base_image: BuiltImage, apt_repo: AptRepo) -> None:
    from patchline.assess import options_from_config
    from patchline.fleet._refresh import refresh_updates

    apt_repo.add("pl-hello", "1.0-1", changelog_cves=["CVE-2099-0000"])
    apt_repo.publish("stable-security")
    hello_fleet(tmp_path, debian_base_image)
    # The test's apt repository listens on the host's loopback: only the host's network reaches it.
    config = write_config(tmp_path, registry, extra=local_suite(apt_repo),
                          images='[[images]]\nglob = "*"\nnetwork = "host"\n')
    with open_store(config.store.url) as store:
        _plan, first = run_rebuild(config, store)
        assert all(r.status is BuildStatus.BUILT for r in first.results), [(r.name, r.error) for r in first.results]
        assert not plan_fleet(config, store).plan

        apt_repo.add("pl-hello", "1.0-2", changelog_cves=["CVE-2099-0001"], urgency="high")
        apt_repo.publish("stable-security")
        refresh_updates(store, options_from_config(config))
        plan = plan_fleet(config, store).plan
        assert reasons(plan) == {"hello-a": {ReasonCode.PENDING_UPDATES}, "hello-b": {ReasonCode.PENDING_UPDATES},
                                 "hello-a-child": {ReasonCode.BASE_REBUILT, ReasonCode.PENDING_UPDATES}}
        assert [i.name for i in plan.items][-1] == "hello-a-child"

        # The security suite cannot be trusted for a while (a proxy mangles its InRelease): its updates must
        # not look applied.
        inrelease = apt_repo.root / "dists" / "stable-security" / "InRelease"
        whole = inrelease.read_text()
        inrelease.write_text(whole.replace("Label: patchline-tests", "Label: patchline-tampr"))
        try:
            outage = refresh_updates(store, options_from_config(config))
        finally:
            inrelease.write_text(whole)
        assert outage.kept and outage.pending == 0 and any("stable-security" in what for what, _ in outage.skipped)
        # The same plan, each item now saying its image could not be checked (unknown, never clean).
        during = reasons(plan_fleet(config, store).plan)
        assert during == {name: codes | {ReasonCode.CANNOT_ASSESS} for name, codes in reasons(plan).items()}
        assert {digest for digest, _why in outage.unknown} >= {i.current.config_digest for i in plan.items
                                                                if i.current is not None}

        cli = subprocess.run([shutil.which("patchline") or "patchline", "plan", "--json"], cwd=tmp_path,
                             capture_output=True, text=True, check=False,
                             env={"PATH": str(Path(__file__).resolve().parents[2] / ".venv" / "bin") + ":/usr/bin:/bin",
                                  "HOME": str(tmp_path)})
        assert cli.returncode == 0, cli.stderr
        doc = json.loads(cli.stdout)
        assert doc["schema"] == "patchline/plan/v1"
        assert [i["name"] for i in doc["items"]] == [i.name for i in plan.items]

        _plan, second = run_rebuild(config, store)
        assert {r.name: r.status for r in second.results} == dict.fromkeys(
            ["hello-a", "hello-b", "hello-a-child"], BuildStatus.BUILT), [r.error for r in second.results]
        a = next(r for r in second.results if r.name == "hello-a")
        assert a.verification is not None and a.verification.fixed == ("pl-hello",)
        assert not plan_fleet(config, store).plan


@pytest.mark.usefixtures("forget_local_images")
def test_a_failed_build_blocks_its_dependants_only(tmp_path: Path, registry: RunningRegistry,
                                                  debian_base_image: BuiltImage) -> None:
    local = "ARG PATCHLINE_REGISTRY\nFROM ${PATCHLINE_REGISTRY}/example/%s:latest\n"
    for name, text in {"base": f"FROM {debian_base_image.reference}\nRUN echo base > /etc/b\n",
                       "broken": local % "base" + "RUN echo about to fail; exit 3\n",
                       "broken-child": local % "broken" + "RUN true\n",
                       "sibling": local % "base" + "RUN echo fine > /etc/s\n"}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "Containerfile").write_text(text)
    # The debootstrap image's real pending updates would make every image dirty: only failures matter here.
    config = write_config(tmp_path, registry, update_sources=False, pending="none")
    with open_store(config.store.url) as store:
        _plan, report = run_rebuild(config, store)
        statuses = {r.name: r.status for r in report.results}
        assert statuses == {"base": BuildStatus.BUILT, "broken": BuildStatus.FAILED,
                            "broken-child": BuildStatus.BLOCKED, "sibling": BuildStatus.BUILT}
        broken = next(r for r in report.results if r.name == "broken")
        assert "buildah bud failed (exit" in broken.error and broken.log is not None
        assert "about to fail" in broken.log.read_text()
        # The error names what the step printed, not only buildah's exit status.
        assert 'about to fail; building at STEP "RUN echo about to fail; exit 3"' in broken.error
        child = next(r for r in report.results if r.name == "broken-child")
        assert child.error == "base broken failed"
        assert not report.ok
        assert set(store.current_builds()) == {"base", "sibling"}
        assert {i.name for i in plan_fleet(config, store).plan.items} == {"broken", "broken-child"}


@pytest.mark.usefixtures("forget_local_images")
def test_image_tests_gate_the_push_and_a_failure_is_unpromotable(tmp_path: Path, registry: RunningRegistry,
                                                                  debian_base_image: BuiltImage) -> None:
    """[[images]] tests run in containers of the new image before the push: commands and HTTP checks."""
    local = "ARG PATCHLINE_REGISTRY\nFROM ${PATCHLINE_REGISTRY}/example/%s:latest\n"
    serve = ('RUN mkdir -p /www && echo ok > /www/healthz\n'
             'COPY busybox /bin/busybox\nCMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n')
    for name, text in {"base": f"FROM {debian_base_image.reference}\nRUN echo base > /etc/fleet-base\n",
                       "good": local % "base" + serve,
                       "bad": local % "base" + "RUN echo bad > /etc/bad\n",
                       "bad-child": local % "bad" + "RUN true\n"}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "Containerfile").write_text(text)
    shutil.copy("/bin/busybox", tmp_path / "good" / "busybox")
    images = """
[[images]]
name = "base"
context = "base"
tests = ["test -f /etc/fleet-base"]

[[images]]
name = "good"
context = "good"
tests = ["grep -q base /etc/fleet-base", { http = "/healthz", port = 8080, body = "^ok", timeout = 20 }]

[[images]]
name = "bad"
context = "bad"
tests = ["test -f /etc/bad", "echo checking; exit 3", { http = "/healthz", port = 8080, timeout = 3 }]

[[images]]
name = "bad-child"
context = "bad-child"
"""
    config = write_config(tmp_path, registry, update_sources=False, pending="none", images=images)
    with open_store(config.store.url) as store:
        _plan, report = run_rebuild(config, store)
        statuses = {r.name: r.status for r in report.results}
        assert statuses == {"base": BuildStatus.BUILT, "good": BuildStatus.BUILT, "bad": BuildStatus.VERIFY_FAILED,
                            "bad-child": BuildStatus.BLOCKED}, [(r.name, r.error) for r in report.results]
        good = next(r for r in report.results if r.name == "good")
        assert good.verification is not None and [t["passed"] for t in good.verification.tests] == [True, True]
        assert {"prepare", "build", "rescan", "tests", "push"} <= set(good.timings)
        # The rescan runs while the tests do: the phases add up to the wall time with the two overlapping.
        t = good.timings
        assert sum(t.values()) - min(t["rescan"], t["tests"]) <= good.seconds + 0.01
        bad = next(r for r in report.results if r.name == "bad")
        assert bad.verification is not None
        outcomes = {str(t["name"]): t for t in bad.verification.tests}
        assert [t["passed"] for t in bad.verification.tests] == [True, False, False]
        assert outcomes["echo checking; exit 3"]["detail"].startswith("exit 3")
        assert "checking" in Path(str(outcomes["echo checking; exit 3"]["log"])).read_text()
        assert "tests failed" in bad.error
        # Never pushed, recorded as unpromotable, reported on the outbox.
        tags = httpx.get(f"{registry.url}/v2/example/bad/tags/list")
        assert tags.status_code == 404 or not tags.json().get("tags")
        assert bad.config_digest is not None and store.unpromotable(bad.config_digest) is not None
        failed = store.events(types=["image.verify_failed"])
        assert [e.data["recipe"] for e in failed] == ["bad"]
        rebuilt = {e.data["recipe"] for e in store.events(types=["image.rebuilt"])}
        assert rebuilt == {"base", "good"}
        assert not [c for c in subprocess.run(["podman", "ps", "-a", "--filter", "label=io.patchline.test",
                                                "--format", "{{.Names}}"], capture_output=True, text=True,
                                               check=True).stdout.split() if c]


@pytest.mark.usefixtures("forget_local_images")
def test_a_registry_that_goes_away_records_nothing_as_built(tmp_path: Path, registry: RunningRegistry,
                                                           debian_base_image: BuiltImage) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "Containerfile").write_text(f"FROM {debian_base_image.reference}\nRUN echo b > /etc/b\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Containerfile").write_text(
        "ARG PATCHLINE_REGISTRY\nFROM ${PATCHLINE_REGISTRY}/example/base:latest\nRUN true\n")
    config = write_config(tmp_path, registry, update_sources=False)
    with open_store(config.store.url) as store:
        fleet = plan_fleet(config, store)
        registry.kill()
        report = rebuild(fleet.plan, fleet.graph, store, rebuild_options(config), hashes=fleet.hashes)
        statuses = {r.name: r.status for r in report.results}
        assert statuses == {"base": BuildStatus.FAILED, "app": BuildStatus.BLOCKED}
        assert report.results[0].error.startswith("push failed: push to ")
        assert f"pinging container registry {registry.host}" in report.results[0].error
        assert "connect: connection refused" in report.results[0].error
        assert store.current_builds() == {}
        assert [b.status for b in store.builds()] == ["blocked", "failed"]
        # A base in a registry that is gone cannot be planned, and says why.
        (tmp_path / "app" / "Containerfile").write_text(f"FROM {registry.host}/vendor/x:1\nRUN true\n")
        plan = plan_fleet(config, store).plan
        assert [n for n, _ in plan.skipped] == ["app"] and registry.host in plan.skipped[0][1]


def _inspect(reference: str) -> Mapping[str, Any]:
    out = subprocess.run(["podman", "image", "inspect", reference], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]  # type: ignore[no-any-return]


@pytest.mark.usefixtures("forget_local_images")
def test_patch_in_place_of_an_image_without_recipe(tmp_path: Path, registry: RunningRegistry,
                                                   debian_base_image: BuiltImage, apt_repo: AptRepo) -> None:
    apt_repo.add("pl-hello", "1.0-1")
    apt_repo.publish("stable-security")
    # The third-party image: hello 1.0-1 installed, its own entrypoint and user, pushed to the registry.
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "sources.list").write_text(f"deb [trusted=yes] {apt_repo.url} stable-security main\n")
    (vendor / "Containerfile").write_text(
        f"FROM {debian_base_image.reference}\n"
        f"RUN apt-get update -q && apt-get install -y -q pl-hello && apt-get clean && {CLEANUP}\n"
        'ENTRYPOINT ["/bin/echo", "vendor"]\nUSER 65534:65534\nENV VENDOR=1\n')
    upstream = f"{registry.host}/vendor/hello:1"
    subprocess.run(["buildah", "bud", "--layers=false", "--network=host",
                    f"--volume={vendor / 'sources.list'}:/etc/apt/sources.list.d/t.list:ro", "-t", upstream,
                    str(vendor)], check=True, capture_output=True)
    subprocess.run(["buildah", "push", "--tls-verify=false", upstream], check=True, capture_output=True)
    upstream_layers = len(_inspect(upstream)["RootFS"]["Layers"])

    config = write_config(tmp_path, registry, extra=local_suite(apt_repo),
                          images=f'[[images]]\nname = "hello"\nimage = "{upstream}"\nnetwork = "host"\n')
    target = f"{registry.host}/example/hello:latest"
    with open_store(config.store.url) as store:
        _plan, first = run_rebuild(config, store)
        assert first.results[0].status is BuildStatus.BUILT, first.results[0].error

        apt_repo.add("pl-hello", "1.0-2", changelog_cves=["CVE-2099-0001"])
        apt_repo.publish("stable-security")
        from patchline.assess import options_from_config
        from patchline.fleet._refresh import refresh_updates

        refresh_updates(store, options_from_config(config))
        plan = plan_fleet(config, store).plan
        assert reasons(plan) == {"hello": {ReasonCode.PENDING_UPDATES}}
        _plan, second = run_rebuild(config, store)
        patched = second.results[0]
        assert patched.status is BuildStatus.BUILT, patched.error
        assert patched.verification is not None and patched.verification.fixed == ("pl-hello",)
        assert store.pending_for([str(patched.config_digest)]) == {}
        info = _inspect(target)
        original = _inspect(upstream)
        assert info["Config"]["Entrypoint"] == original["Config"]["Entrypoint"] == ["/bin/echo", "vendor"]
        assert info["Config"]["User"] == "65534:65534" and "VENDOR=1" in info["Config"]["Env"]
        assert len(info["RootFS"]["Layers"]) == upstream_layers + 1
        assert info["Labels"]["io.patchline.patched-from"].startswith(f"{registry.host}/vendor/hello@sha256:")
        run = subprocess.run(["podman", "run", "--rm", "--user", "0", "--entrypoint", "dpkg-query", target,
                              "-W", "-f", "${Version}", "pl-hello"], capture_output=True, text=True, check=True)
        assert run.stdout == "1.0-2"

        # A second patch replaces the first patch layer: still one layer on top of the upstream image.
        apt_repo.add("pl-hello", "1.0-3", changelog_cves=["CVE-2099-0002"])
        apt_repo.publish("stable-security")
        refresh_updates(store, options_from_config(config))
        _plan, third = run_rebuild(config, store)
        assert third.results[0].status is BuildStatus.BUILT, third.results[0].error
        assert len(_inspect(target)["RootFS"]["Layers"]) == upstream_layers + 1
        assert not plan_fleet(config, store).plan


def _command_lines() -> list[str]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
    return out


@pytest.mark.usefixtures("forget_local_images")
def test_build_args_reach_the_build_but_no_command_line_or_log(tmp_path: Path, registry: RunningRegistry,
                                                              debian_base_image: BuiltImage) -> None:
    """A secret build arg is in the RUN step's environment; ``ps`` and the build log never show it. The RUN
    steps run in a network namespace of their own unless the recipe asks for the host's."""
    secret = f"s3cret-{uuid.uuid4().hex}"
    host_net = Path("/proc/self/ns/net").readlink().name
    # The Containerfile names the secret by its hash only: what shows it, the build gave it away.
    check = ('ARG API_TOKEN\nARG HOST_NET\nRUN test "$(printf %%s "$API_TOKEN" | sha256sum)" = "%s  -" && sleep 3 && '
             'test "$(readlink /proc/self/ns/net)" %s "$HOST_NET" && touch /built\n')
    for name, same in (("isolated", "!="), ("on-host", "=")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Containerfile").write_text(f"FROM {debian_base_image.reference}\n"
                                                       + check % (hashlib.sha256(secret.encode()).hexdigest(), same))
    images = "".join(f'[[images]]\nname = "{n}"\ncontext = "{n}"\nargs = {{API_TOKEN = "{secret}", '
                     f'HOST_NET = "{host_net}"}}\n{extra}\n'
                     for n, extra in (("isolated", ""), ("on-host", 'network = "host"')))
    config = write_config(tmp_path, registry, update_sources=False, pending="none", images=images)
    seen: list[str] = []
    with open_store(config.store.url) as store, ThreadPoolExecutor(1) as pool:
        fleet = plan_fleet(config, store)
        running = pool.submit(rebuild, fleet.plan, fleet.graph, store, rebuild_options(config), hashes=fleet.hashes)
        while not running.done():
            seen += _command_lines()
            time.sleep(0.05)
        report = running.result()
    assert {r.name: r.status for r in report.results} == dict.fromkeys(["isolated", "on-host"], BuildStatus.BUILT), \
        [(r.name, r.error) for r in report.results]
    buds = [line for line in seen if line.startswith("buildah ") and " bud " in line]
    assert len({line for line in buds if "--build-arg=API_TOKEN " in line}) == 2, buds  # the sampler saw both
    assert not [line for line in seen if secret in line]
    assert all("--network=private" in line for line in buds if "isolated" in line)
    for result in report.results:
        assert result.log is not None and secret not in result.log.read_text()


def test_only_the_insecure_registry_is_reached_without_tls(tmp_path: Path, registry: RunningRegistry) -> None:
    """``[registries] insecure`` reaches the build as a registries.conf of its own: the insecure host's base is
    pulled over plain HTTP, another plain-HTTP registry's is refused (TLS stays on for it)."""
    from patchline.build._buildah import BuildEnv, bud
    from patchline.errors import BuildError

    (tmp_path / "hello").write_text("hello\n")
    working = subprocess.run(["buildah", "from", "scratch"], capture_output=True, text=True, check=True).stdout.strip()
    tiny = f"localhost/patchline-test/tiny-{uuid.uuid4().hex[:8]}:1"
    try:
        subprocess.run(["buildah", "copy", working, str(tmp_path / "hello"), "/hello"], capture_output=True, check=True)
        tiny_id = subprocess.run(["buildah", "commit", "--quiet", working, tiny], capture_output=True, text=True,
                                 check=True).stdout.strip()
    finally:
        subprocess.run(["buildah", "rm", working], capture_output=True, check=False)
    with start_registry(tmp_path / "other") as other:
        for host in (registry.host, other.host):
            subprocess.run(["podman", "push", "--tls-verify=false", "--quiet", tiny, f"{host}/example/tiny:1"],
                           check=True, capture_output=True, timeout=120)
        try:
            env = BuildEnv(pull="always", insecure=frozenset({registry.host}), scratch=tmp_path)

            def build(name: str, *bases: str) -> str:
                context = tmp_path / name
                context.mkdir()
                stages = "".join(f"FROM {b}/example/tiny:1 AS s{i}\n" for i, b in enumerate(bases))
                copies = "".join(f"COPY --from=s{i} /hello /hello{i}\n" for i in range(1, len(bases)))
                (context / "Containerfile").write_text(stages + "FROM s0\n" + copies + "LABEL built=1\n")
                return bud(containerfile=context / "Containerfile", context=context, tag=f"localhost/pl-{name}:1",
                           args={}, timestamp=0, env=env, log=tmp_path / f"{name}.log",
                           iidfile=tmp_path / f"{name}.iid")

            assert build("insecure-only", registry.host).startswith("sha256:")
            with pytest.raises(BuildError, match=rf"{other.host}.*HTTP response to HTTPS client"):
                build("and-another", registry.host, other.host)
            assert "--tls-verify" not in (tmp_path / "insecure-only.log").read_text()
            assert [p.name for p in tmp_path.iterdir() if p.name.startswith("patchline-build-")] == []
        finally:
            # A failed bud leaves the working containers of its stages (a rebuild's marker would name them).
            listed = subprocess.run(["buildah", "containers", "--json"], capture_output=True, text=True, check=False)
            left = [c["id"] for c in json.loads(listed.stdout or "[]") or [] if c.get("imageid") == tiny_id]
            if left:
                subprocess.run(["buildah", "rm", *left], capture_output=True, check=False)
            forget_local_images_of(other.host)
            forget_local_images_of(registry.host)
            subprocess.run(["podman", "rmi", "localhost/pl-insecure-only:1", tiny], capture_output=True, check=False)


@pytest.fixture
def gone_pid() -> int:
    """A pid of this host whose process has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_what_a_dead_patchline_left_is_removed_and_nothing_else(tmp_path: Path, debian_base_image: BuiltImage,
                                                                gone_pid: int) -> None:
    """Working containers of a dead patchline process (named by it, or marked by its scratch directory as
    ``buildah bud`` makes them) and its scratch directories go; a live process's and a user's own stay."""
    from patchline.build._buildah import clean_leftovers

    live = subprocess.Popen(["sleep", "120"])
    tag = uuid.uuid4().hex[:8]

    def scratch(pid: int) -> Path:
        directory = tmp_path / f"patchline-build-{pid}-{tag}"
        directory.mkdir()
        (directory / "mounts.conf").write_text("")
        return directory

    def working(name: str, marker: Path | None = None) -> str:
        flags = [f"--default-mounts-file={marker / 'mounts.conf'}"] if marker is not None else []
        return subprocess.run(["buildah", *flags, "from", "--pull=never", "--name", name, debian_base_image.reference],
                              capture_output=True, text=True, check=True).stdout.strip()

    dead_scratch, live_scratch = scratch(gone_pid), scratch(live.pid)
    made = {
        "dead-bud": working(f"t{tag}-working-container", dead_scratch),
        "dead-patch": working(f"patchline-build-{gone_pid}-patch-{tag}"),
        "live-bud": working(f"t{tag}-working-container-1", live_scratch),
        "live-patch": working(f"patchline-build-{live.pid}-patch-{tag}"),
        "users": working(f"t{tag}-working-container-2"),
        "users-named": working(f"mine-{tag}"),
    }
    try:
        left = clean_leftovers(roots=[tmp_path])
        names = {str(c["containername"]) for c in json.loads(subprocess.run(
            ["buildah", "containers", "--json"], capture_output=True, text=True, check=True).stdout) or []}
        assert {k for k, name in made.items() if name in names} == {"live-bud", "live-patch", "users", "users-named"}
        assert {made["dead-bud"], made["dead-patch"]} <= set(left.containers)
        assert not dead_scratch.exists() and live_scratch.is_dir()
        assert dead_scratch in left.directories
    finally:
        live.kill()
        live.wait()
        subprocess.run(["buildah", "rm", *made.values()], capture_output=True, check=False)


def test_a_denied_package_or_licence_is_refused_before_the_push(tmp_path: Path, registry: RunningRegistry,
                                                               debian_base_image: BuiltImage) -> None:
    """[policy] denied_packages and denied_licenses: the rebuilt image is never pushed, and the refusal is an event."""
    dist_info = "/usr/local/lib/python3.11/site-packages/{name}-1.0.dist-info"
    for name, license_ in {"fine": "MIT", "evil": "MIT", "copyleft": "AGPL-3.0-or-later"}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "Containerfile").write_text(
            f"FROM {debian_base_image.reference}\n"
            f"RUN mkdir -p {dist_info.format(name=name)} && printf 'Metadata-Version: 2.4\\nName: {name}\\n"
            f"Version: 1.0\\nLicense-Expression: {license_}\\n' > {dist_info.format(name=name)}/METADATA\n")
    images = "".join(f'[[images]]\nname = "{n}"\ncontext = "{n}"\n\n' for n in ("fine", "evil", "copyleft"))
    policy = '[policy]\ndenied_packages = ["evil"]\ndenied_licenses = ["AGPL-*"]\n'
    config = write_config(tmp_path, registry, update_sources=False, pending="none", images=images, extra=policy)
    with open_store(config.store.url) as store:
        _plan, report = run_rebuild(config, store)
        results = {r.name: r for r in report.results}
        assert {n: r.status for n, r in results.items()} == {
            "fine": BuildStatus.BUILT, "evil": BuildStatus.VERIFY_FAILED, "copyleft": BuildStatus.VERIFY_FAILED}
        assert "policy denied-packages: denied package(s) present: evil" in (results["evil"].error or "")
        assert "policy denied-licenses: denied licence(s): copyleft (AGPL-3.0-or-later)" in (
            results["copyleft"].error or "")
        for name in ("evil", "copyleft"):
            tags = httpx.get(f"{registry.url}/v2/example/{name}/tags/list")
            assert tags.status_code == 404 or not tags.json().get("tags")
            digest = results[name].config_digest
            assert digest is not None and store.unpromotable(digest) is not None
        denied = store.events(types=["policy.denied"])
        assert sorted((e.data["step"], e.data["recipe"]) for e in denied) == [("push", "copyleft"), ("push", "evil")]
