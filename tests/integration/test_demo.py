"""The README's first command, as a new user runs it: ``patchline demo`` (no stdin, a fresh work directory, on
its own loopback ports and service names), then the run again (nothing to do), the demo again (idempotent),
``patchline demo down`` and ``--purge``.

The fleet is built from bookworm main and really misses the security suite's updates; the demo's patch run
must rebuild base first, the rest after it, fix every pending update, and move every service to its new build.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.registry import free_port, free_port_run, require_tools

pytestmark = pytest.mark.integration

PATCHLINE = Path(sys.executable).parent / "patchline"
REGISTRIES_D = Path("/etc/containers/registries.d/patchline.yaml")


def _patchline(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PATCHLINE), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=timeout, check=False)


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, (f"exit {proc.returncode}\nstderr:\n{proc.stderr[-4000:]}\n"
                                  f"stdout:\n{proc.stdout[-4000:]}")
    return proc


def _containers(service: str) -> list[dict[str, Any]]:
    proc = subprocess.run(["podman", "ps", "-a", "--filter", f"label=io.patchline.service={service}", "--format",
                           "json"], capture_output=True, text=True, check=True)
    found: list[dict[str, Any]] = json.loads(proc.stdout or "[]")
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"  # exited; its new parent has not reaped it yet


def _answers(host: str) -> bool:
    try:
        with httpx.Client(trust_env=False, timeout=2) as client:
            return client.get(f"http://{host}/v2/").status_code == 200
    except httpx.HTTPError:
        return False


def test_demo_up_again_and_down(tmp_path: Path) -> None:
    require_tools("podman", "buildah", "skopeo", "docker-registry", "gpg", "debootstrap")
    workdir = tmp_path / "demo"
    registry = f"127.0.0.1:{free_port()}"
    port_base = free_port_run(11)  # web: base..base+2, web-admin: base+10
    prefix = f"t{uuid.uuid4().hex[:6]}-"
    where = ["--workdir", str(workdir)]
    up = ["demo", *where, "--registry-port", registry.rpartition(":")[2], "--port-base", str(port_base),
          "--name-prefix", prefix]
    config = workdir / "fleet" / "patchline.toml"
    try:
        t0 = time.monotonic()
        first = _ok(_patchline(*up))
        first_seconds = time.monotonic() - t0
        for heading in ("1. What was found", "2. What was rebuilt, in order, and why", "3. What was rolled out",
                        "4. The fleet, before -> after", "5. The run", "Timings"):
            assert heading in first.stdout, first.stdout
        assert "phase 2: patchline run --once" in first.stderr  # progress goes to stderr
        report = json.loads((workdir / "report.json").read_text())
        assert report["schema"] == "patchline/demo/v1" and report["ok"], report["run"]
        assert report["registry"] == registry and report["registry_started"]

        before = {i["name"]: i for i in report["before"]["images"]}
        after = {i["name"]: i for i in report["after"]["images"]}
        assert set(before) == {"base", "web", "web-admin", "tools", "worker"}
        # Built from bookworm main, base misses real security updates (with the CVE IDs of their changelogs) ...
        missed = {p["package"] for p in before["base"]["pending"]}
        assert missed, "bookworm-security has no update for bookworm main: the demo has nothing to patch"
        assert any(p["cves"] for p in before["base"]["pending"])
        # ... and after the run, no image misses any.
        assert {name: len(i["pending"]) for name, i in after.items()} == dict.fromkeys(before, 0)

        rebuilt = report["rebuilt"]
        order = [r["name"] for r in rebuilt]
        assert sorted(order) == sorted(before) and order[0] == "base"
        assert order.index("web-admin") > order.index("web")
        assert all(r["status"] == "built" and r["tests_failed"] == 0 for r in rebuilt), rebuilt
        base = rebuilt[0]
        assert "pending-updates" in {x["code"] for x in base["reasons"]}
        assert missed <= set(base["fixed"]) and base["pending_after"] == 0
        for r in rebuilt:
            assert r["from_digest"] == before[r["name"]]["manifest_digest"] != r["to_digest"]
            assert r["to_digest"] == after[r["name"]]["manifest_digest"]
        web_admin = next(r for r in rebuilt if r["name"] == "web-admin")
        assert "base-rebuilt" in {x["code"] for x in web_admin["reasons"]}

        services = {s["name"]: s for s in report["after"]["services"]}
        rolled = {r["service"]: r for r in report["rolled_out"]}
        assert set(rolled) == set(services) and prefix + "web" in services
        for name, r in rolled.items():
            image = services[name]["image"]
            assert r["state"] == "succeeded" and r["to_image"] == image != r["from_image"], r
            assert services[name]["healthy"] == services[name]["replicas_wanted"]
        assert rolled[prefix + "web"]["strategy"] == "canary"
        assert services[prefix + "web"]["digest"] == after["web"]["manifest_digest"]

        # What podman runs, as `patchline status` and podman's own labels see it.
        status = json.loads(_ok(_patchline("--config", str(config), "status", "--json")).stdout)
        for service in status["services"]:
            assert service["healthy"] == service["replicas_wanted"], service
            assert {r["image"] for r in service["replicas"]} == {services[service["name"]]["image"]}
        web = _containers(prefix + "web")
        assert len(web) == 3 and all(c["State"] == "running" for c in web)
        assert {c["Labels"]["io.patchline.image"] for c in web} == {services[prefix + "web"]["image"]}
        assert httpx.get(f"http://127.0.0.1:{port_base + 2}/healthz", timeout=5).status_code == 200

        # Every view tells the same story: the fleet counts no running workload with a pending update and no
        # pending update of a superseded image; `where --running` names the new version in every container.
        fleet = json.loads(_ok(_patchline("--config", str(config), "fleet", "--json")).stdout)["fleet"]
        assert fleet["pending_updates"] == 0 and fleet["images_with_pending"] == 0, fleet["images_by_severity"]
        exposed = {k: v for k, v in fleet["workloads_by_severity"].items() if k != "clean" and v}
        assert exposed == {}, fleet["workloads_by_severity"]
        superseded = [e for e in fleet["images"] if e["superseded"]]
        assert len(superseded) == 5 and all(e["workloads"] == 0 for e in superseded)
        assert not any(ref.endswith(":latest") for e in superseded for ref in e["image"]["refs"])
        hits = json.loads(_ok(_patchline("--config", str(config), "where", "libssl3", "--running", "--json")).stdout)
        running = [h for h in hits["hits"] if h["workloads"]]
        assert running and {h["image"]["config_digest"] for h in running} <= {
            after[n]["config_digest"] for n in after}, running
        # A second run finds nothing to do.
        again = json.loads(_ok(_patchline("--config", str(config), "run", "--once", "--json")).stdout)
        steps = {s["step"]: s["output"] for s in again["steps"]}
        assert again["state"] == "succeeded"
        assert steps["plan"]["items"] == [] and steps["build"]["results"] == []
        assert {n: s["state"] for n, s in steps["rollout"]["services"].items()} == dict.fromkeys(services, "current")

        # The demo again: phase 1 has nothing to do, the run finds nothing, the same report of a patched fleet.
        t1 = time.monotonic()
        second = json.loads(_ok(_patchline(*up, "--json")).stdout)
        second_seconds = time.monotonic() - t1
        assert second["ok"] and second["rebuilt"] == [] and not second["registry_started"]
        assert {r["state"] for r in second["rolled_out"]} == {"current"}
        assert all("skipped" in p["what"] for p in second["phases"] if p["name"].startswith("phase 1: build"))
        assert {i["name"]: i["manifest_digest"] for i in second["after"]["images"]} == {
            n: i["manifest_digest"] for n, i in after.items()}
        print(f"demo: first {first_seconds:.0f} s, again {second_seconds:.0f} s")

        # Down: no container of the demo's services, no registry, no registries.d entry of its repositories.
        pid = int((workdir / "registry" / "registry.pid").read_text())
        down = json.loads(_ok(_patchline("demo", "down", *where, "--json")).stdout)
        assert down["found"] and down["registry_stopped"] == pid and not down["purged"]
        assert len(down["containers_removed"]) == sum(s["replicas_wanted"] for s in services.values())
        assert all(_containers(name) == [] for name in services)
        assert _gone(pid) and not _answers(registry)
        assert not REGISTRIES_D.exists() or registry not in REGISTRIES_D.read_text()

        # Purge: the work directory and the registry's names in podman storage go; the base image stays.
        purged = json.loads(_ok(_patchline("demo", "down", *where, "--purge", "--json")).stdout)
        assert purged["purged"] and not workdir.exists()
        names = subprocess.run(["podman", "images", "--format", "{{.Repository}}"], capture_output=True, text=True,
                               check=True).stdout.split()
        assert not [n for n in names if n.startswith(registry + "/")]
        assert subprocess.run(["podman", "image", "exists", report["base_image"]], check=False).returncode == 0
    finally:
        if workdir.exists():
            _patchline("demo", "down", *where, "--purge", timeout=120)
