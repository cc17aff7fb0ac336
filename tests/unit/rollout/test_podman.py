"""The podman target's command lines, its parsing of podman's output, and its verdicts (no podman needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from patchline._config import HealthCheckConfig
from patchline.errors import HostError
from patchline.rollout._podman import (
    DEFAULT_STOP_TIMEOUT,
    RESTART_POLICY,
    PodmanTarget,
    command_verdict,
    http_verdict,
    parse_replicas,
    parse_restart_counts,
    run_argv,
)
from patchline.rollout.interface import Replica, ServiceSpec

DATA = Path(__file__).resolve().parents[2] / "data" / "podman"
IMAGE = "127.0.0.1:5000/example/web@sha256:" + "a" * 64
IMAGE_ID = "f" * 64


def spec(**kw: Any) -> ServiceSpec:
    defaults: dict[str, Any] = {"name": "web", "repository": "127.0.0.1:5000/example/web", "replicas": 3}
    return ServiceSpec(**(defaults | kw))


def pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def test_run_argv_labels_the_replica_and_publishes_its_port_on_loopback() -> None:
    service = spec(port=8080, host_port=18000, env={"GREETING": "hi", "B": "x=y"}, command=("serve", "--fast"))
    argv = run_argv(service, 2, image=IMAGE, image_id=IMAGE_ID, rollout_id=42)
    assert argv[:3] == ["podman", "run", "--detach"]
    assert pairs(argv, "--name") == ["patchline-web-2"]
    assert pairs(argv, "--label") == ["io.patchline.service=web", "io.patchline.replica=2",
                                      f"io.patchline.image={IMAGE}", "io.patchline.rollout=42"]
    assert pairs(argv, "--publish") == ["127.0.0.1:18002:8080"]  # host_port + index
    assert pairs(argv, "--env") == ["GREETING=hi", "B=x=y"]
    assert pairs(argv, "--restart") == [RESTART_POLICY]
    assert pairs(argv, "--stop-timeout") == [str(DEFAULT_STOP_TIMEOUT)]
    # The image ID, never a tag, then the service's command replacing the image's.
    assert argv[-3:] == [IMAGE_ID, "serve", "--fast"]


def test_run_argv_puts_podman_args_between_the_defaults_and_the_identity() -> None:
    service = spec(podman_args=("--stop-timeout", "30", "--read-only", "--name", "hijack"))
    argv = run_argv(service, 0, image=IMAGE, image_id=IMAGE_ID, rollout_id=1, stop_timeout=5)
    ours, theirs, name = argv.index("--stop-timeout"), argv.index("--read-only"), argv.index("patchline-web-0")
    # podman takes the last value of a flag: the service may change the stop timeout and the restart
    # policy, never the name or the labels patchline finds its replicas by.
    assert ours < theirs < name
    assert argv[ours + 1] == "5"
    assert argv[argv.index("hijack") + 1:].count("--name") == 1


def test_run_argv_without_a_port_publishes_nothing() -> None:
    argv = run_argv(spec(), 0, image=IMAGE, image_id=IMAGE_ID, rollout_id=1)
    assert "--publish" not in argv
    assert argv[-1] == IMAGE_ID


def test_parse_replicas_reads_podman_ps_output() -> None:
    replicas = parse_replicas((DATA / "ps-replicas.json").read_text())
    # `stray` carries the service label but no replica label: not a replica.
    assert [r.container for r in replicas] == ["patchline-web-0", "patchline-web-1", "patchline-web-2"]
    first = replicas[0]
    assert first == Replica(
        service="web", index=0, container="patchline-web-0",
        container_id="bd2420b381c9fae8d12aab00a44302b3aa8424a8cbbafde2b6043026f1ec46aa",
        image="127.0.0.1:5000/example/web@sha256:" + "0" * 64,
        image_id="fa1fd028fe46abc40a68aa68579654e7f1ce275ce43009c61accc58383ee4ba7",
        running=True, restarts=0, rollout_id=7, host_port=18100,
    )
    assert replicas[1].host_port == 18101
    crashed = replicas[2]
    assert (crashed.running, crashed.host_port, crashed.index) == (False, None, 2)


def test_parse_replicas_sorts_by_index_and_skips_foreign_entries() -> None:
    def entry(cid: str, labels: Any) -> dict[str, Any]:
        return {"Id": cid, "Names": [cid], "State": "running", "ImageID": "i", "Labels": labels, "Ports": None}

    text = json.dumps([
        entry("c10", {"io.patchline.service": "web", "io.patchline.replica": "10"}),
        entry("c2", {"io.patchline.service": "web", "io.patchline.replica": "2", "io.patchline.rollout": "x"}),
        entry("bad", {"io.patchline.service": "web", "io.patchline.replica": "-1"}),
        entry("none", None),
        "not an object",
    ])
    replicas = parse_replicas(text)
    assert [(r.container, r.index, r.rollout_id, r.image) for r in replicas] == [("c2", 2, None, ""),
                                                                                   ("c10", 10, None, "")]


def test_parse_replicas_of_no_containers() -> None:
    assert parse_replicas((DATA / "ps-none.json").read_text()) == []
    assert parse_replicas("") == []


def test_parse_restart_counts() -> None:
    counts = parse_restart_counts((DATA / "inspect-restarts.txt").read_text())
    assert counts["42ead9fa492d7a77d55bcda3ab016dac6f807e7e6bd543d162036203e88ad13a"] == 3
    assert sorted(counts.values()) == [0, 0, 0, 3]
    assert parse_restart_counts("Error: no such container x\nshort 1\n") == {}


@pytest.mark.parametrize(
    ("status", "reason", "wanted", "verdict"),
    [
        (200, "OK", 200, (True, "200 OK")),
        (204, "No Content", 204, (True, "204 No Content")),
        (500, "Internal Server Error", 200, (False, "HTTP 500 (wanted 200)")),
        (200, "OK", 204, (False, "HTTP 200 (wanted 204)")),
    ],
)
def test_http_verdict(status: int, reason: str, wanted: int, verdict: tuple[bool, str]) -> None:
    assert http_verdict(status, reason, wanted=wanted) == verdict


@pytest.mark.parametrize(
    ("returncode", "output", "verdict"),
    [
        (0, "anything\n", (True, "exit 0")),
        (1, "", (False, "exit 1")),
        (2, "checking\nnot ready: db down\n\n", (False, "exit 2: not ready: db down")),
    ],
)
def test_command_verdict(returncode: int, output: str, verdict: tuple[bool, str]) -> None:
    assert command_verdict(returncode, output) == verdict


def test_http_probe_without_a_published_port_is_unhealthy() -> None:
    service = spec(health=HealthCheckConfig(http="/healthz"))
    with PodmanTarget(policy=None) as target:
        probe = target.probe(service, 0)
    assert (probe.healthy, probe.detail) == (False, "no published port to check")


def test_pull_goes_through_the_policy_with_tls_off_only_for_insecure_hosts(tmp_path: Path) -> None:
    calls: list[tuple[str, Path, bool]] = []

    def pull(reference: str, *, policy: Path, insecure: bool) -> str:
        calls.append((reference, policy, insecure))
        return IMAGE_ID

    policy = tmp_path / "policy.json"
    target = PodmanTarget(policy=policy, insecure=["127.0.0.1:5000"], pull=pull)
    assert target.pull(IMAGE) == IMAGE_ID
    target.pull("127.0.0.1:5001/example/web@sha256:" + "b" * 64)
    assert calls == [(IMAGE, policy, True), ("127.0.0.1:5001/example/web@sha256:" + "b" * 64, policy, False)]


def test_run_argv_drops_privileges_by_default() -> None:
    argv = run_argv(spec(), 0, image=IMAGE, image_id=IMAGE_ID, rollout_id=1)
    assert {"--cap-drop=all", "--security-opt=no-new-privileges", "--pids-limit=1024"} <= set(argv)
    assert not [a for a in argv if a.startswith(("--cap-add", "--memory", "--userns"))]
    declared = spec(capabilities=("NET_BIND_SERVICE",), memory="256m", pids_limit=64, userns_auto=True,
                    podman_args=("--read-only",))
    argv = run_argv(declared, 0, image=IMAGE, image_id=IMAGE_ID, rollout_id=1)
    assert {"--cap-add=NET_BIND_SERVICE", "--memory=256m", "--pids-limit=64", "--userns=auto"} <= set(argv)
    # The service's own flags come after patchline's defaults: podman takes the last value.
    assert argv.index("--cap-drop=all") < argv.index("--read-only")


def test_environment_values_never_reach_the_command_line(tmp_path: Path) -> None:
    from patchline._least_privilege import env_file as _env_file

    service = spec(env={"API_TOKEN": "s3cr3t", "GREETING": "a=b c"})
    with _env_file(service.env) as path:
        assert path is not None
        argv = run_argv(service, 0, image=IMAGE, image_id=IMAGE_ID, rollout_id=1, env_file=path)
        assert "s3cr3t" not in " ".join(argv) and pairs(argv, "--env-file") == [str(path)]
        assert path.read_text() == "API_TOKEN=s3cr3t\nGREETING=a=b c\n"
        assert (path.stat().st_mode & 0o777, path.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    assert not path.exists()  # removed once podman has read it
    with pytest.raises(HostError, match="newline"), _env_file({"X": "two\nlines"}):
        pass


def test_a_service_under_gvisor_runs_on_runsc_and_says_so() -> None:
    argv = run_argv(spec(runtime="runsc"), 0, image=IMAGE, image_id=IMAGE_ID, rollout_id=1)
    assert pairs(argv, "--runtime") == ["/usr/bin/runsc"] and "--runtime-flag=network=host" in argv
    assert "io.patchline.runtime=runsc" in pairs(argv, "--label")
    assert "--runtime" not in run_argv(spec(), 0, image=IMAGE, image_id=IMAGE_ID, rollout_id=1)
    entry = {"Id": "a" * 64, "Names": ["patchline-web-0"], "ImageID": "b" * 64, "State": "running",
             "Labels": {"io.patchline.service": "web", "io.patchline.replica": "0", "io.patchline.runtime": "runsc"}}
    [replica] = parse_replicas(json.dumps([entry]))
    assert replica.runtime == "runsc"
