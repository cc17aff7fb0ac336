"""A real RabbitMQ for tests: a private node on loopback, started by the suite itself, and a consumer.

Fixtures (``tests/conftest.py`` lists this module in ``pytest_plugins``):

``rabbitmq``  (session) a :class:`RunningRabbitMQ`. By default a private node: Debian's
              ``rabbitmq-server`` run directly (not the ``/usr/sbin`` wrapper, which switches
              to the ``rabbitmq`` user and ``/var/lib/rabbitmq``) as ``patchline-test-<random>@localhost``
              with its AMQP listener on 127.0.0.1 and a free port, its own Erlang cookie (``HOME``),
              database, logs, pid file, configuration and an empty plugin list, all under
              ``/tmp/patchline-rabbitmq-<random>``: the system node, if any, is neither used nor
              touched. ``guest``/``guest`` logs in (RabbitMQ allows guest on loopback). Stopped
              (``rabbitmqctl stop``, then signals for anything left) and removed at session end.
              epmd (the Erlang port mapper, port 4369) is shared by every node of the machine and
              left running. With ``PATCHLINE_TEST_AMQP_URL`` set, that broker is used instead and
              nothing is started (``stop_app``/``start_app`` then skip the test).

:class:`AmqpConsumer` binds a queue to an exchange and collects what arrives (``with
AmqpConsumer(rabbitmq.url) as consumer: ...; consumer.collect(10, timeout=5)``).

:class:`WebhookReceiver` is the other event sink's real counterpart: a loopback ``http.server`` that keeps
every request and answers with the statuses a test scripts (it lives here so that the event and rollout
tests share one module of event receivers).

:func:`start_rabbitmq` is the fixture's start logic as a context manager for ``bench/``; it raises
:class:`RabbitMQUnavailable` (the fixture turns that into a skip with the reason).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.registry import free_port

__all__ = [
    "AMQP_URL_ENV",
    "AmqpConsumer",
    "RabbitMQUnavailable",
    "Received",
    "RunningRabbitMQ",
    "WebhookReceiver",
    "WebhookRequest",
    "amqp_connect",
    "find_rabbitmq",
    "rabbitmq",
    "start_rabbitmq",
]

AMQP_URL_ENV = "PATCHLINE_TEST_AMQP_URL"
SETUP_HINT = "scripts/setup-host.sh installs rabbitmq-server"
START_TIMEOUT = 60.0
DEBIAN_BIN = Path("/usr/lib/rabbitmq/bin")  # the real scripts behind Debian's /usr/sbin wrappers


class RabbitMQUnavailable(RuntimeError):
    """RabbitMQ cannot be started here; the message says why."""


def find_rabbitmq() -> tuple[Path, Path] | None:
    """``(rabbitmq-server, rabbitmqctl)``: Debian's real scripts, else the ones on PATH."""
    if (DEBIAN_BIN / "rabbitmq-server").is_file() and (DEBIAN_BIN / "rabbitmqctl").is_file():
        return DEBIAN_BIN / "rabbitmq-server", DEBIAN_BIN / "rabbitmqctl"
    server, ctl = shutil.which("rabbitmq-server"), shutil.which("rabbitmqctl")
    if server and ctl:
        return Path(server), Path(ctl)
    return None


def amqp_connect(url: str, *, timeout: float = 5.0) -> Any:
    """A pika ``BlockingConnection`` (one attempt)."""
    import pika

    params = pika.URLParameters(url)
    params.socket_timeout = timeout
    params.stack_timeout = timeout
    params.connection_attempts = 1
    return pika.BlockingConnection(params)


