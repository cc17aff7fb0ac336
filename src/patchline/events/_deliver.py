"""Deliver the outbox to every sink: in order, at least once, with a backoff per failing sink.

A sink's cursor moves (``Store.mark_delivered``) only after its publisher returned
for the batch, so a crash in between sends that batch again with the same event
IDs. One failing sink never holds up the others.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from patchline import _clock
from patchline._config import EventsConfig
from patchline._owner import owner_dead, owner_id
from patchline.errors import ConfigError, EventError
from patchline.events._cloudevents import default_source
from patchline.events.interface import Publisher
from patchline.events.list import SINK_KINDS

if TYPE_CHECKING:
    from patchline.store import Store

BACKOFF_BASE = 1.0
BACKOFF_JITTER = 0.1
# A deliverer holds a sink's lease while it publishes, renewed before every batch: a second process (`run` and
# `events deliver --follow` side by side) leaves the sink to it. A killed holder's lease is taken over at once
# on this host, elsewhere once it expires.
SINK_LEASE_SECONDS = 120.0


def backoff_seconds(attempts: int, *, base: float = BACKOFF_BASE, cap: float = 300.0,
                    jitter: float = BACKOFF_JITTER, rand: Callable[[], float] = random.random) -> float:
    """The wait after the ``attempts``-th failure in a row: ``base * 2**(attempts-1)``, at most ``cap``,
    shortened by up to ``jitter`` (a fraction) so that sinks failing together do not retry in step."""
    if attempts < 1:
        raise ValueError("attempts counts failures and starts at 1")
    delay = min(cap, base * 2.0 ** min(attempts - 1, 64))
    return delay * (1.0 - jitter * rand())


@dataclass(frozen=True, slots=True)
class SinkDelivery:
    """One sink after a delivery pass."""

    name: str
    delivered: int  # events this pass moved the sink's cursor over
    batches: int
    failed: bool  # this pass failed, or the sink was still waiting out an earlier failure
    waiting: bool  # not tried: its next attempt is in the future
    attempts: int  # failures in a row
    error: str  # the last failure's message
    next_attempt_at: dt.datetime | None
    backlog: int  # events still to deliver
    delivered_seq: int
    held_by: str = ""  # not tried: another live process (host:pid) is delivering to this sink


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sinks: tuple[SinkDelivery, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        """No sink is failing."""
        return not any(s.failed for s in self.sinks)

    @property
    def delivered(self) -> int:
        return sum(s.delivered for s in self.sinks)

    @property
    def backlog(self) -> int:
        return sum(s.backlog for s in self.sinks)

    @property
    def next_attempt_at(self) -> dt.datetime | None:
        """The earliest retry of a failing sink."""
        times = [s.next_attempt_at for s in self.sinks if s.failed and s.next_attempt_at is not None]
        return min(times) if times else None


def sink_names(config: EventsConfig) -> list[str]:
    """The names the configured sinks keep their place in the outbox under (without connecting or
    reading secrets)."""
    return [name for kind in SINK_KINDS for name in kind.sink_names(config)]


def publishers_from_config(config: EventsConfig, *, source: str | None = None) -> list[Publisher]:
    """The configured sinks, kind by kind in the order of ``events/list.py``: the AMQP exchange (sink
    ``amqp``), then each webhook (``webhook:…``, see :func:`webhook_sink`)."""
    source = source or config.source or default_source()
    publishers = [publisher for kind in SINK_KINDS for publisher in kind.from_config(config, source=source)]
    names = [p.name for p in publishers]
    if len(names) != len(set(names)):
        raise ConfigError("[events] names the same webhook URL twice")
    return publishers


def _refuse_empty(publishers: Sequence[Publisher]) -> None:
    if not publishers:
        raise ConfigError("no event sinks configured: " + " or ".join(kind.configured_by for kind in SINK_KINDS))


def _now() -> dt.datetime:
    return _clock.now()


def _deliver_sink(store: Store, publisher: Publisher, *, batch: int, now: dt.datetime | None,
                  max_backoff: float) -> SinkDelivery:
    name = publisher.name
    row = store.sink(name)
    renamed_from = getattr(publisher, "renamed_from", None)
    if row.updated_at is None and renamed_from and store.rename_sink(renamed_from, name):
        row = store.sink(name)  # a sink from before names were redacted keeps its cursor
    if row.next_attempt_at is not None and row.next_attempt_at > (now or _now()):
        return SinkDelivery(name, 0, 0, row.attempts > 0, True, row.attempts, row.last_error,
                            row.next_attempt_at, row.backlog, row.delivered_seq)
    if row.backlog == 0:  # nothing to send: no lease to take (an idle --follow polls every second)
        return SinkDelivery(name, 0, 0, False, False, row.attempts, "", row.next_attempt_at, 0, row.delivered_seq)
    owner = owner_id()
    dead = [row.owner] if row.owner and row.owner != owner and owner_dead(row.owner) else []
    if not store.claim_sink(name, owner=owner, lease_seconds=SINK_LEASE_SECONDS, dead_owners=dead):
        held = store.sink(name)
        return SinkDelivery(name, 0, 0, False, True, held.attempts, held.last_error, held.next_attempt_at,
                            held.backlog, held.delivered_seq, held_by=held.owner)
    delivered = batches = 0
    failure: EventError | None = None
    attempts = row.attempts
    try:
        while True:
            events = store.undelivered(name, limit=batch)
            if not events:
                break
            if batches and not store.claim_sink(name, owner=owner, lease_seconds=SINK_LEASE_SECONDS):
                break  # taken over (this process stalled past its lease): the new holder goes on
            try:
                publisher.publish(events)
            except EventError as exc:
                failure = exc
                retry_at = (now or _now()) + dt.timedelta(seconds=backoff_seconds(attempts + 1, cap=max_backoff))
                attempts = store.mark_failed(name, exc.message, retry_at=retry_at)
                break
            store.mark_delivered(name, events[-1].seq)
            delivered += len(events)
            batches += 1
    finally:
        store.release_sink(name, owner=owner)
    after = store.sink(name)
    return SinkDelivery(name, delivered, batches, failure is not None, False, after.attempts,
                        after.last_error if failure is not None else "", after.next_attempt_at, after.backlog,
                        after.delivered_seq)


def deliver(store: Store, publishers: Sequence[Publisher], *, batch: int = 500, now: dt.datetime | None = None,
            max_backoff: float = 300.0) -> DeliveryReport:
    """One pass: every sink that is due gets its undelivered events, ``batch`` at a time, until none are left
    or it fails (then it waits ``backoff_seconds`` before it is tried again). ``now`` replaces the clock."""
    _refuse_empty(publishers)
    if batch < 1:
        raise ValueError("batch must be at least 1")
    started = time.monotonic()
    sinks = tuple(_deliver_sink(store, p, batch=batch, now=now, max_backoff=max_backoff) for p in publishers)
    return DeliveryReport(sinks, time.monotonic() - started)


def deliver_configured(store: Store, config: EventsConfig) -> DeliveryReport | None:
    """One delivery pass to the sinks of ``[events]`` (None when there are none); connections are closed after."""
    publishers = publishers_from_config(config)
    if not publishers:
        return None
    try:
        return deliver(store, publishers, max_backoff=config.max_backoff_seconds)
    finally:
        for publisher in publishers:
            publisher.close()


def deliver_until_empty(store: Store, publishers: Sequence[Publisher], *, timeout: float, batch: int = 500,
                        max_backoff: float = 300.0, poll: float = 0.1) -> DeliveryReport:
    """Deliver, retrying failed sinks when their backoff ends, until no sink has a backlog or ``timeout``
    seconds have passed; the last pass's report says which (``backlog``, ``ok``)."""
    _refuse_empty(publishers)
    deadline = time.monotonic() + timeout
    while True:
        report = deliver(store, publishers, batch=batch, max_backoff=max_backoff)
        if report.backlog == 0 and report.ok:
            return report
        left = deadline - time.monotonic()
        if left <= 0:
            return report
        wait = poll
        if report.next_attempt_at is not None:
            wait = max(poll, (report.next_attempt_at - _now()).total_seconds())
        time.sleep(min(wait, left))


def run_forever(store: Store, publishers: Sequence[Publisher], *, stop: threading.Event, poll: float = 1.0,
                batch: int = 500, max_backoff: float = 300.0,
                on_report: Callable[[DeliveryReport], None] | None = None) -> None:
    """Deliver every ``poll`` seconds until ``stop`` is set (``patchline events deliver --follow``)."""
    _refuse_empty(publishers)
    while not stop.is_set():
        report = deliver(store, publishers, batch=batch, max_backoff=max_backoff)
        if on_report is not None:
            on_report(report)
        stop.wait(poll)
