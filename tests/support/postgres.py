"""A real PostgreSQL for tests: a private cluster on loopback, started by the suite itself.

Fixtures (``tests/conftest.py`` lists this module in ``pytest_plugins``):

``postgres_server``  (session) a :class:`RunningPostgres`. By default a private cluster:
                     Debian's server binaries (``/usr/lib/postgresql/<newest>/bin``),
                     ``initdb`` into ``/tmp/patchline-pg-<random>`` (as the ``postgres``
                     user when we are root), superuser ``patchline`` with a password
                     (scram-sha-256) on TCP 127.0.0.1 only, a free port, the Unix socket
                     inside the data directory, fsync off. Debian's own cluster (15/main)
                     is neither used nor touched. Stopped and removed at session end.
                     With ``PATCHLINE_TEST_POSTGRES_URL`` set (an admin URL of an existing
                     server, e.g. ``postgresql://user:pw@host:5432/postgres``) that server
                     is used instead and nothing is started.
``postgres_db``      the SQLAlchemy URL of a fresh, empty database, dropped afterwards
                     (``DROP DATABASE ... WITH (FORCE)``).
``store_url``        parametrized ``sqlite`` / ``postgresql``: a SQLite file in ``tmp_path``,
                     or ``postgres_db``. Only the ``postgresql`` case starts PostgreSQL.

The fixtures skip, saying why, when the server binaries are missing or the cluster
cannot start.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.registry import free_port

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "POSTGRES_URL_ENV",
    "POSTGRES_USER",
    "RunningPostgres",
    "find_server_bin",
    "postgres_db",
    "postgres_server",
    "start_postgres",
    "store_url",
]

POSTGRES_URL_ENV = "PATCHLINE_TEST_POSTGRES_URL"
POSTGRES_USER = "patchline"
SETUP_HINT = "scripts/setup-host.sh installs postgresql"
START_TIMEOUT = 30.0
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "password_encryption": "scram-sha-256",
}


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.parent.name.split("."))


def find_server_bin() -> Path | None:
    """The ``bin`` directory of the newest PostgreSQL under ``/usr/lib/postgresql``."""
    candidates = [
        path for path in Path("/usr/lib/postgresql").glob("*/bin")
        if re.fullmatch(r"\d+(\.\d+)*", path.parent.name)
        and (path / "initdb").is_file() and (path / "pg_ctl").is_file() and (path / "postgres").is_file()
    ]
    return max(candidates, key=_version_key) if candidates else None


@dataclass
class RunningPostgres:
    """A PostgreSQL server reachable as superuser ``user`` over TCP.

    ``datadir`` is ``None`` for an external server (``PATCHLINE_TEST_POSTGRES_URL``);
    ``kill``/``stop``/``start`` act only on the private cluster.
    """

    port: int
    user: str
    password: str
    datadir: Path | None
    host: str = "127.0.0.1"
    admin_dbname: str = "postgres"
    bindir: Path | None = None
    workdir: Path | None = None
    run_as: str | None = None  # the system user the server runs as (when we are root)
    startup_seconds: float = 0.0  # initdb + start + first login, for the private cluster
    _databases: set[str] = field(default_factory=set, repr=False)

    @property
    def external(self) -> bool:
        return self.datadir is None

    def url(self, dbname: str) -> str:
        """``postgresql+psycopg://user:pw@host:PORT/dbname`` (user and password quoted)."""
        user = urllib.parse.quote(self.user, safe="")
        password = urllib.parse.quote(self.password, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql+psycopg://{user}:{password}@{host}:{self.port}/{dbname}"

    def connect(self, dbname: str | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
        """A psycopg connection (autocommit) to ``dbname`` (default: the admin database)."""
        import psycopg

        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, password=self.password,
            dbname=dbname or self.admin_dbname, autocommit=True, connect_timeout=5, **kwargs,
        )

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (default: a unique name) and return its URL."""
        from psycopg import sql

        name = name or f"patchline_test_{uuid.uuid4().hex[:12]}"
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._databases.add(name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """``DROP DATABASE IF EXISTS name WITH (FORCE)``: open sessions are terminated."""
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self._databases.discard(name)

    # ------------------------------------------------------------ private cluster only
    def _require_private(self, what: str) -> tuple[Path, Path]:
        if self.datadir is None or self.bindir is None:
            pytest.skip(f"{what}: not done to the external server of {POSTGRES_URL_ENV}")
        return self.datadir, self.bindir

    def _as_owner(self, *argv: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *argv] if self.run_as else list(argv)

    def log_tail(self, lines: int = 30) -> str:
        log = self.workdir / "server.log" if self.workdir else None
        if log is None or not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def postmaster_pid(self) -> int | None:
        if self.datadir is None:
            return None
        try:
            first = (self.datadir / "postmaster.pid").read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        return int(first) if first.strip().isdigit() else None

    def is_running(self) -> bool:
        if self.external:
            return True
        pid = self.postmaster_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def start(self) -> None:
        """Start the private cluster (again) on the same port and wait until it accepts logins."""
        datadir, bindir = self._require_private("start")
        if self.is_running():
            return
        assert self.workdir is not None
        command = self._as_owner(
            str(bindir / "pg_ctl"), "start", "-D", str(datadir), "-l", str(self.workdir / "server.log"),
            "-w", "-t", str(int(START_TIMEOUT)), "-s",
        )
        result = subprocess.run(
            command, cwd=self.workdir, capture_output=True, text=True, timeout=START_TIMEOUT + 10, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"pg_ctl start failed ({result.returncode}): {(result.stdout + result.stderr).strip()}\n"
                f"server log:\n{self.log_tail()}"
            )
        self._wait_for_login()

    def _wait_for_login(self) -> None:
        import psycopg

        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with self.connect() as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.1)
        raise RuntimeError(
            f"PostgreSQL did not accept logins on {self.host}:{self.port} within {START_TIMEOUT:.0f} s: {last}\n"
            f"server log:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """``pg_ctl stop -m fast`` (a no-op when it is not running)."""
        datadir, bindir = self._require_private("stop")
        if not self.is_running():
            return
        command = self._as_owner(str(bindir / "pg_ctl"), "stop", "-D", str(datadir), "-m", "fast", "-w", "-s")
        result = subprocess.run(command, cwd=self.workdir, capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0 and self.is_running():
            self.kill()

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would; ``start()`` brings it back (crash recovery)."""
        self._require_private("kill")
        pid = self.postmaster_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        # The backends notice the dead postmaster and exit by themselves; wait for the
        # port to be free so that start() can bind it again.
        while time.monotonic() < deadline and self._port_in_use():
            time.sleep(0.05)

    def _port_in_use(self) -> bool:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self.port))
            except OSError:
                return True
            return False


