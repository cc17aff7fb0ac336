"""The image test runner's podman command lines and verdicts (no podman needed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from patchline._config import ImageTest
from patchline.errors import VerifyError
from patchline.verify._runner import (
    LABEL_TEST,
    command_argv,
    container_flags,
    http_argv,
    judge_answer,
    run_image_tests,
)

COMMON = ["--name", "patchline-test-r1-1", "--label", f"{LABEL_TEST}=r1", "--env", "A=1", "--cap-drop=all"]


def test_command_argv_replaces_the_entrypoint_after_the_callers_flags() -> None:
    argv = command_argv("sha256img", "echo hi && exit 3", COMMON)
    assert argv[:4] == ["podman", "run", "--rm", "--replace"]
    assert argv[4:11] == COMMON
    # No network and the entrypoint follow the caller's flags (the last one wins), the command is one sh -c argument.
    assert argv[11:] == ["--network=none", "--entrypoint", "/bin/sh", "sha256img", "-c", "echo hi && exit 3"]
    assert "--user" not in argv and "-u" not in argv  # the image's own user runs the test


def test_http_argv_publishes_on_loopback_and_keeps_the_images_command() -> None:
    argv = http_argv("img", host_port=40123, container_port=8080, common=COMMON)
    assert argv[:4] == ["podman", "run", "-d", "--replace"]
    assert argv[4:6] == ["-p", "127.0.0.1:40123:8080"]
    assert argv[-1] == "img"  # nothing after the image: its entrypoint and command run
    assert "--entrypoint" not in argv
    assert not [a for a in argv if a.startswith("--network")]  # it serves over the default network


@pytest.mark.parametrize(
    ("status", "body", "pattern", "wanted", "verdict"),
    [
        (200, "ok\n", None, 200, ("HTTP 200", True)),
        (200, "status: ok", r"^status: (ok|fine)$", 200, ("HTTP 200", True)),
        (500, "ok", None, 200, ("HTTP 500 (wanted 200)", False)),
        (404, "", None, 404, ("HTTP 404", True)),
        (200, "error", "ok", 200, ("body did not match 'ok'", False)),
        (503, "ok", "ok", 200, ("HTTP 503 (wanted 200)", False)),  # the status is judged first
    ],
)
def test_judge_answer(status: int, body: str, pattern: str | None, wanted: int, verdict: tuple[str, bool]) -> None:
    test = ImageTest(http="/healthz", port=8080, status=wanted, body=pattern)
    assert judge_answer(httpx.Response(status, text=body), test) == verdict


def test_an_invalid_body_pattern_fails_the_test_with_the_reason() -> None:
    detail, passed = judge_answer(httpx.Response(200, text="x"), ImageTest(http="/", port=80, body="(unclosed"))
    assert not passed
    assert detail.startswith("invalid body pattern '(unclosed'")


def test_no_tests_is_an_empty_passing_report(tmp_path: Path) -> None:
    report = run_image_tests("img", (), log_dir=tmp_path, run_id="r")
    assert report.outcomes == () and report.passed


def test_without_podman_the_tests_cannot_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no podman on PATH
    with pytest.raises(VerifyError, match="podman is not installed"):
        run_image_tests("img", (ImageTest(command="true"),), log_dir=tmp_path, run_id="r")


def test_test_containers_get_least_privilege() -> None:
    flags = container_flags(ImageTest(command="true"), env_path=None)
    assert flags == ["--cap-drop=all", "--security-opt=no-new-privileges", "--pids-limit=1024"]
    declared = ImageTest(http="/", port=80, capabilities=("NET_BIND_SERVICE", "CHOWN"), memory="256m", pids_limit=64)
    flags = container_flags(declared, env_path=Path("/run/env"))
    assert flags == ["--cap-drop=all", "--cap-add=NET_BIND_SERVICE", "--cap-add=CHOWN",
                     "--security-opt=no-new-privileges", "--pids-limit=64", "--memory=256m", "--env-file", "/run/env"]


FAKE_PODMAN = """#!/bin/sh
# Records each call's arguments, and the env file podman run was given; prints the secret as a test might.
echo "$*" >> "$RECORD/argv"
if [ "$1" = run ]; then
    while [ $# -gt 0 ]; do
        if [ "$1" = --env-file ]; then
            stat -c %a "$2" > "$RECORD/env-mode"; cat "$2" > "$RECORD/env"
        fi
        shift
    done
    echo "the token is s3cr3t-token"
    exit 4
fi
exit 0
"""


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake podman first on PATH; the directory where it records its calls."""
    bin_dir, record = tmp_path / "bin", tmp_path / "record"
    bin_dir.mkdir()
    record.mkdir()
    podman = bin_dir / "podman"
    podman.write_text(FAKE_PODMAN)
    podman.chmod(podman.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("RECORD", str(record))
    return record


def test_environment_values_stay_off_the_command_line_the_log_and_the_outcome(tmp_path: Path, record: Path) -> None:
    test = ImageTest(name="token", command="echo the token is $API_TOKEN; exit 4", env={"API_TOKEN": "s3cr3t-token"})

    report = run_image_tests("img", (test,), log_dir=tmp_path / "logs", run_id="r1")

    (outcome,) = report.outcomes
    assert (outcome.passed, outcome.detail) == (False, "exit 4")
    argv = (record / "argv").read_text()
    assert "s3cr3t" not in argv and "--env-file" in argv and "--env " not in argv
    assert (record / "env").read_text() == "API_TOKEN=s3cr3t-token\n"
    assert (record / "env-mode").read_text().strip() == "600"
    assert outcome.log is not None
    log = outcome.log.read_text()
    assert "s3cr3t" not in log and "the token is [redacted]" in log


def test_an_environment_an_env_file_cannot_hold_fails_that_test(tmp_path: Path, record: Path) -> None:
    report = run_image_tests("img", (ImageTest(command="true", env={"A": "two\nlines"}),), log_dir=tmp_path,
                             run_id="r")
    (outcome,) = report.outcomes
    assert not outcome.passed and "newline" in outcome.detail
    assert " run " not in f" {(record / 'argv').read_text()}"  # no container was started
