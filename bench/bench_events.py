"""Delivering the event outbox to RabbitMQ, against raw pika publishing measured in the same run.

    .venv/bin/python bench/bench_events.py [--events 1000] [--repeat 3] [--batch 500] [--json FILE]

A private RabbitMQ node is started like the test suite's (tests/support/rabbitmq.py: loopback, a free
port, its own data directory) and stopped at the end. Each round uses a fresh exchange with one durable
queue bound to ``patchline.#`` (persistent messages to a durable queue: the broker confirms only once
they are on disk), drained by a real consumer that counts what arrives.

- outbox write (side figure): ``--events`` events written to a fresh SQLite store, one transaction each,
  as builds and rollouts write them;
- deliver: ``deliver(store, [AmqpPublisher])`` with a new publisher (connect, declare, publish in
  batches of ``--batch``, wait for the confirms, move the sink's cursor after each batch); target < 5 s;
  then the time until the consumer has counted every event;
- baseline: raw pika, no outbox: ``BlockingConnection`` + ``confirm_delivery()``, the same bodies and
  properties published one by one (pika waits for each confirm), connection set-up included;
- publisher alone: ``AmqpPublisher.publish`` of the same events in the same batches, without the store
  (what the outbox adds is the difference).

Not a test: it prints figures, the target and ratios (medians of --repeat rounds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pika  # noqa: E402
from tests.support.rabbitmq import AmqpConsumer, RabbitMQUnavailable, amqp_connect, start_rabbitmq  # noqa: E402

from patchline.events._amqp import PERSISTENT, AmqpPublisher, routing_key  # noqa: E402
from patchline.events._cloudevents import CONTENT_TYPE, cloudevent_type, encode  # noqa: E402
from patchline.events._deliver import deliver  # noqa: E402
from patchline.events.interface import Event, EventDraft, EventType  # noqa: E402
from patchline.store import Store, open_store  # noqa: E402

SOURCE = "/patchline/bench"
TARGET_SECONDS = 5.0


def source_revision() -> str:
    """The commit the figures are for: ``abc1234``, ``+dirty`` with local edits in src."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def drafts(count: int) -> list[EventDraft]:
    kinds = list(EventType)
    # A realistic image.rebuilt payload: digests, fixed advisories, a small SBOM diff.
    return [EventDraft(kinds[n % len(kinds)], f"127.0.0.1:5000/team/app{n}@sha256:{n:064x}",
                       {"repository": f"127.0.0.1:5000/team/app{n}", "old": f"sha256:{n + 1:064x}",
                        "new": f"sha256:{n:064x}", "fixed": [f"CVE-2026-{1000 + n}", f"DSA-{5000 + n}-1"],
                        "sbom_diff": {"updated": [{"name": "libssl3", "from": "3.0.11-1~deb12u2",
                                                   "to": "3.0.15-1~deb12u1"}]}})
            for n in range(count)]


def write_outbox(path: Path, count: int) -> tuple[Store, float]:
    store = open_store(f"sqlite:///{path}")
    started = time.perf_counter()
    for draft in drafts(count):
        store.emit([draft])
    return store, time.perf_counter() - started


def consumer_for(url: str, exchange: str) -> AmqpConsumer:
    return AmqpConsumer(url, exchange=exchange, queue=f"bench-{exchange}")


def count_until(consumer: AmqpConsumer, count: int, timeout: float = 60.0) -> int:
    return len(consumer.collect(count, timeout=timeout))


