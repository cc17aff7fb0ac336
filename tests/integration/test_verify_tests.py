"""An image's integration tests run in real podman containers of a tiny busybox HTTP image.

The image (busybox-static on scratch, imported with ``podman import``) has an
ENTRYPOINT, a CMD serving /www with ``busybox httpd`` on port 8080, and USER
1000: a command test must replace the entrypoint and keep the user; an HTTP test
runs the image as it is.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import os
import shutil
import signal
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchline._config import ImageTest
from patchline.errors import VerifyError
from patchline.verify._runner import LABEL_TEST, run_image_tests
from tests.support.registry import require_tools

pytestmark = pytest.mark.integration


def busybox_http_image(tag: str, *, healthz: str) -> str:
    """Import a busybox image serving /www (``/healthz`` says ``healthz``) as ``tag``; its image ID."""
    busybox = shutil.which("busybox")
    assert busybox is not None
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        def add(name: str, data: bytes = b"", *, mode: int = 0o644, link: str | None = None) -> None:
            info = tarfile.TarInfo(name)
            info.mode, info.size = mode, len(data)
            if link is not None:
                info.type, info.linkname, info.size = tarfile.SYMTYPE, link, 0
            tar.addfile(info, io.BytesIO(data) if link is None else None)

        add("bin/busybox", Path(busybox).read_bytes(), mode=0o755)
        for applet in applets:
            if applet != "busybox":
                add(f"bin/{applet}", link="busybox")
        add("www/healthz", healthz.encode())
        add("www/index.html", b"<p>index</p>\n")
    subprocess.run(
        ["podman", "import", "--change", 'ENTRYPOINT ["/bin/busybox"]',
         "--change", 'CMD ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]', "--change", "USER 1000",
         "-", tag],
        input=buffer.getvalue(), capture_output=True, check=True, timeout=120)
    return subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    require_tools("podman", "busybox")
    tag = f"localhost/patchline-test/verify-http:{uuid.uuid4().hex[:12]}"
    image_id = busybox_http_image(tag, healthz="ok from the image\n")
    yield image_id
    subprocess.run(["podman", "rmi", "-f", image_id], capture_output=True, timeout=120)


@pytest.fixture
def run_id() -> Iterator[str]:
    """A fresh run id; afterwards no container of the run may be left."""
    run = f"t{uuid.uuid4().hex[:10]}"
    yield run
    left = leftovers(run)
    if left:
        subprocess.run(["podman", "rm", "-f", "-t", "0", *left], capture_output=True, timeout=60)
    assert not left, f"containers of run {run} left behind: {left}"


def leftovers(run_id: str) -> list[str]:
    return subprocess.run(["podman", "ps", "-aq", "--filter", f"label={LABEL_TEST}={run_id}"],
                          capture_output=True, text=True, check=True).stdout.split()


def test_command_tests_pass_fail_and_see_their_environment(image: str, run_id: str, tmp_path: Path) -> None:
    tests = (
        ImageTest(name="passes", command="echo all good"),
        ImageTest(command="echo 'something broke' >&2; exit 3"),
        ImageTest(name="env", command='test "${#GREETING}" = 12', env={"GREETING": "s3cret-value"}),
        ImageTest(name="user kept", command='test "$(id -u)" = 1000'),
        ImageTest(name="entrypoint replaced", command="test -f /www/healthz && echo served by $0"),
    )
    report = run_image_tests(image, tests, log_dir=tmp_path, run_id=run_id)

    assert report.image == image
    assert [(o.name, o.passed, o.detail) for o in report.outcomes] == [
        ("passes", True, "exit 0"),
        ("echo 'something broke' >&2; exit 3", False, "exit 3"),  # and the tests after it still ran
        ("env", True, "exit 0"),
        ("user kept", True, "exit 0"),
        ("entrypoint replaced", True, "exit 0"),
    ]
    assert not report.passed and [o.name for o in report.failed] == ["echo 'something broke' >&2; exit 3"]
    logs = [o.log for o in report.outcomes]
    assert all(log is not None and log.parent == tmp_path / run_id for log in logs)
    assert [log.name for log in logs if log] == [
        "01-passes.log", "02-echo-something-broke-2-exit-3.log", "03-env.log", "04-user-kept.log",
        "05-entrypoint-replaced.log"]
    assert "all good" in logs[0].read_text()  # type: ignore[union-attr]
    assert "something broke" in logs[1].read_text()  # type: ignore[union-attr]
    assert "served by /bin/sh" in logs[4].read_text()  # type: ignore[union-attr]
    assert "--env-file" in logs[2].read_text()  # type: ignore[union-attr]
    assert "s3cret" not in logs[2].read_text()  # type: ignore[union-attr]  # values may be credentials


def test_a_command_that_outlives_its_timeout_is_killed(image: str, run_id: str, tmp_path: Path) -> None:
    # sleep as PID 1 ignores SIGTERM: only a kill ends it this fast.
    report = run_image_tests(image, (ImageTest(command="sleep 30", timeout=1),), log_dir=tmp_path, run_id=run_id)
    (outcome,) = report.outcomes
    assert (outcome.passed, outcome.detail) == (False, "timed out after 1 s")
    assert 1 <= outcome.seconds < 5
    assert leftovers(run_id) == []


def test_http_tests(image: str, run_id: str, tmp_path: Path) -> None:
    tests = (
        ImageTest(name="healthz", http="/healthz", port=8080, body=r"^ok from the image$"),
        ImageTest(name="missing page", http="/missing", port=8080),
        ImageTest(name="wrong body", http="/healthz", port=8080, body="version 2"),
        ImageTest(name="404 wanted", http="/missing", port=8080, status=404),
        ImageTest(name="nobody listens", http="/", port=9999, timeout=2),
    )
    started = time.monotonic()
    report = run_image_tests(image, tests, log_dir=tmp_path, run_id=run_id)
    assert [(o.name, o.passed, o.detail) for o in report.outcomes] == [
        ("healthz", True, "HTTP 200"),
        ("missing page", False, "HTTP 404 (wanted 200)"),
        ("wrong body", False, "body did not match 'version 2'"),
        ("404 wanted", True, "HTTP 404"),
        ("nobody listens", False, "timed out after 2 s: connection refused"),
    ]
    assert time.monotonic() - started < 20
    # The container's own log (httpd -v logs each request) is kept in the test's log.
    healthz_log = report.outcomes[0].log
    assert healthz_log is not None and "response:200" in healthz_log.read_text()


def test_an_http_test_of_a_container_that_exits_fails_at_once(image: str, run_id: str, tmp_path: Path) -> None:
    # The caller's podman flags apply to every test container; this one makes the image exit with 1.
    report = run_image_tests(image, (ImageTest(http="/healthz", port=8080, timeout=30),), log_dir=tmp_path,
                             run_id=run_id, podman_args=("--entrypoint", "/bin/false"))
    (outcome,) = report.outcomes
    assert (outcome.name, outcome.passed, outcome.detail) == (
        "GET :8080/healthz", False, "container exited with 1 before answering")
    assert outcome.seconds < 10


def test_ctrl_c_during_a_test_leaves_no_container(image: str, run_id: str, tmp_path: Path) -> None:
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_image_tests(image, (ImageTest(command="sleep 30"),), log_dir=tmp_path, run_id=run_id)
    finally:
        timer.cancel()
    assert leftovers(run_id) == []


def test_an_image_that_is_not_there_cannot_be_tested(run_id: str, tmp_path: Path) -> None:
    require_tools("podman")
    with pytest.raises(VerifyError, match="not in local podman storage"):
        run_image_tests("localhost/patchline-test/no-such-image:gone", (ImageTest(command="true"),),
                        log_dir=tmp_path, run_id=run_id)


@pytest.fixture
def host_server() -> Iterator[int]:
    """An HTTP server on every address of the host (a container with a network reaches it at its gateway)."""
    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _gateway() -> str:
    return subprocess.run(["podman", "network", "inspect", "podman", "--format",
                           "{{range .Subnets}}{{.Gateway}}{{end}}"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_a_command_test_has_no_network(image: str, run_id: str, tmp_path: Path, host_server: int) -> None:
    # busybox's static wget crashes here; nc speaks the HTTP request.
    fetch = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {_gateway()} {host_server} | grep '^HTTP/1.0 200'"
    # With the default network a container of the image reaches the host's server: the address is right.
    reached = subprocess.run(["podman", "run", "--rm", "--entrypoint", "/bin/sh", image, "-c", fetch],
                             capture_output=True, text=True, timeout=60)
    assert reached.returncode == 0, reached.stdout + reached.stderr
    tests = (
        ImageTest(name="fetch", command=fetch),
        ImageTest(name="interfaces", command="ls /sys/class/net"),
    )
    report = run_image_tests(image, tests, log_dir=tmp_path, run_id=run_id)
    fetched, interfaces = report.outcomes
    assert not fetched.passed and fetched.log is not None
    assert "unreachable" in fetched.log.read_text().lower()
    assert interfaces.passed and interfaces.log is not None
    assert [line for line in interfaces.log.read_text().splitlines() if not line.startswith(("#", "$"))] == ["lo"]


def test_test_containers_have_no_capabilities_and_no_secrets_on_the_command_line(
        image: str, run_id: str, tmp_path: Path) -> None:
    secret = f"s3cret-{uuid.uuid4().hex}"
    on_command_lines: list[bytes] = []
    done = threading.Event()

    def watch() -> None:  # the host's process table while the tests run, as `ps` shows it
        while not done.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                with contextlib.suppress(OSError):
                    if secret.encode() in (data := cmdline.read_bytes()):
                        on_command_lines.append(data)
            time.sleep(0.02)

    status = "grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status"
    tests = (
        ImageTest(name="as root", command=f"test $(id -u) = 0 && {status}"),
        ImageTest(name="declared", command=status, capabilities=("NET_BIND_SERVICE",)),
        ImageTest(name="env", command=f'test "${{#TOKEN}}" = {len(secret)} && sleep 2 && echo "token: $TOKEN"',
                  env={"TOKEN": secret}),
        ImageTest(name="pids", command="cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
                  pids_limit=64),
    )
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        # As root in the container (the image's user would have no effective capabilities anyway).
        report = run_image_tests(image, tests, log_dir=tmp_path, run_id=run_id, podman_args=("--user", "0"))
    finally:
        done.set()
        watcher.join()
    assert [(o.name, o.passed) for o in report.outcomes] == [("as root", True), ("declared", True), ("env", True),
                                                            ("pids", True)]
    logs = [o.log.read_text() if o.log else "" for o in report.outcomes]
    assert "CapEff:\t0000000000000000" in logs[0] and "CapBnd:\t0000000000000000" in logs[0]
    assert "NoNewPrivs:\t1" in logs[0]
    assert "CapEff:\t0000000000000400" in logs[1] and "CapBnd:\t0000000000000400" in logs[1]  # NET_BIND_SERVICE
    assert on_command_lines == []
    assert "--env-file" in logs[2] and secret not in logs[2] and "token: [redacted]" in logs[2]
    assert "\n64\n" in logs[3]
