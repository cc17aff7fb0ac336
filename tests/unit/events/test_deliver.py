"""The deliverer: order, at-least-once, backoff; on a SQLite store and a real loopback webhook receiver."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchline._config import EventsConfig, WebhookConfig
from patchline.errors import ConfigError
from patchline.events._amqp import AmqpPublisher
from patchline.events._deliver import (
    backoff_seconds,
    deliver,
    deliver_until_empty,
    publishers_from_config,
    run_forever,
    sink_names,
)
from patchline.events._webhook import WebhookPublisher, legacy_webhook_sink, webhook_sink
from patchline.events.interface import EventDraft, EventType
from patchline.store import Store, open_store
from tests.support.rabbitmq import WebhookReceiver

SOURCE = "/patchline/test"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path}/patchline.db") as opened:
        yield opened


def emit(store: Store, count: int, type_: EventType = EventType.IMAGE_REBUILT, start: int = 0) -> list[str]:
    return store.emit([EventDraft(type_, f"localhost/app{n}@sha256:{n:064x}", {"n": n})
                       for n in range(start, start + count)])


def hook(receiver: WebhookReceiver, **options: object) -> WebhookPublisher:
    return WebhookPublisher(WebhookConfig(url=receiver.url, **options), source=SOURCE)  # type: ignore[arg-type]


def first_seen(ids: list[str]) -> list[str]:
    out: list[str] = []
    for i in ids:
        if i not in out:
            out.append(i)
    return out


# -- backoff -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("attempts", "seconds"), [(1, 1), (2, 2), (3, 4), (4, 8), (8, 128), (9, 256), (10, 300),
                                                  (11, 300), (10_000, 300)])
def test_backoff_doubles_up_to_the_cap(attempts: int, seconds: float) -> None:
    assert backoff_seconds(attempts, cap=300, rand=lambda: 0.0) == seconds
    assert backoff_seconds(attempts, cap=300, rand=lambda: 1.0) == pytest.approx(seconds * 0.9)


def test_backoff_jitter_only_shortens() -> None:
    delays = {backoff_seconds(3) for _ in range(200)}
    assert all(3.6 <= d <= 4.0 for d in delays)
    assert len(delays) > 1


def test_backoff_counts_from_one() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        backoff_seconds(0)


# -- configuration -------------------------------------------------------------------------------------------


def test_publishers_from_config() -> None:
    config = EventsConfig(amqp_url="amqp://guest:guest@127.0.0.1:5672/%2F", exchange="ex", source="/custom",
                          webhooks=(WebhookConfig(url="http://127.0.0.1:9/a"), WebhookConfig(url="http://127.0.0.1:9/b")))
    publishers = publishers_from_config(config)  # nothing connects yet
    assert [p.name for p in publishers] == ["amqp", webhook_sink("http://127.0.0.1:9/a"),
                                            webhook_sink("http://127.0.0.1:9/b")]
    assert [p.name for p in publishers] == sink_names(config)
    amqp = publishers[0]
    assert isinstance(amqp, AmqpPublisher)
    assert (amqp.exchange, amqp.source) == ("ex", "/custom")
    assert publishers_from_config(EventsConfig()) == []


def test_the_same_webhook_twice_is_refused() -> None:
    twice = (WebhookConfig(url="http://127.0.0.1:9/a"), WebhookConfig(url="http://127.0.0.1:9/a"))
    with pytest.raises(ConfigError, match="same webhook"):
        publishers_from_config(EventsConfig(webhooks=twice))


def test_no_sinks_is_refused(store: Store) -> None:
    with pytest.raises(ConfigError, match="no event sinks"):
        deliver(store, [])


# -- delivery ------------------------------------------------------------------------------------------------


def test_delivers_in_order_in_batches(store: Store) -> None:
    ids = emit(store, 7)
    with WebhookReceiver() as receiver:
        report = deliver(store, [hook(receiver)], batch=3)
        assert [r.json()["id"] for r in receiver.requests] == ids
    (sink,) = report.sinks
    assert (sink.delivered, sink.batches, sink.backlog, sink.failed, report.ok) == (7, 3, 0, False, True)
    assert store.sink(sink.name).delivered_seq == store.events()[-1].seq
    assert [r.json()["patchlineseq"] for r in receiver.requests] == [e.seq for e in store.events()]


def test_a_sink_named_before_names_were_redacted_keeps_its_cursor(store: Store) -> None:
    ids = emit(store, 5)
    with WebhookReceiver() as receiver:
        legacy = legacy_webhook_sink(receiver.url)
        store.mark_delivered(legacy, store.events()[2].seq)  # an older patchline delivered the first three
        report = deliver(store, [hook(receiver)])
        assert [r.json()["id"] for r in receiver.requests] == ids[3:]  # nothing twice, nothing lost
    assert [s.name for s in store.sinks()] == [webhook_sink(receiver.url)] == [report.sinks[0].name]
    assert not store.rename_sink(legacy, webhook_sink(receiver.url))  # done once


def test_a_failure_keeps_the_events_and_backs_off(store: Store) -> None:
    ids = emit(store, 4)
    with WebhookReceiver([500]) as receiver:
        publisher = hook(receiver)
        before = dt.datetime.now(dt.UTC)
        failed = deliver(store, [publisher])
        (sink,) = failed.sinks
        assert (sink.failed, sink.waiting, sink.delivered, sink.backlog, sink.attempts) == (True, False, 0, 4, 1)
        assert "HTTP 500" in sink.error and not failed.ok
        assert sink.next_attempt_at is not None
        assert 0.85 <= (sink.next_attempt_at - before).total_seconds() <= 1.5

        waiting = deliver(store, [publisher])  # still inside the backoff: not tried
        assert waiting.sinks[0].waiting and waiting.sinks[0].failed and len(receiver.requests) == 1

        later = deliver(store, [publisher], now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5))
        assert later.ok and later.sinks[0].delivered == 4 and later.sinks[0].backlog == 0
        assert [r.json()["id"] for r in receiver.accepted()] == ids
    row = store.sink(publisher.name)
    assert (row.attempts, row.next_attempt_at, row.last_error) == (0, None, "")


def test_backoff_grows_with_each_failure(store: Store) -> None:
    emit(store, 1)
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with WebhookReceiver([500, 500, 500]) as receiver:
        publisher = hook(receiver)
        waits = []
        for _ in range(3):
            sink = deliver(store, [publisher], now=now, max_backoff=3.0).sinks[0]
            assert sink.next_attempt_at is not None
            waits.append((sink.next_attempt_at - now).total_seconds())
            now = sink.next_attempt_at
        assert 0.9 <= waits[0] <= 1 and 1.8 <= waits[1] <= 2 and 2.7 <= waits[2] <= 3  # capped at 3
        assert store.sink(publisher.name).attempts == 3


def test_a_refusal_mid_batch_resends_the_batch_with_the_same_ids(store: Store) -> None:
    ids = emit(store, 5)
    with WebhookReceiver([200, 200, 500]) as receiver:
        publisher = hook(receiver)
        assert not deliver(store, [publisher]).ok
        assert deliver(store, [publisher], now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).ok
        got = [r.json()["id"] for r in receiver.accepted()]
    assert got == ids[:2] + ids  # at least once: the first two twice, nothing lost, order kept
    assert first_seen(got) == ids


def test_filtered_events_count_as_delivered(store: Store) -> None:
    emit(store, 2, EventType.IMAGE_REBUILT)
    rollout_ids = emit(store, 2, EventType.ROLLOUT_SUCCEEDED)
    with WebhookReceiver() as receiver:
        report = deliver(store, [hook(receiver, types=("rollout",))])
        assert [r.json()["id"] for r in receiver.requests] == rollout_ids
    assert (report.sinks[0].delivered, report.backlog) == (4, 0)


def test_one_failing_sink_does_not_hold_up_another(store: Store) -> None:
    ids = emit(store, 3)
    with WebhookReceiver([500]) as bad, WebhookReceiver() as good:
        report = deliver(store, [hook(bad), hook(good)])
        assert [s.failed for s in report.sinks] == [True, False]
        assert [r.json()["id"] for r in good.requests] == ids
        assert report.backlog == 3 and report.delivered == 3


def test_deliver_until_empty_retries_after_the_backoff(store: Store) -> None:
    ids = emit(store, 3)
    with WebhookReceiver([500, 502]) as receiver:
        started = time.monotonic()
        report = deliver_until_empty(store, [hook(receiver)], timeout=10, max_backoff=0.2)
        assert report.ok and report.backlog == 0
        assert time.monotonic() - started < 5
        assert [r.status for r in receiver.requests][:2] == [500, 502]
        assert [r.json()["id"] for r in receiver.accepted()] == ids


def test_deliver_until_empty_gives_up_at_the_timeout(store: Store) -> None:
    emit(store, 1)
    with WebhookReceiver([500] * 100) as receiver:
        report = deliver_until_empty(store, [hook(receiver)], timeout=0.5, max_backoff=0.1)
        assert not report.ok and report.backlog == 1 and len(receiver.requests) >= 2


def test_run_forever_delivers_what_arrives_until_stopped(store: Store) -> None:
    stop = threading.Event()
    with WebhookReceiver() as receiver:
        worker = threading.Thread(target=run_forever, args=(store, [hook(receiver)]),
                                  kwargs={"stop": stop, "poll": 0.05})
        worker.start()
        ids = emit(store, 3)
        time.sleep(0.2)
        ids += emit(store, 2, EventType.ROLLOUT_STARTED)
        deadline = time.monotonic() + 10
        while len(receiver.requests) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()
        worker.join(timeout=5)
        assert not worker.is_alive()
        assert [r.json()["id"] for r in receiver.requests] == ids


def test_a_sink_another_live_process_delivers_to_is_left_to_it(store: Store) -> None:
    ids = emit(store, 3)
    with subprocess.Popen(["sleep", "30"]) as other, WebhookReceiver() as receiver:
        holder = f"{socket.gethostname()}:{other.pid}"
        assert store.claim_sink(webhook_sink(receiver.url), owner=holder, lease_seconds=60)
        report = deliver(store, [hook(receiver)])
        (sink,) = report.sinks
        assert (sink.held_by, sink.delivered, sink.backlog, report.ok) == (holder, 0, 3, True)
        assert receiver.requests == []  # two deliverers at once would interleave their batches
        other.kill()
        other.wait()
        # Its process is gone: the lease is taken over at once, and everything is delivered, in order.
        report = deliver(store, [hook(receiver)])
        assert [r.json()["id"] for r in receiver.requests] == ids and report.sinks[0].held_by == ""
    assert store.sink(webhook_sink(receiver.url)).owner == ""  # given back after the pass


def test_a_lease_held_elsewhere_waits_until_it_runs_out(store: Store) -> None:
    emit(store, 2)
    with WebhookReceiver() as receiver:
        name = webhook_sink(receiver.url)
        assert store.claim_sink(name, owner="another-host:4242", lease_seconds=60)  # cannot be checked from here
        assert deliver(store, [hook(receiver)]).sinks[0].held_by == "another-host:4242"
        assert store.claim_sink(name, owner="another-host:4242", lease_seconds=-1)  # it ran out
        assert deliver(store, [hook(receiver)]).sinks[0].delivered == 2
