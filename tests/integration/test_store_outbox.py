"""The outbox and rollout records on SQLite and PostgreSQL: events commit with their state change, in order."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from patchline.errors import StoreError
from patchline.events.interface import EventDraft, EventType
from patchline.store import open_store

pytestmark = pytest.mark.integration


def _draft(n: int) -> EventDraft:
    return EventDraft(EventType.IMAGE_REBUILT, f"repo@sha256:{n:064x}", {"n": n})


def test_events_ride_the_state_change_and_keep_their_order(store_url: str) -> None:
    with open_store(store_url) as store:
        now = dt.datetime.now(dt.UTC)
        store.record_build(run_id="r1", recipe="web", kind="recipe", status="built", target="x/web:latest",
                           config_digest="sha256:" + "1" * 64, manifest_digest="sha256:" + "2" * 64,
                           started_at=now, finished_at=now, events=[_draft(1)])
        store.record_build(run_id="r1", recipe="bad", kind="recipe", status="verify-failed", target="x/bad:latest",
                           config_digest="sha256:" + "3" * 64, started_at=now, finished_at=now,
                           events=[_draft(2)], unpromotable=("x/bad", "tests failed: smoke"))
        # A state change that fails takes its events with it.
        with pytest.raises(StoreError):
            store.start_rollout(service="web", strategy="rolling", from_image=None, to_image="x/web@sha256:1",
                                spec={}, replicas=[(0, None)], owner="h:1", events=[_draft(3)])
            store.start_rollout(service="web", strategy="rolling", from_image=None, to_image="x/web@sha256:1",
                                spec={}, replicas=[(0, None)], owner="h:1", events=[_draft(4)])
        events = store.events()
        assert [e.data["n"] for e in events][:2] == [1, 2]
        assert 4 not in [e.data.get("n") for e in events]
        assert [e.seq for e in events] == sorted(e.seq for e in events)
        assert store.unpromotable("sha256:" + "3" * 64) is not None

        # Threads writing at once: every event once, seq strictly increasing.
        def writer(base: int) -> None:
            with open_store(store_url) as mine:
                for i in range(20):
                    mine.emit([_draft(base + i)])

        threads = [threading.Thread(target=writer, args=(1000 * k,)) for k in range(1, 4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        events = store.events(limit=10_000)
        ns = [e.data["n"] for e in events if e.data["n"] >= 1000]
        assert sorted(ns) == sorted(1000 * k + i for k in range(1, 4) for i in range(20))
        assert len({e.event_id for e in events}) == len(events)

        # Sinks: a cursor per sink, failures counted, delivery resets them.
        assert [e.seq for e in store.undelivered("amqp", limit=2)] == [events[0].seq, events[1].seq]
        assert store.mark_failed("amqp", "connection refused", retry_at=now) == 1
        assert store.mark_failed("amqp", "connection refused", retry_at=now) == 2
        store.mark_delivered("amqp", events[1].seq)
        sink = store.sink("amqp")
        assert (sink.delivered_seq, sink.attempts, sink.last_error) == (events[1].seq, 0, "")
        assert sink.backlog == len(events) - 2
        store.mark_delivered("amqp", events[0].seq)  # never moves back
        assert store.sink("amqp").delivered_seq == events[1].seq
        assert store.undelivered("amqp", limit=1)[0].seq == events[2].seq


def test_rollout_records_and_claims(store_url: str) -> None:
    with open_store(store_url) as store:
        rid = store.start_rollout(service="web", strategy="canary", from_image="x/web@sha256:a",
                                  to_image="x/web@sha256:b", spec={"k": 1}, replicas=[(0, "x/web@sha256:a"),
                                                                                      (1, "x/web@sha256:a")],
                                  owner="host:1", events=[EventDraft(EventType.ROLLOUT_STARTED, "web")])
        with pytest.raises(StoreError, match="unfinished"):
            store.start_rollout(service="web", strategy="canary", from_image=None, to_image="x/web@sha256:c",
                                spec={}, replicas=[], owner="host:2")
        store.update_replica(rid, 0, state="ready", container="patchline-web-0", detail="200 OK")
        row = store.rollout(rid)
        assert [r.state for r in row.replicas] == ["ready", "pending"] and row.spec == {"k": 1}
        assert store.events()[-1].data["rollout_id"] == rid
        future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        assert not store.claim_rollout(rid, owner="host:2", stale_before=dt.datetime.now(dt.UTC)
                                       - dt.timedelta(hours=1))
        assert store.claim_rollout(rid, owner="host:2", stale_before=future)
        assert store.claim_rollout(rid, owner="host:3", stale_before=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
                                   dead_owners=["host:2"])
        store.update_rollout(rid, state="succeeded", finished=True, timings={"pull": 1.5})
        assert store.rollouts(unfinished=True) == []
        last = store.last_rollout("web", state="succeeded")
        assert last is not None and last.timings == {"pull": 1.5} and last.finished_at is not None


def test_a_sink_is_leased_to_one_deliverer_at_a_time(store_url: str) -> None:
    with open_store(store_url) as store:
        assert store.claim_sink("amqp", owner="a:1", lease_seconds=60)
        assert store.claim_sink("amqp", owner="a:1", lease_seconds=60)  # renewing is claiming again
        assert not store.claim_sink("amqp", owner="b:2", lease_seconds=60)
        row = store.sink("amqp")
        assert row.owner == "a:1" and row.lease_until is not None and row.delivered_seq == 0
        assert store.claim_sink("amqp", owner="b:2", lease_seconds=60, dead_owners=["a:1"])  # a:1 is gone
        store.release_sink("amqp", owner="a:1")  # not a:1's any more: nothing happens
        assert store.sink("amqp").owner == "b:2"
        store.release_sink("amqp", owner="b:2")
        assert (store.sink("amqp").owner, store.sink("amqp").lease_until) == ("", None)
        assert store.claim_sink("amqp", owner="c:3", lease_seconds=-1)  # a lease already run out
        assert store.claim_sink("amqp", owner="d:4", lease_seconds=60)
        # A cursor from before is renamed with its lease fields, once.
        store.mark_delivered("webhook:http://old", 7)
        assert store.rename_sink("webhook:http://old", "webhook:http://new/…#abc")
        assert not store.rename_sink("webhook:http://old", "webhook:http://new/…#abc")
        assert store.sink("webhook:http://new/…#abc").delivered_seq == 7