def raw_pika(url: str, exchange: str, events: list[Event]) -> float:
    bodies = [(routing_key(e.type), encode(e, source=SOURCE),
               pika.BasicProperties(content_type=CONTENT_TYPE, delivery_mode=PERSISTENT, message_id=e.event_id,
                                    type=cloudevent_type(e.type), timestamp=int(e.time.timestamp()),
                                    app_id="patchline")) for e in events]
    started = time.perf_counter()
    conn = amqp_connect(url)
    channel = conn.channel()
    channel.exchange_declare(exchange, exchange_type="topic", durable=True)
    channel.confirm_delivery()
    for key, body, props in bodies:
        channel.basic_publish(exchange, key, body, props)  # returns once this message is confirmed
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def one_round(url: str, workdir: Path, count: int, batch: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    store, result["outbox_write_seconds"] = write_outbox(workdir / f"outbox-{uuid.uuid4().hex[:8]}.db", count)
    try:
        events = store.events(limit=count)

        exchange = f"bench-{uuid.uuid4().hex[:10]}"
        with consumer_for(url, exchange) as consumer:
            publisher = AmqpPublisher(url, exchange=exchange, source=SOURCE)
            started = time.perf_counter()
            report = deliver(store, [publisher], batch=batch)
            result["deliver_seconds"] = time.perf_counter() - started
            publisher.close()
            if not report.ok or report.delivered != count:
                raise RuntimeError(f"delivery failed: {report}")
            result["consumed"] = count_until(consumer, count)
            result["consumed_seconds"] = time.perf_counter() - started

        exchange = f"bench-{uuid.uuid4().hex[:10]}"
        with consumer_for(url, exchange) as consumer:
            result["raw_pika_seconds"] = raw_pika(url, exchange, events)
            result["raw_pika_consumed"] = count_until(consumer, count)

        exchange = f"bench-{uuid.uuid4().hex[:10]}"
        with consumer_for(url, exchange) as consumer:
            publisher = AmqpPublisher(url, exchange=exchange, source=SOURCE)
            started = time.perf_counter()
            for at in range(0, count, batch):
                publisher.publish(events[at:at + batch])
            result["publisher_only_seconds"] = time.perf_counter() - started
            publisher.close()
            result["publisher_only_consumed"] = count_until(consumer, count)
    finally:
        store.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    print(f"patchline {source_revision()}: {args.events} events, batches of {args.batch}, {args.repeat} round(s)",
          flush=True)
    try:
        with start_rabbitmq() as broker, tempfile.TemporaryDirectory(prefix="patchline-bench-events-") as tmp:
            print(f"RabbitMQ node {broker.node} on {broker.host}:{broker.port}, up in {broker.startup_seconds:.1f} s",
                  flush=True)
            rounds = [one_round(broker.url, Path(tmp), args.events, args.batch) for _ in range(args.repeat)]
    except RabbitMQUnavailable as exc:
        print(f"skipped: RabbitMQ: {exc}")
        return

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    summary = {key: median(key) for key in ("outbox_write_seconds", "deliver_seconds", "consumed_seconds",
                                            "raw_pika_seconds", "publisher_only_seconds")}
    counts = {r["consumed"] for r in rounds} | {r["raw_pika_consumed"] for r in rounds} | {
        r["publisher_only_consumed"] for r in rounds}
    n = args.events
    print(f"  outbox write (side figure): {summary['outbox_write_seconds']:.2f} s for {n} transactions "
          f"({n / summary['outbox_write_seconds']:.0f} events/s)")
    print(f"  deliver: {summary['deliver_seconds']:.3f} s ({n / summary['deliver_seconds']:.0f} events/s; "
          f"target < {TARGET_SECONDS:g} s: {'met' if summary['deliver_seconds'] < TARGET_SECONDS else 'MISSED'}); "
          f"all consumed after {summary['consumed_seconds']:.3f} s")
    print(f"  baseline, raw pika (BlockingConnection, a confirm per message, no outbox): "
          f"{summary['raw_pika_seconds']:.3f} s")
    print(f"  AmqpPublisher alone (batch confirms, no outbox): {summary['publisher_only_seconds']:.3f} s")
    print(f"  ratio deliver / raw pika: {summary['deliver_seconds'] / summary['raw_pika_seconds']:.2f}; "
          f"deliver / publisher alone: {summary['deliver_seconds'] / summary['publisher_only_seconds']:.2f}")
    print(f"  messages counted by the consumer per run: {sorted(counts)} (expected {n})")
    if args.json:
        args.json.write_text(json.dumps({"events": n, "batch": args.batch, "rounds": rounds, "median": summary},
                                        indent=2))


if __name__ == "__main__":
    main()
