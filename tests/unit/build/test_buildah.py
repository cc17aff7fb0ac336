"""What a failed buildah command says, and what a killed patchline leaves behind: pure parts, real files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchline.build._buildah import Leftovers, clean_leftovers, container_name, failure_cause, owned_dir

REFUSED = ('pinging container registry 127.0.0.1:5999: Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: '
           "connect: connection refused")
BASE = "127.0.0.1:5999/example/base@sha256:" + "a" * 64

# Logs of real buildah 1.28 runs (`$` is the command line patchline writes before the output).
PULL_REFUSED = f"""$ buildah bud --layers=false --pull=missing --tls-verify=false /ctx
STEP 1/2: FROM {BASE}
Trying to pull {BASE}...
time="2026-12-05T23:18:18Z" level=warning msg="Failed, retrying in 2s ... (1/3). Error: initializing source \
docker://{BASE}: {REFUSED.replace('"', chr(92) + '"')}"
Error: creating build container: initializing source docker://{BASE}: {REFUSED}
exit status 125
"""
PUSH_REFUSED = f"""$ buildah push --digestfile=/logs/app.digest --tls-verify=false 0a1b docker://127.0.0.1:5999/x/y:latest
Getting image source signatures
Copying blob sha256:ba7e6bbb7c40837863edbcf16251487fdfb98238e2df2653460107147c64f9ee
time="2026-12-05T23:18:28Z" level=warning msg="Failed, retrying in 2s ... (3/3). Error: trying to reuse blob"
Getting image source signatures
Error: pushing image "0a1b" to "docker://127.0.0.1:5999/x/y:latest": trying to reuse blob sha256:ba7e at \
destination: {REFUSED}
exit status 125
"""
APT_MISSING = """$ buildah bud --layers=false /ctx
STEP 1/2: FROM localhost/plexp/debian:1
STEP 2/2: RUN apt-get install -y -q pl-not-there
Reading package lists...
Building dependency tree...
E: Unable to locate package pl-not-there
Error: building at STEP "RUN apt-get install -y -q pl-not-there": while running runtime: exit status 100
exit status 100
"""
SILENT_STEP = """$ buildah bud --layers=false /ctx
STEP 1/3: FROM localhost/plexp/debian:1
STEP 2/3: RUN echo preparing
preparing
STEP 3/3: RUN false
Error: building at STEP "RUN false": while running runtime: exit status 1
exit status 1
"""
SAYS_WHY = """STEP 2/2: RUN echo about to fail; exit 3
about to fail
Error: building at STEP "RUN echo about to fail; exit 3": while running runtime: exit status 3
exit status 3
"""
RUNC = """STEP 2/3: RUN sleep 20
error running container: from /usr/bin/runc creating container for [/bin/sh -c sleep 20]: time="2026-12-05T23:06:41Z" \
level=error msg="runc create failed: unable to start container process: exec: \\"/bin/sh\\": stat /bin/sh: no such file"
: exit status 1
time="2026-12-05T23:06:41Z" level=error msg="did not get container create message from subprocess: EOF"
Error: building at STEP "RUN sleep 20": while running runtime: exit status 1
"""


@pytest.mark.parametrize(("output", "cause"), [
    pytest.param(PULL_REFUSED, f"creating build container: initializing source docker://{BASE}: {REFUSED}",
                 id="registry-stopped-pull"),
    pytest.param(PUSH_REFUSED, 'pushing image "0a1b" to "docker://127.0.0.1:5999/x/y:latest": trying to reuse blob '
                 f"sha256:ba7e at destination: {REFUSED}", id="registry-stopped-push"),
    pytest.param(APT_MISSING, 'E: Unable to locate package pl-not-there; building at STEP "RUN apt-get install -y -q '
                 'pl-not-there": while running runtime: exit status 100', id="apt-error-line"),
    pytest.param(SILENT_STEP, 'building at STEP "RUN false": while running runtime: exit status 1',
                 id="a-silent-step-is-not-blamed-on-the-step-before"),
    pytest.param(SAYS_WHY, 'about to fail; building at STEP "RUN echo about to fail; exit 3": while running '
                 "runtime: exit status 3", id="the-step-s-last-line"),
    pytest.param("E: Sub-process /usr/bin/dpkg returned an error code (1)\n",
                 "E: Sub-process /usr/bin/dpkg returned an error code (1)", id="no-error-line"),
    pytest.param("$ buildah push x\nexit status 1\n", "", id="nothing-said"),
])
def test_the_cause_is_the_tools_own_error_line(output: str, cause: str) -> None:
    assert failure_cause(output) == cause


def test_a_runtime_error_is_the_cause_not_buildahs_wrap_up_lines() -> None:
    cause = failure_cause(RUNC)
    assert cause.startswith("error running container: from /usr/bin/runc") and "runc create failed" in cause
    assert cause.endswith('; building at STEP "RUN sleep 20": while running runtime: exit status 1')
    assert "did not get container create message" not in cause


def test_a_long_cause_keeps_its_end() -> None:
    cause = failure_cause(f"Error: creating build container: {'x' * 1000}: connection refused\n", limit=200)
    assert len(cause) <= 200 and cause.startswith("creating build container") and cause.endswith("connection refused")


# -- leftovers ----------------------------------------------------------------------------------------------------


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def live_pid() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_what_this_process_makes_names_its_pid(tmp_path: Path) -> None:
    assert owned_dir("export", tmp_path).name.startswith(f"patchline-export-{os.getpid()}-")
    assert container_name("patch-nginx") == f"patchline-build-{os.getpid()}-patch-nginx"


def test_only_the_scratch_directories_of_dead_patchline_processes_are_removed(tmp_path: Path, dead_pid: int,
                                                                             live_pid: int) -> None:
    root = tmp_path / "tmp"
    root.mkdir()
    dead = [root / f"patchline-export-{dead_pid}-k2j4", root / f"patchline-build-{dead_pid}-9x8y"]
    for directory in dead:
        (directory / "blobs" / "sha256").mkdir(parents=True)
        (directory / "blobs" / "sha256" / "0a1b").write_bytes(b"layer")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep").write_text("a user's file")
    kept = [root / f"patchline-export-{live_pid}-aaaa",  # a live process's
            root / f"patchline-build-{os.getpid()}-bbbb",  # this process's
            root / "patchline-export-cccc",  # no owner in the name: not provably patchline's
            root / f"patchline-storage-{dead_pid}-dddd",  # another kind of directory
            root / f"buildah{dead_pid}"]  # buildah's own, whoever ran it
    for directory in kept:
        directory.mkdir()
    (root / f"patchline-export-{dead_pid}-link").symlink_to(precious)  # never followed
    (root / f"patchline-export-{dead_pid}-file").write_text("not a directory")

    left = clean_leftovers(roots=[root, root], containers=False)
    assert sorted(left.directories) == sorted(dead) and left.containers == () and left.kept == ()
    assert not any(d.exists() for d in dead)
    assert all(d.is_dir() for d in kept)
    assert (precious / "keep").read_text() == "a user's file"
    assert (root / f"patchline-export-{dead_pid}-link").is_symlink()
    assert f"patchline-export-{dead_pid}-k2j4" in left.summary() and "2 scratch directories" in left.summary()
    assert not clean_leftovers(roots=[root], containers=False)  # nothing left to do: falsy, no summary


def test_a_leftover_summary_says_what_was_kept_and_why() -> None:
    left = Leftovers(containers=("base-working-container",), kept=("/var/tmp/x: something is mounted in it",))
    assert left.summary() == ("removed 1 working container(s) (base-working-container) left by patchline processes "
                              "that are gone; kept /var/tmp/x: something is mounted in it")
