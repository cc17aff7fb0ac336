"""A real, local, signed apt repository for tests, built with Debian's own tools.

Packages are built with ``dpkg-deb --build`` (a control file and a
``usr/share/doc/NAME/changelog.Debian.gz`` whose entries name CVEs), indexed with
``apt-ftparchive packages`` / ``release``, signed with a throwaway key (``gpg
--clearsign`` -> ``InRelease``) and served over HTTP on 127.0.0.1.

Fixtures (add this module to ``pytest_plugins``):

``apt_repo``          an :class:`AptRepo` in a temporary directory, served, empty.
``apt_repo_factory``  a callable making more of them (e.g. one signed by another key).

Example::

    apt_repo.add("hello", "1.0-1", changelog_cves=["CVE-2099-0000"])
    apt_repo.add("hello", "1.0-2", changelog_cves=["CVE-2099-0001"], urgency="high")
    apt_repo.publish("stable-security")          # both versions; publish again after more add()s
    AptSuite(apt_repo.url, "stable-security", ("main",)), keyring=apt_repo.keyring

Each ``add`` of a source's later version carries the earlier entries in its
changelog, as a real package does. The fixtures skip, saying why, when
``dpkg-deb``, ``apt-ftparchive`` or ``gpg`` are missing.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import pytest

__all__ = ["AptRepo", "BuiltDeb", "apt_repo", "apt_repo_factory", "missing_apt_tools"]

_TOOLS = ("dpkg-deb", "apt-ftparchive", "gpg")


def missing_apt_tools() -> list[str]:
    """The host tools this fixture needs that are not installed."""
    return [tool for tool in _TOOLS if shutil.which(tool) is None]


@dataclass(frozen=True)
class BuiltDeb:
    name: str
    version: str
    arch: str
    source: str
    path: Path  # below the repository's staging directory


@dataclass
class _Key:
    home: Path
    fingerprint: str
    keyring: Path


def _run(cmd: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(list(cmd), capture_output=True, check=False, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return proc


def _make_key(label: str) -> _Key:
    # A short home: gpg-agent's socket path must fit in sun_path (108 bytes).
    home = Path(tempfile.mkdtemp(prefix="pl-gpg-"))
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    _run(
        [
            "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
            "--quick-gen-key", f"patchline test {label} <{label}@example.invalid>", "ed25519", "sign", "1d",
        ],
        env=env,
    )  # fmt: skip
    out = _run(["gpg", "--batch", "--with-colons", "--list-keys"], env=env).stdout.decode()
    fingerprint = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))
    keyring = home / "public.gpg"
    keyring.write_bytes(_run(["gpg", "--batch", "--export", fingerprint], env=env).stdout)
    return _Key(home, fingerprint, keyring)


def _kill_agent(key: _Key) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            ["gpgconf", "--kill", "gpg-agent"],
            env={**os.environ, "GNUPGHOME": str(key.home)},
            capture_output=True,
            check=False,
            timeout=30,
        )
    shutil.rmtree(key.home, ignore_errors=True)


@dataclass
class AptRepo:
    """A flat apt repository below ``root``: ``dists/SUITE/...`` and ``pool/SUITE/...``."""

    root: Path
    component: str = "main"
    arch: str = "amd64"
    url: str = ""  # set once served
    _debs: list[BuiltDeb] = field(default_factory=list)
    _history: dict[str, list[tuple[str, str, tuple[str, ...]]]] = field(default_factory=dict)
    _keys: dict[str, _Key] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = None

    # --- keys ---------------------------------------------------------------------------------------------------

    def _key(self, which: str = "main") -> _Key:
        if which not in self._keys:
            self._keys[which] = _make_key(which)
        return self._keys[which]

    @property
    def keyring(self) -> Path:
        """The binary public keyring (``gpg --export``) that verifies this repository."""
        return self._key().keyring

    def other_keyring(self) -> Path:
        """The public keyring of a second key, which does not sign this repository."""
        return self._key("other").keyring

    # --- packages -------------------------------------------------------------------------------------------------

    def add(
        self,
        name: str,
        version: str,
        *,
        source: str | None = None,
        arch: str | None = None,
        depends: str = "",
        pre_depends: str = "",
        breaks: str = "",
        conflicts: str = "",
        provides: str = "",
        changelog_cves: Sequence[str] = (),
        urgency: str = "medium",
        doc_symlink_to: str | None = None,
        no_changelog: bool = False,
    ) -> BuiltDeb:
        """Build ``NAME_VERSION_ARCH.deb`` with ``dpkg-deb --build``.

        Its changelog has one entry for this version naming ``changelog_cves``
        plus the entries of every earlier ``add`` of the same source.
        ``doc_symlink_to`` makes ``usr/share/doc/NAME`` a symlink to that
        package's doc directory (no changelog of its own), as many library
        packages of a multi-binary source do.
        """
        source = source or name
        arch = arch or self.arch
        history = self._history.setdefault(source, [])
        if not any(v == version for v, _, _ in history):
            history.append((version, urgency, tuple(changelog_cves)))
        build = Path(tempfile.mkdtemp(dir=self.root, prefix=".build-"))
        try:
            control = build / "DEBIAN" / "control"
            control.parent.mkdir(parents=True)
            fields = {
                "Package": name,
                "Version": version,
                "Architecture": arch,
                "Maintainer": "patchline tests <tests@example.invalid>",
                "Source": source if source != name else "",
                "Depends": depends,
                "Pre-Depends": pre_depends,
                "Breaks": breaks,
                "Conflicts": conflicts,
                "Provides": provides,
                "Description": f"test package {name}\n fixture of tests/support/aptrepo.py",
            }
            control.write_text("".join(f"{k}: {v}\n" for k, v in fields.items() if v))
            doc = build / "usr" / "share" / "doc" / name
            if doc_symlink_to is not None:
                doc.parent.mkdir(parents=True)
                doc.symlink_to(doc_symlink_to)
            else:
                doc.mkdir(parents=True)
                (doc / "copyright").write_text("public domain test fixture\n")
                if not no_changelog:
                    (doc / "changelog.Debian.gz").write_bytes(
                        gzip.compress(self._changelog(source, version).encode(), mtime=0)
                    )
            staging = self.root / "debs"
            staging.mkdir(exist_ok=True)
            out = staging / f"{name}_{version.replace(':', '%3a')}_{arch}.deb"
            _run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(build), str(out)])
        finally:
            shutil.rmtree(build, ignore_errors=True)
        deb = BuiltDeb(name, version, arch, source, out)
        self._debs = [d for d in self._debs if (d.name, d.version, d.arch) != (name, version, arch)] + [deb]
        return deb

    def _changelog(self, source: str, upto: str) -> str:
        from debian.debian_support import Version

        entries = sorted(
            (e for e in self._history[source] if Version(e[0]) <= Version(upto)),
            key=lambda e: Version(e[0]),
            reverse=True,
        )
        blocks = []
        for version, urgency, cves in entries:
            changes = "\n".join(f"  * Fix {cve}: test vulnerability." for cve in cves) or "  * Routine update."
            blocks.append(
                f"{source} ({version}) stable-security; urgency={urgency}\n\n{changes}\n\n"
                " -- patchline tests <tests@example.invalid>  Mon, 01 Jan 2024 00:00:00 +0000\n"
            )
        return "\n".join(blocks)

    # --- publishing ---------------------------------------------------------------------------------------------

    def publish(
        self,
        suite: str,
        *,
        only: Sequence[str] | None = None,
        codename: str | None = None,
        sign: Literal["main", "other", "none"] = "main",
        valid_until: datetime | None = None,
        components: Sequence[str] | None = None,
        origin: str = "patchline-tests",
    ) -> Path:
        """(Re)write ``dists/SUITE`` from the debs added so far (or those named in ``only``).

        ``sign="other"`` signs with a key that :attr:`keyring` does not hold;
        ``sign="none"`` writes only ``Release``. ``components`` is what the
        Release's ``Components`` field lists (default: the one component). ``origin`` is the Release's
        ``Origin`` and ``Label`` (``Ubuntu`` lays a suite out like one of Ubuntu's pockets).
        Returns the suite's ``dists`` directory.
        """
        pool = self.root / "pool" / suite
        shutil.rmtree(pool, ignore_errors=True)
        pool.mkdir(parents=True)
        for deb in self._debs:
            if only is None or deb.name in only or f"{deb.name}={deb.version}" in only:
                shutil.copy2(deb.path, pool / deb.path.name)
        dists = self.root / "dists" / suite
        shutil.rmtree(dists, ignore_errors=True)
        binary = dists / self.component / f"binary-{self.arch}"
        binary.mkdir(parents=True)
        packages = _run(["apt-ftparchive", "packages", f"pool/{suite}"], cwd=self.root).stdout
        (binary / "Packages").write_bytes(packages)
        _run(["xz", "-k", "-9", str(binary / "Packages")])
        _run(["gzip", "-k", "-9", "-n", str(binary / "Packages")])
        conf = [
            f"-oAPT::FTPArchive::Release::Suite={suite}",
            f"-oAPT::FTPArchive::Release::Codename={codename or suite}",
            f"-oAPT::FTPArchive::Release::Origin={origin}",
            f"-oAPT::FTPArchive::Release::Label={origin}",
            f"-oAPT::FTPArchive::Release::Architectures={self.arch}",
            f"-oAPT::FTPArchive::Release::Components={' '.join(components or [self.component])}",
        ]
        release = _run(["apt-ftparchive", *conf, "release", "."], cwd=dists).stdout.decode()
        if valid_until is not None:
            stamp = valid_until.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S UTC")
            release = release.replace("\nDate:", f"\nValid-Until: {stamp}\nDate:", 1)
        (dists / "Release").write_text(release)
        if sign != "none":
            key = self._key(sign)
            env = {**os.environ, "GNUPGHOME": str(key.home)}
            base = ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "", "-u", key.fingerprint]
            _run([*base, "--clearsign", "-o", str(dists / "InRelease"), str(dists / "Release")], env=env)
            _run([*base, "--detach-sign", "-o", str(dists / "Release.gpg"), str(dists / "Release")], env=env)
        return dists

    def packages_path(self, suite: str, name: str = "Packages.xz") -> Path:
        return self.root / "dists" / suite / self.component / f"binary-{self.arch}" / name

    # --- serving ----------------------------------------------------------------------------------------------------

    def serve(self) -> str:
        """Serve ``root`` on 127.0.0.1 (a free port) from a thread; returns the URL."""
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, name="apt-repo-http", daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.url

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for key in self._keys.values():
            _kill_agent(key)
        self._keys.clear()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def apt_repo_factory(tmp_path: Path) -> Iterator[Callable[[], AptRepo]]:
    """Make served :class:`AptRepo` instances; all are closed at the end of the test."""
    missing = missing_apt_tools()
    if missing:
        pytest.skip(f"a local apt repository needs {', '.join(missing)} (apt-get install dpkg-dev apt-utils gnupg)")
    repos: list[AptRepo] = []

    def make() -> AptRepo:
        root = tmp_path / f"aptrepo{len(repos)}"
        root.mkdir()
        repo = AptRepo(root)
        repo.serve()
        repos.append(repo)
        return repo

    yield make
    for repo in repos:
        repo.close()


@pytest.fixture
def apt_repo(apt_repo_factory: Callable[[], AptRepo]) -> AptRepo:
    """One served, empty :class:`AptRepo`; ``add()`` packages, then ``publish(suite)``."""
    return apt_repo_factory()
