"""Events from the outbox to a real RabbitMQ node (private, on loopback) and a real webhook server.

Every test uses an exchange of its own on the session's node, so what one consumer sees is what that test
published. The consumers are real pika clients (tests/support/rabbitmq.py); the CloudEvents SDK reads the
bodies, as a subscriber would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloudevents.core.bindings.rabbitmq import RabbitMQMessage, from_rabbitmq_event

from patchline.events._amqp import AmqpPublisher
from patchline.events._deliver import deliver, run_forever
from patchline.events.interface import EventDraft, EventType
from patchline.store import Store, open_store
from tests.support.rabbitmq import AmqpConsumer, Received, RunningRabbitMQ, WebhookReceiver

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
SOURCE = "/patchline/integration"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def exchange() -> str:
    return f"patchline-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path}/patchline.db") as opened:
        yield opened


@pytest.fixture
def publisher(rabbitmq: RunningRabbitMQ, exchange: str) -> Iterator[AmqpPublisher]:
    amqp = AmqpPublisher(rabbitmq.url, exchange=exchange, source=SOURCE)
    yield amqp
    amqp.close()


def drafts(count: int, type_: EventType = EventType.IMAGE_REBUILT, *, tag: str = "") -> list[EventDraft]:
    return [EventDraft(type_, f"127.0.0.1:5000/app{tag}{n}@sha256:{n:064x}", {"n": n, "tag": tag})
            for n in range(count)]


def first_seen(ids: list[str | None]) -> list[str | None]:
    seen: set[str | None] = set()
    out = []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def assert_cloudevent(message: Received, *, event_id: str, seq: int, type_: str) -> None:
    props = message.properties
    assert message.message_id == event_id
    assert message.routing_key == "patchline." + type_
    assert props.content_type == "application/cloudevents+json"
    assert props.delivery_mode == 2
    assert props.app_id == "patchline"
    assert props.type == "io.patchline." + type_
    assert abs(props.timestamp - time.time()) < 600
    parsed = from_rabbitmq_event(RabbitMQMessage(headers={}, content_type=props.content_type, body=message.body))
    assert parsed.get_id() == event_id
    assert parsed.get_type() == "io.patchline." + type_
    assert parsed.get_source() == SOURCE
    assert parsed.get_extension("patchlineseq") == seq


def test_outbox_events_arrive_in_order_as_cloudevents(store: Store, rabbitmq: RunningRabbitMQ, exchange: str,
                                                      publisher: AmqpPublisher) -> None:
    with AmqpConsumer(rabbitmq.url, exchange=exchange) as consumer:
        store.emit(drafts(2) + drafts(1, EventType.ROLLOUT_STARTED))
        now = dt.datetime.now(dt.UTC)
        store.record_build(run_id="run-1", recipe="app", kind="recipe", status="built", target="127.0.0.1:5000/app",
                           started_at=now, finished_at=now, manifest_digest="sha256:" + "b" * 64,
                           events=[EventDraft(EventType.IMAGE_REBUILT, "127.0.0.1:5000/app@sha256:" + "b" * 64,
                                              {"old": "sha256:" + "a" * 64, "new": "sha256:" + "b" * 64})])
        store.emit(drafts(1, EventType.ROLLOUT_ROLLED_BACK))
        stored = store.events()
        assert len(stored) == 5

        report = deliver(store, [publisher], batch=2)
        assert report.ok and report.delivered == 5 and report.backlog == 0
        assert report.sinks[0].batches == 3
        messages = consumer.collect(5, timeout=10)
        assert len(consumer.settle(0.3)) == 5  # nothing twice

    assert [m.message_id for m in messages] == [e.event_id for e in stored]
    for message, event in zip(messages, stored, strict=True):
        assert_cloudevent(message, event_id=event.event_id, seq=event.seq, type_=event.type)
    assert [m.routing_key for m in messages] == ["patchline.image.rebuilt", "patchline.image.rebuilt",
                                                 "patchline.rollout.started", "patchline.image.rebuilt",
                                                 "patchline.rollout.rolled_back"]
    assert messages[3].json()["data"] == {"old": "sha256:" + "a" * 64, "new": "sha256:" + "b" * 64}
    assert store.sink("amqp").delivered_seq == stored[-1].seq


def test_topic_bindings_select_by_routing_key(sqlite_store: Store, rabbitmq: RunningRabbitMQ, exchange: str,
                                              publisher: AmqpPublisher) -> None:
    with AmqpConsumer(rabbitmq.url, exchange=exchange, binding="patchline.rollout.*") as rollouts:
        sqlite_store.emit(drafts(2) + drafts(2, EventType.ROLLOUT_ROLLED_BACK))
        assert deliver(sqlite_store, [publisher]).ok
        got = rollouts.settle(0.3)
    assert [m.routing_key for m in got] == ["patchline.rollout.rolled_back"] * 2


def test_broker_stopped_between_deliveries(sqlite_store: Store, rabbitmq: RunningRabbitMQ, exchange: str,
                                           publisher: AmqpPublisher) -> None:
    store = sqlite_store
    # A durable queue: it and its messages outlive stop_app, and the consumer reconnects after start_app.
    with AmqpConsumer(rabbitmq.url, exchange=exchange, queue=f"q-{exchange}") as consumer:
        ids = store.emit(drafts(5, tag="a"))
        assert deliver(store, [publisher]).ok
        consumer.collect(5, timeout=10)
        rabbitmq.stop_app()
        try:
            ids += store.emit(drafts(5, EventType.ROLLOUT_FAILED, tag="b"))
            failed = deliver(store, [publisher])
            (sink,) = failed.sinks
            assert sink.failed and not failed.ok
            assert sink.error.startswith(f"AMQP 127.0.0.1:{rabbitmq.port}: ")
            assert (sink.backlog, sink.attempts, sink.delivered) == (5, 1, 0)
            assert [e.event_id for e in store.undelivered("amqp")] == ids[5:]
        finally:
            rabbitmq.start_app()
        after = deliver(store, [publisher], now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
        assert after.ok and after.sinks[0].delivered == 5 and after.backlog == 0
        consumer.collect(10, timeout=20)
        got = [m.message_id for m in consumer.settle(0.3)]
    assert first_seen(got) == ids
    assert set(got) == set(ids)


def test_broker_stopped_while_delivering_continuously(sqlite_store: Store, rabbitmq: RunningRabbitMQ,
                                                      exchange: str, publisher: AmqpPublisher) -> None:
    store = sqlite_store
    stop = threading.Event()
    worker = threading.Thread(target=run_forever, args=(store, [publisher]),
                              kwargs={"stop": stop, "poll": 0.05, "batch": 7, "max_backoff": 0.5})
    ids: list[str] = []
    with AmqpConsumer(rabbitmq.url, exchange=exchange, queue=f"q-{exchange}") as consumer:
        worker.start()
        try:
            for n in range(40):
                ids += store.emit(drafts(3, tag=f"{n}-"))
                if n == 10:
                    consumer.collect(9, timeout=10)
                    rabbitmq.stop_app()  # while events keep coming and the worker keeps sending
                if n == 30:
                    deadline = time.monotonic() + 10
                    while store.sink("amqp").attempts == 0 and time.monotonic() < deadline:
                        time.sleep(0.05)
                    assert store.sink("amqp").attempts > 0, "no delivery failed while the broker was stopped"
                    assert store.sink("amqp").backlog > 0
                    rabbitmq.start_app()
                time.sleep(0.01)
            deadline = time.monotonic() + 30
            while store.sink("amqp").backlog and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            if store.sink("amqp").attempts and not rabbitmq.accepts_logins():
                rabbitmq.start_app()
            stop.set()
            worker.join(timeout=30)
        assert store.sink("amqp").backlog == 0
        consumer.collect(len(ids), timeout=20)
        got = [m.message_id for m in consumer.settle(0.5)]
    assert first_seen(got) == ids  # every event, in order; any duplicate repeats an earlier ID
    assert set(got) == set(ids)


CRASH_AFTER_PUBLISH = textwrap.dedent("""
    import os, signal, sys
    from patchline.events._amqp import AmqpPublisher
    from patchline.store import open_store

    url, store_url, exchange, source = sys.argv[1:]
    with open_store(store_url) as store:
        events = store.undelivered("amqp")
        AmqpPublisher(url, exchange=exchange, source=source).publish(events)  # confirmed by the broker
        print(len(events), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # before mark_delivered: as a crash would
""")


def test_crash_between_publish_and_mark_delivered(sqlite_store: Store, rabbitmq: RunningRabbitMQ, exchange: str,
                                                  publisher: AmqpPublisher) -> None:
    store = sqlite_store
    with AmqpConsumer(rabbitmq.url, exchange=exchange) as consumer:
        ids = store.emit(drafts(6))
        crashed = subprocess.run([sys.executable, "-c", CRASH_AFTER_PUBLISH, rabbitmq.url,
                                  store.engine.url.render_as_string(hide_password=False), exchange, SOURCE],
                                 capture_output=True, text=True, timeout=60, check=False)
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        assert crashed.stdout.strip() == "6"
        assert store.sink("amqp").delivered_seq == 0 and store.sink("amqp").backlog == 6

        report = deliver(store, [publisher])  # the restarted deliverer sends the batch again
        assert report.ok and report.sinks[0].delivered == 6
        consumer.collect(12, timeout=10)
        got = consumer.settle(0.3)
    assert [m.message_id for m in got] == ids + ids  # duplicates carry the same IDs; none lost
    assert [m.body for m in got[:6]] == [m.body for m in got[6:]]  # byte for byte the same event


WRITE_EVENTS = textwrap.dedent("""
    import datetime as dt, sys
    from patchline.events.interface import EventDraft, EventType
    from patchline.store import open_store

    store_url, tag = sys.argv[1:]
    now = dt.datetime.now(dt.UTC)
    with open_store(store_url) as store:
        store.record_build(run_id="run-" + tag, recipe="app", kind="recipe", status="built",
                           target="127.0.0.1:5000/app", started_at=now, finished_at=now,
                           events=[EventDraft(EventType.IMAGE_REBUILT, "127.0.0.1:5000/app@" + tag, {"tag": tag})])
        store.emit([EventDraft(EventType.ROLLOUT_SUCCEEDED, "app", {"tag": tag})])
""")


def patchline(*args: str, config: Path, env: dict[str, str] | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "patchline"), "-c", str(config), *args], capture_output=True, text=True,
                          timeout=timeout, check=False, env={**os.environ, **(env or {})}, cwd=config.parent)


def test_a_new_process_delivers_what_an_earlier_one_wrote(store_url: str, tmp_path: Path,
                                                         rabbitmq: RunningRabbitMQ, exchange: str) -> None:
    config = tmp_path / "patchline.toml"
    config.write_text(f'[events]\namqp_url = "{rabbitmq.url}"\nexchange = "{exchange}"\nsource = "{SOURCE}"\n')
    with AmqpConsumer(rabbitmq.url, exchange=exchange) as consumer:
        for round_ in ("one", "two"):
            wrote = subprocess.run([sys.executable, "-c", WRITE_EVENTS, store_url, round_], capture_output=True,
                                   text=True, timeout=120, check=False)
            assert wrote.returncode == 0, wrote.stderr
            delivered = patchline("events", "deliver", "--db", store_url, "--json", config=config)
            assert delivered.returncode == 0, delivered.stdout + delivered.stderr
            doc = json.loads(delivered.stdout)
            # Each process sends only what the store's cursor says is new: nothing twice across restarts.
            assert (doc["ok"], doc["delivered"], doc["backlog"]) == (True, 2, 0)
        got = consumer.collect(4, timeout=10)
        assert len(consumer.settle(0.3)) == 4
    with open_store(store_url) as store:
        stored = store.events()
    assert [m.message_id for m in got] == [e.event_id for e in stored]
    assert [m.json()["data"]["tag"] for m in got] == ["one", "one", "two", "two"]
    for message, event in zip(got, stored, strict=True):
        assert_cloudevent(message, event_id=event.event_id, seq=event.seq, type_=event.type)

    status = patchline("events", "status", "--db", store_url, "--json", config=config)
    assert status.returncode == 0, status.stderr
    (sink,) = json.loads(status.stdout)["sinks"]
    assert (sink["name"], sink["delivered_seq"], sink["backlog"]) == ("amqp", stored[-1].seq, 0)


def test_webhook_refusal_is_retried_while_amqp_goes_on(tmp_path: Path, rabbitmq: RunningRabbitMQ,
                                                       exchange: str) -> None:
    db = f"sqlite:///{tmp_path}/patchline.db"
    with open_store(db) as store:
        ids = store.emit(drafts(3) + drafts(1, EventType.ROLLOUT_SUCCEEDED))
    with WebhookReceiver([500]) as receiver, AmqpConsumer(rabbitmq.url, exchange=exchange) as consumer:
        config = tmp_path / "patchline.toml"
        config.write_text(f'[events]\namqp_url = "{rabbitmq.url}"\nexchange = "{exchange}"\nsource = "{SOURCE}"\n'
                          f'[[events.webhooks]]\nurl = "{receiver.url}"\nsecret_env = "PATCHLINE_HOOK_SECRET"\n')
        first = patchline("events", "deliver", "--db", db, "--json", config=config,
                          env={"PATCHLINE_HOOK_SECRET": "shared-key"})
        assert first.returncode == 1, first.stdout + first.stderr  # the webhook sink is failing
        doc = json.loads(first.stdout)
        amqp, hook = doc["sinks"]
        assert (amqp["name"], amqp["delivered"], amqp["failed"]) == ("amqp", 4, False)
        assert (hook["failed"], hook["backlog"], hook["attempts"]) == (True, 4, 1)
        assert "HTTP 500" in hook["error"]
        assert [m.message_id for m in consumer.collect(4, timeout=10)] == ids

        # --wait honours the backoff (about 1 s), then the webhook accepts.
        second = patchline("events", "deliver", "--db", db, "--wait", "20", "--json", config=config,
                           env={"PATCHLINE_HOOK_SECRET": "shared-key"})
        assert second.returncode == 0, second.stdout + second.stderr
        assert json.loads(second.stdout)["sinks"][1]["delivered"] == 4
        assert len(consumer.settle(0.3)) == 4  # AMQP was not sent anything again

    assert [r.status for r in receiver.requests] == [500, 200, 200, 200, 200]
    assert receiver.requests[0].json()["id"] == ids[0]
    accepted = receiver.accepted()
    assert [r.json()["id"] for r in accepted] == ids
    for request in accepted:
        assert request.headers["content-type"] == "application/cloudevents+json"
        signed = f"{request.headers['x-patchline-id']}.{request.headers['x-patchline-timestamp']}.".encode()
        mac = hmac.new(b"shared-key", signed + request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["x-patchline-signature"], "sha256=" + mac)
        assert request.json()["source"] == SOURCE