def _external_server(url: str) -> RunningPostgres:
    parsed = urllib.parse.urlsplit(url)
    if not parsed.scheme.startswith("postgres"):
        raise pytest.UsageError(f"{POSTGRES_URL_ENV} must be a postgresql:// URL, not {url!r}")
    return RunningPostgres(
        port=parsed.port or 5432,
        host=parsed.hostname or "127.0.0.1",
        user=urllib.parse.unquote(parsed.username or ""),
        password=urllib.parse.unquote(parsed.password or ""),
        datadir=None,
        admin_dbname=parsed.path.lstrip("/") or "postgres",
    )


def _tmp_base() -> Path:
    # As root the server runs as `postgres`, which must traverse every parent: pytest's
    # own base temp (and a root TMPDIR) may be 0700, so use /tmp, which is world-traversable.
    return Path("/tmp") if os.geteuid() == 0 else Path(tempfile.gettempdir())


@contextlib.contextmanager
def start_postgres() -> Iterator[RunningPostgres]:
    """Create and run a private cluster until the block ends; skip (saying why) when it cannot."""
    bindir = find_server_bin()
    if bindir is None:
        pytest.skip(f"PostgreSQL server binaries not installed under /usr/lib/postgresql ({SETUP_HINT})")
    run_as: str | None = None
    if os.geteuid() == 0:
        # initdb and postgres refuse to run as root.
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip(f"running as root and there is no `postgres` system user to run the server ({SETUP_HINT})")
        if shutil.which("runuser") is None:
            pytest.skip("running as root and runuser (util-linux) is missing: cannot run PostgreSQL as `postgres`")
        run_as = owner.pw_name

    workdir = Path(tempfile.mkdtemp(prefix="patchline-pg-", dir=_tmp_base()))
    server: RunningPostgres | None = None
    try:
        workdir.chmod(0o755)
        if run_as is not None:
            owner = pwd.getpwnam(run_as)
            os.chown(workdir, owner.pw_uid, owner.pw_gid)
        datadir = workdir / "data"
        password = secrets.token_urlsafe(18)
        pwfile = workdir / "pwfile"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o644)  # readable by `postgres`; removed right after initdb
        server = RunningPostgres(
            port=0, user=POSTGRES_USER, password=password, datadir=datadir,
            bindir=bindir, workdir=workdir, run_as=run_as,
        )
        started = time.monotonic()
        result = subprocess.run(
            server._as_owner(
                str(bindir / "initdb"), "-D", str(datadir), "-U", POSTGRES_USER, f"--pwfile={pwfile}",
                "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-locale",
                "--no-sync", "--no-instructions",
            ),
            cwd=workdir, capture_output=True, text=True, timeout=120, check=False,
        )
        pwfile.unlink()
        if result.returncode != 0:
            pytest.skip(f"PostgreSQL initdb ({bindir}) failed: {(result.stdout + result.stderr).strip()[-1500:]}")
        # Unix socket only inside the data directory (0700), TCP only on loopback; trust
        # applies to the socket, TCP logins need the password.
        _write_hba(datadir)
        last_error = ""
        for _attempt in range(3):  # a free port can be taken before the server binds it
            server.port = free_port()
            _write_settings(datadir, server.port)
            try:
                server.start()
            except RuntimeError as exc:
                last_error = str(exc)
                if server.is_running():
                    server.stop()
                if "could not bind" in last_error or "Address already in use" in last_error:
                    continue
                break
            else:
                break
        else:
            last_error = last_error or "no free port"
        if not server.is_running():
            pytest.skip(f"PostgreSQL ({bindir}) could not start: {last_error[-2500:]}")
        server.startup_seconds = time.monotonic() - started
        yield server
    finally:
        if server is not None:
            with contextlib.suppress(Exception):
                server.stop()
            if server.is_running():
                with contextlib.suppress(Exception):
                    server.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def _write_hba(datadir: Path) -> None:
    hba = datadir / "pg_hba.conf"
    hba.write_text(
        "# patchline test cluster\n"
        "local all all trust\n"
        "host  all all 127.0.0.1/32 scram-sha-256\n"
    )


def _write_settings(datadir: Path, port: int) -> None:
    settings = {**SERVER_SETTINGS, "port": str(port), "unix_socket_directories": str(datadir)}
    lines = [f"{key} = '{value}'" for key, value in settings.items()]
    (datadir / "postgresql.auto.conf").write_text(
        "# Written by tests/support/postgres.py\n" + "\n".join(lines) + "\n"
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[RunningPostgres]:
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        server = _external_server(url)
        try:
            with server.connect() as conn:
                conn.execute("SELECT 1")
        except Exception as exc:
            pytest.skip(f"{POSTGRES_URL_ENV} server is not reachable: {exc}")
        yield server
        return
    with start_postgres() as server:
        yield server


@pytest.fixture
def postgres_db(postgres_server: RunningPostgres) -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty database on ``postgres_server``."""
    if not postgres_server.is_running():
        postgres_server.start()  # an earlier test killed or stopped the session server
    name = f"patchline_test_{uuid.uuid4().hex[:12]}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        if postgres_server.is_running():
            postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL per backend: a SQLite file in ``tmp_path``, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/patchline.db"
    return str(request.getfixturevalue("postgres_db"))
