"""What a failed buildah command says, and what a killed patchline leaves behind: pure parts, real files."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from patchline._config import Config
from patchline.build import _buildah, load_recipes
from patchline.build._buildah import (
    BuildEnv,
    Leftovers,
    bud,
    build_arg_flags,
    clean_leftovers,
    container_name,
    failure_cause,
    loopback_note,
    owned_dir,
    registries_conf,
    registries_env,
)
from patchline.errors import BuildError

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


# -- what a build is told: registries, build args, network ------------------------------------------------------


def test_the_registries_conf_marks_only_the_insecure_hosts() -> None:
    text = registries_conf({"127.0.0.1:5000", "registry.example:8443"})
    registries = tomllib.loads(text)["registry"]
    assert registries == [{"location": "127.0.0.1:5000", "insecure": True},
                          {"location": "registry.example:8443", "insecure": True}]


def test_the_hosts_registries_conf_is_kept_and_extended() -> None:
    host = ('unqualified-search-registries = ["registry.example"]\n\n[[registry]]\nlocation = "blocked.example"\n'
            'blocked = true\n\n[[registry]]\nprefix = "mirrored.example"\nlocation = "mirrored.example"\n'
            '[[registry.mirror]]\nlocation = "mirror.example"\n\n[[registry]]\nlocation = "10.0.0.1:5000"\n'
            "insecure = true")
    text = registries_conf(["127.0.0.1:5000", "10.0.0.1:5000"], host_conf=host)
    assert text.startswith(host + "\n")  # byte for byte: its blocked registries and mirrors still apply
    document = tomllib.loads(text)
    assert document["unqualified-search-registries"] == ["registry.example"]
    assert [(r["location"], r.get("insecure", False)) for r in document["registry"]] == [
        ("blocked.example", False), ("mirrored.example", False), ("10.0.0.1:5000", True), ("127.0.0.1:5000", True)]


@pytest.mark.parametrize(("host", "message"), [
    ('[[registry]]\nlocation = "127.0.0.1:5000"\n', "configures 127.0.0.1:5000 without insecure = true"),
    ('[registries.search]\nregistries = ["registry.example"]\n', "version 1 format"),
    ("[[registry]\n", "cannot read /etc/containers/registries.conf"),
])
def test_a_host_registries_conf_that_cannot_take_the_insecure_hosts_is_refused(host: str, message: str) -> None:
    with pytest.raises(BuildError, match=re.escape(message)):
        registries_conf({"127.0.0.1:5000"}, host_conf=host, source="/etc/containers/registries.conf")


def test_the_registries_conf_lives_in_a_private_directory_for_the_build_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host_conf = tmp_path / "host-registries.conf"
    host_conf.write_text('[[registry]]\nlocation = "blocked.example"\nblocked = true\n')
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(host_conf))
    env = BuildEnv(insecure=frozenset({"127.0.0.1:5000"}), scratch=tmp_path)
    with registries_env(env) as extra:
        conf = Path(extra["CONTAINERS_REGISTRIES_CONF"])
        assert conf.parent.parent == tmp_path and conf.parent.name.startswith(f"patchline-build-{os.getpid()}-")
        assert stat.S_IMODE(conf.parent.stat().st_mode) == 0o700 and stat.S_IMODE(conf.stat().st_mode) == 0o600
        assert conf.read_text() == registries_conf({"127.0.0.1:5000"}, host_conf=host_conf.read_text())
    assert not conf.parent.exists()
    with registries_env(BuildEnv(scratch=tmp_path)) as extra:
        assert extra == {}  # nothing insecure: the host's own configuration, untouched


def test_build_args_reach_buildah_by_name_only() -> None:
    flags, environ = build_arg_flags({"TOKEN": "s3cret", "EMPTY": "", "PATH": "/opt/bin", "https_proxy": "http://p"})
    assert flags == ["--build-arg=EMPTY", "--build-arg=PATH=/opt/bin", "--build-arg=TOKEN",
                     "--build-arg=https_proxy=http://p"]
    assert environ == {"TOKEN": "s3cret", "EMPTY": ""}  # what buildah itself reads stays out of its environment


@dataclass
class Ran:
    argv: list[str]
    env: dict[str, str]
    conf: str | None  # the registries.conf buildah was given, as it was while it ran


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Ran]:
    """Every command bud would run (with the environment it would get), instead of running it."""
    calls: list[Ran] = []
    monkeypatch.setattr(_buildah, "_marks_containers", lambda: True)
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(tmp_path / "absent.conf"))

    def fake_run(argv: Sequence[str], log: Path, what: str, *, env: Mapping[str, str] | None = None) -> None:
        environ = dict(env or {})
        conf = environ.get("CONTAINERS_REGISTRIES_CONF", "")
        calls.append(Ran(list(argv), environ, Path(conf).read_text() if conf.startswith(str(tmp_path / "s")) else None))
        (tmp_path / "iid").write_text("sha256:" + "c" * 64)

    monkeypatch.setattr(_buildah, "_run", fake_run)
    return calls


def test_bud_puts_no_build_arg_value_on_its_command_line(ran: list[Ran], tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    env = BuildEnv(insecure=frozenset({"127.0.0.1:5000"}), scratch=tmp_path / "s")
    image_id = bud(containerfile=tmp_path / "Containerfile", context=tmp_path, tag="127.0.0.1:5000/x/app:latest",
                   args={"API_TOKEN": "s3cret-value", "PATCHLINE_REGISTRY": "127.0.0.1:5000"}, timestamp=1700000000,
                   env=env, log=tmp_path / "log", iidfile=tmp_path / "iid")
    assert image_id == "sha256:" + "c" * 64
    [call] = ran
    assert not [a for a in call.argv if "s3cret" in a]
    assert "--build-arg=API_TOKEN" in call.argv and "--build-arg=PATCHLINE_REGISTRY" in call.argv
    assert call.env["API_TOKEN"] == "s3cret-value" and call.env["TMPDIR"] == str(tmp_path / "s")
    # TLS stays on for every pull but the insecure host's, which the build's own registries.conf names.
    assert not [a for a in call.argv if a.startswith("--tls-verify")]
    assert call.conf is not None and tomllib.loads(call.conf)["registry"] == [
        {"location": "127.0.0.1:5000", "insecure": True}]
    assert list((tmp_path / "s").iterdir()) == []  # removed after the build
    # RUN steps get buildah's own network namespace unless the recipe asks for the host's.
    assert "--network=private" in call.argv


def test_the_build_log_names_build_args_but_never_their_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_buildah, "_marks_containers", lambda: False)
    seen: list[list[str]] = []

    class FakePopen:
        def __init__(self, argv: list[str], **kw: object) -> None:
            seen.append(argv)
            self.stdout = iter(["STEP 1/1: FROM scratch\n"])

        def wait(self) -> int:
            (tmp_path / "iid").write_text("sha256:" + "d" * 64)
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    bud(containerfile=tmp_path / "Containerfile", context=tmp_path, tag="localhost/x:1", args={"PASSWORD": "hunter2"},
        timestamp=1, env=BuildEnv(), log=tmp_path / "build.log", iidfile=tmp_path / "iid")
    log = (tmp_path / "build.log").read_text()
    assert "--build-arg=PASSWORD " in log and "hunter2" not in log
    assert "hunter2" not in " ".join(seen[0])


def test_the_default_network_is_buildahs_own_and_a_recipe_may_ask_for_the_hosts(tmp_path: Path) -> None:
    assert BuildEnv().network == "private" == Config().build.network
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Containerfile").write_text("FROM registry.example/base:1\nRUN true\n")
    config = Config.model_validate({"images": [{"name": "app", "context": "app", "network": "host"},
                                               {"name": "vendor", "image": "registry.example/vendor:1"}],
                                    "source": tmp_path / "patchline.toml"})
    assert [(r.name, r.network) for r in load_recipes(config)] == [("app", "host"), ("vendor", None)]


@pytest.mark.parametrize(("network", "urls", "warned"), [
    ("private", ["http://127.0.0.1:3142/debian-security"], True),
    ("private", ["http://localhost/debian"], True),
    ("private", ["http://[::1]:8080/debian"], True),
    ("private", ["http://deb.example/debian-security", "http://10.0.0.5/debian"], False),
    ("host", ["http://127.0.0.1:3142/debian-security"], False),
])
def test_an_update_source_on_the_hosts_loopback_is_named_when_the_build_cannot_reach_it(
        network: str, urls: list[str], warned: bool) -> None:
    note = loopback_note(network, urls)
    assert (note is not None) == warned
    if note is not None:
        assert urls[0] in note and 'network = "host"' in note