@dataclass
class RunningRabbitMQ:
    """A broker reachable at ``url``; ``node`` is ``None`` for an external one (``PATCHLINE_TEST_AMQP_URL``)."""

    url: str
    host: str
    port: int
    node: str | None = None
    workdir: Path | None = None
    ctl_bin: Path | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False)
    started_at: float = 0.0  # time.time() when the node was started
    startup_seconds: float = 0.0  # until it accepted an AMQP login
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def external(self) -> bool:
        return self.node is None

    def log_tail(self, lines: int = 30) -> str:
        if self.workdir is None:
            return ""
        texts = []
        for log in [self.workdir / "server.out", *sorted((self.workdir / "log").glob("*.log"))]:
            with contextlib.suppress(OSError):
                texts.append(f"== {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(texts)

    def ctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``rabbitmqctl -n NODE ARGS`` for the private node; raises with its output when it fails."""
        if self.node is None or self.ctl_bin is None:
            pytest.skip(f"rabbitmqctl {' '.join(args)}: not done to the external broker of {AMQP_URL_ENV}")
        result = subprocess.run([str(self.ctl_bin), "-n", self.node, "-q", *args], env=self.env,
                                cwd=self.workdir, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed ({result.returncode}): "
                               f"{(result.stdout + result.stderr).strip()}")
        return result

    def accepts_logins(self) -> bool:
        try:
            amqp_connect(self.url, timeout=2).close()
        except Exception:
            return False
        return True

    def wait_for_login(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.accepts_logins():
                return
            if self.process is not None and self.process.poll() is not None:
                raise RabbitMQUnavailable(f"rabbitmq-server exited ({self.process.returncode}):\n{self.log_tail()}")
            time.sleep(0.2)
        raise RabbitMQUnavailable(f"RabbitMQ did not accept an AMQP login on {self.host}:{self.port} within "
                                  f"{timeout:.0f} s:\n{self.log_tail()}")

    def stop_app(self) -> None:
        """Stop the RabbitMQ application (the Erlang node stays): every connection is closed, the AMQP
        listener too, so publishing fails with "connection refused"; durable queues keep their messages."""
        self.ctl("stop_app")

    def start_app(self) -> None:
        """Start the application again and wait until it accepts logins."""
        self.ctl("start_app")
        self.wait_for_login()

    def stop(self) -> None:
        """Stop the node; whatever is left of it is signalled (TERM, then KILL)."""
        if self.node is None:
            return
        proc = self.process
        if proc is None or proc.poll() is None:
            with contextlib.suppress(Exception):
                self.ctl("stop", timeout=30)
        if proc is not None:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, sig)  # the session we started it in: script and beam.smp
                    try:
                        proc.wait(timeout=10)
                        break
                    except subprocess.TimeoutExpired:
                        continue
        pid_file = self.workdir / "rabbit.pid" if self.workdir else None
        if pid_file is not None and pid_file.is_file():  # beam.smp outlived its script
            with contextlib.suppress(ValueError, ProcessLookupError, OSError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)


def _node_env(workdir: Path, *, node: str, port: int, dist_port: int) -> dict[str, str]:
    (workdir / "enabled_plugins").write_text("[].\n")
    (workdir / "rabbitmq-env.conf").write_text("# empty: keeps /etc/rabbitmq/rabbitmq-env.conf out\n")
    (workdir / "rabbitmq.conf").write_text(
        f"listeners.tcp.1 = 127.0.0.1:{port}\n"
        "log.console = false\n"
        "log.file.level = info\n"
        # A test machine's disk may be fuller than the default limit allows.
        "disk_free_limit.absolute = 10MB\n")
    return {
        **os.environ,
        "HOME": str(workdir),  # the Erlang cookie: $HOME/.erlang.cookie, shared with rabbitmqctl
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
        "RABBITMQ_LOG_BASE": str(workdir / "log"),
        "RABBITMQ_PID_FILE": str(workdir / "rabbit.pid"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
        "RABBITMQ_PLUGINS_EXPAND_DIR": str(workdir / "plugins-expand"),
        "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(workdir / "advanced.config"),  # absent: none
        "RABBITMQ_CONF_ENV_FILE": str(workdir / "rabbitmq-env.conf"),
        # Erlang distribution (what rabbitmqctl talks to) on loopback only.
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "ERL_EPMD_ADDRESS": "127.0.0.1",  # used only if this node is the one that starts epmd
    }


@contextlib.contextmanager
def start_rabbitmq() -> Iterator[RunningRabbitMQ]:
    """Run a private node until the block ends; :class:`RabbitMQUnavailable` says why it cannot start."""
    found = find_rabbitmq()
    if found is None:
        raise RabbitMQUnavailable(f"rabbitmq-server is not installed ({SETUP_HINT})")
    server_bin, ctl_bin = found
    if shutil.which("erl") is None and not Path("/usr/lib/erlang/bin/erl").exists():
        raise RabbitMQUnavailable(f"Erlang (erl) is not installed ({SETUP_HINT})")
    workdir = Path(tempfile.mkdtemp(prefix="patchline-rabbitmq-", dir="/tmp"))
    broker: RunningRabbitMQ | None = None
    try:
        node = f"patchline-test-{secrets.token_hex(4)}@localhost"
        last = ""
        for _attempt in range(3):  # a free port can be taken before the node binds it
            port, dist_port = free_port(), free_port()
            env = _node_env(workdir, node=node, port=port, dist_port=dist_port)
            out = (workdir / "server.out").open("ab")
            started = time.monotonic()
            broker = RunningRabbitMQ(url=f"amqp://guest:guest@127.0.0.1:{port}/%2F", host="127.0.0.1", port=port,
                                     node=node, workdir=workdir, ctl_bin=ctl_bin, env=env, started_at=time.time())
            broker.process = subprocess.Popen([str(server_bin)], env=env, cwd=workdir, stdin=subprocess.DEVNULL,
                                              stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            out.close()
            try:
                broker.wait_for_login()
            except RabbitMQUnavailable as exc:
                last = str(exc)
                broker.stop()
                if "eaddrinuse" in last.lower() or "address already in use" in last.lower():
                    continue
                raise
            broker.startup_seconds = time.monotonic() - started
            break
        else:
            raise RabbitMQUnavailable(f"RabbitMQ could not bind a port: {last[-2000:]}")
        yield broker
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _external(url: str) -> RunningRabbitMQ:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("amqp", "amqps"):
        raise pytest.UsageError(f"{AMQP_URL_ENV} must be an amqp:// URL, not {url!r}")
    return RunningRabbitMQ(url=url, host=parsed.hostname or "127.0.0.1", port=parsed.port or 5672)


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RunningRabbitMQ]:
    url = os.environ.get(AMQP_URL_ENV)
    if url:
        broker = _external(url)
        if not broker.accepts_logins():
            pytest.skip(f"{AMQP_URL_ENV} broker is not reachable")
        yield broker
        return
    try:
        with start_rabbitmq() as broker:
            yield broker
    except RabbitMQUnavailable as exc:
        pytest.skip(f"RabbitMQ: {exc}")


@dataclass(frozen=True)
class Received:
    """One message as a consumer got it."""

    routing_key: str
    message_id: str | None
    body: bytes
    properties: Any  # pika.BasicProperties
    redelivered: bool

    def json(self) -> Any:
        return json.loads(self.body)


class AmqpConsumer:
    """A real pika consumer of ``exchange``: its queue is bound with ``binding`` and every message is kept.

    Without ``queue``, an exclusive server-named queue (gone with the connection). With ``queue``, a durable
    named queue: it and its messages survive ``stop_app``/``start_app``, and :meth:`collect` reconnects, so a
    test can watch across a broker outage. ``delete()`` removes the named queue.
    """

    def __init__(self, url: str, *, exchange: str = "patchline", binding: str = "patchline.#",
                 queue: str | None = None) -> None:
        self.url = url
        self.exchange = exchange
        self.binding = binding
        self.durable = queue is not None
        self.queue = queue or ""
        self.messages: list[Received] = []
        self._conn: Any = None
        self._channel: Any = None
        self._connect()

    def _connect(self) -> None:
        conn = amqp_connect(self.url)
        channel = conn.channel()
        # The same declaration as the publisher's, so whichever comes first creates it.
        channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        result = channel.queue_declare(self.queue, durable=self.durable, exclusive=not self.durable,
                                       auto_delete=False)
        self.queue = result.method.queue
        channel.queue_bind(self.queue, self.exchange, routing_key=self.binding)
        # Acknowledged one by one once kept: with auto_ack the broker forgets a message when it writes it to
        # the socket, and one that arrives as the broker closes the connection would be lost here.
        channel.basic_consume(self.queue, self._on_message, auto_ack=False)
        self._conn, self._channel = conn, channel

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self.messages.append(Received(method.routing_key, properties.message_id, body, properties,
                                      bool(method.redelivered)))
        channel.basic_ack(method.delivery_tag)

    def _pump(self, seconds: float) -> None:
        import pika.exceptions

        try:
            if self._conn is None:
                self._connect()
            self._conn.process_data_events(time_limit=seconds)
        except (pika.exceptions.AMQPError, OSError):
            if not self.durable:
                raise
            self._conn = None  # the broker went away: try again on the next round
            time.sleep(seconds)

    def collect(self, count: int, *, timeout: float = 10.0) -> list[Received]:
        """Wait until at least ``count`` messages have arrived in all (or ``timeout``); returns all so far."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            self._pump(min(0.1, max(0.0, deadline - time.monotonic())))
        return list(self.messages)

    def settle(self, quiet: float = 0.5, *, timeout: float = 10.0) -> list[Received]:
        """Collect until nothing has arrived for ``quiet`` seconds (to see duplicates a test did not expect)."""
        deadline = time.monotonic() + timeout
        seen, since = len(self.messages), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < quiet:
            self._pump(0.05)
            if len(self.messages) != seen:
                seen, since = len(self.messages), time.monotonic()
        return list(self.messages)

    def ids(self) -> list[str | None]:
        return [m.message_id for m in self.messages]

    def delete(self) -> None:
        """Delete the queue (a durable one outlives the consumer otherwise)."""
        with contextlib.suppress(Exception):
            if self._conn is None:
                self._connect()
            self._channel.queue_delete(self.queue)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._conn is not None and self._conn.is_open:
                self._conn.close()
        self._conn = None

    def __enter__(self) -> AmqpConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.durable:
            self.delete()
        self.close()


@dataclass(frozen=True)
class WebhookRequest:
    """One POST as the receiver got it, with the status it answered."""

    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 (a free port) that records every request.

    ``statuses`` are answered in turn, then ``200`` for good: ``WebhookReceiver([500])`` fails the first
    request only. ``url`` is ``http://127.0.0.1:PORT/hook``.
    """

    def __init__(self, statuses: Iterable[int] = ()) -> None:
        self._statuses = list(statuses)
        self._lock = threading.Lock()
        self.requests: list[WebhookRequest] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = receiver._statuses.pop(0) if receiver._statuses else 200
                    receiver.requests.append(WebhookRequest(self.path, {k.lower(): v for k, v in
                                                                        self.headers.items()}, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        # A short poll interval: shutdown() waits for it, once per test.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="webhook-receiver", daemon=True)
        self._thread.start()

    def accepted(self) -> list[WebhookRequest]:
        """The requests answered with a 2xx status."""
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
