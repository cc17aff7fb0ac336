"""The image test runner's podman command lines and verdicts (no podman needed)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from patchline._config import ImageTest
from patchline.errors import VerifyError
from patchline.verify._runner import LABEL_TEST, command_argv, http_argv, judge_answer, run_image_tests

COMMON = ["--name", "patchline-test-r1-1", "--label", f"{LABEL_TEST}=r1", "--env", "A=1", "--cap-drop=all"]


def test_command_argv_replaces_the_entrypoint_after_the_callers_flags() -> None:
    argv = command_argv("sha256img", "echo hi && exit 3", COMMON)
    assert argv[:4] == ["podman", "run", "--rm", "--replace"]
    assert argv[4:11] == COMMON
    # The entrypoint flag follows the caller's flags (the last one wins), the command is one sh -c argument.
    assert argv[11:] == ["--entrypoint", "/bin/sh", "sha256img", "-c", "echo hi && exit 3"]
    assert "--user" not in argv and "-u" not in argv  # the image's own user runs the test


def test_http_argv_publishes_on_loopback_and_keeps_the_images_command() -> None:
    argv = http_argv("img", host_port=40123, container_port=8080, common=COMMON)
    assert argv[:4] == ["podman", "run", "-d", "--replace"]
    assert argv[4:6] == ["-p", "127.0.0.1:40123:8080"]
    assert argv[-1] == "img"  # nothing after the image: its entrypoint and command run
    assert "--entrypoint" not in argv


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
