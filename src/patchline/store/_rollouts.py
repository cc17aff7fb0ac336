"""Rollout records and unpromotable digests: the durable state a resumed rollout continues from."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from patchline._eventdata import EventDraft
from patchline.errors import StoreError
from patchline.store._database import Database
from patchline.store._outbox import add_events
from patchline.store._schema import Rollout, RolloutReplica, Unpromotable
from patchline.store._sql import utc, utcnow
from patchline.store.model import UNFINISHED_ROLLOUT, ReplicaRow, RolloutRow, UnpromotableRow


class Rollouts:
    """Rollouts, their replicas, and the digests never to roll out again."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- rollouts ------------------------------------------------------------------

    def start_rollout(self, *, service: str, strategy: str, from_image: str | None, to_image: str,
                      spec: Mapping[str, Any], replicas: Sequence[tuple[int, str | None]], owner: str,
                      events: Sequence[EventDraft] = ()) -> int:
        """Record a new rollout; refused while another rollout of the service is unfinished."""
        now = utcnow()

        def work(conn: Connection, _new: object) -> int:
            busy = conn.execute(select(Rollout.id).where(Rollout.service == service,
                                                         Rollout.state.in_(UNFINISHED_ROLLOUT))).first()
            if busy is not None:
                raise StoreError(f"rollout {busy[0]} of {service} is unfinished; resume it first")
            key = conn.execute(insert(Rollout).values(
                service=service, strategy=strategy, from_image=from_image, to_image=to_image, state="running",
                phase="start", reason="", spec=json.dumps(dict(spec), sort_keys=True), owner=owner,
                heartbeat_at=now, started_at=now, timings="{}")).inserted_primary_key
            assert key is not None
            rollout_id = int(key[0])
            if replicas:
                conn.execute(insert(RolloutReplica), [
                    {"rollout_id": rollout_id, "replica": i, "from_image": img, "state": "pending", "container": "",
                     "detail": "", "updated_at": now} for i, img in replicas])
            add_events(conn, [_with_id(e, rollout_id) for e in events], now=now)
            return rollout_id

        return int(self._db.write(work))

    def update_rollout(self, rollout_id: int, *, state: str | None = None, phase: str | None = None,
                       reason: str | None = None, timings: Mapping[str, float] | None = None,
                       finished: bool = False, events: Sequence[EventDraft] = ()) -> None:
        """Change a rollout's state, with the events that report it, in one transaction."""
        now = utcnow()
        values: dict[str, Any] = {"heartbeat_at": now}
        if state is not None:
            values["state"] = state
        if phase is not None:
            values["phase"] = phase
        if reason is not None:
            values["reason"] = reason
        if timings is not None:
            values["timings"] = json.dumps(dict(timings), sort_keys=True)
        if finished:
            values["finished_at"] = now

        def work(conn: Connection, _new: object) -> None:
            conn.execute(update(Rollout).where(Rollout.id == rollout_id).values(**values))
            add_events(conn, [_with_id(e, rollout_id) for e in events], now=now)

        self._db.write(work)

    def update_replica(self, rollout_id: int, index: int, *, state: str, container: str | None = None,
                       detail: str = "", events: Sequence[EventDraft] = ()) -> None:
        now = utcnow()
        values: dict[str, Any] = {"state": state, "detail": detail, "updated_at": now}
        if container is not None:
            values["container"] = container

        def work(conn: Connection, _new: object) -> None:
            conn.execute(update(RolloutReplica).where(RolloutReplica.rollout_id == rollout_id,
                                                      RolloutReplica.replica == index).values(**values))
            conn.execute(update(Rollout).where(Rollout.id == rollout_id).values(heartbeat_at=now))
            add_events(conn, [_with_id(e, rollout_id) for e in events], now=now)

        self._db.write(work)

    def claim_rollout(self, rollout_id: int, *, owner: str, stale_before: dt.datetime,
                      dead_owners: Sequence[str] = ()) -> bool:
        """Take over an unfinished rollout whose driver is gone (dead, or silent since ``stale_before``)."""
        def work(conn: Connection, _new: object) -> bool:
            result = conn.execute(update(Rollout).where(
                Rollout.id == rollout_id, Rollout.state.in_(UNFINISHED_ROLLOUT),
                or_(Rollout.owner == owner, Rollout.owner.in_(list(dead_owners)),
                    Rollout.heartbeat_at.is_(None), Rollout.heartbeat_at < stale_before),
            ).values(owner=owner, heartbeat_at=utcnow()))
            return bool(result.rowcount)

        return bool(self._db.write(work))

    def rollout(self, rollout_id: int) -> RolloutRow:
        with self._db.read() as conn:
            row = conn.execute(select(Rollout).where(Rollout.id == rollout_id)).first()
            if row is None:
                raise StoreError(f"no rollout {rollout_id}")
            return _rollout_row(conn, row)

    def rollouts(self, *, service: str | None = None, unfinished: bool = False, limit: int = 50) -> list[RolloutRow]:
        """Rollouts, newest first."""
        query = select(Rollout).order_by(Rollout.id.desc()).limit(limit)
        if service is not None:
            query = query.where(Rollout.service == service)
        if unfinished:
            query = query.where(Rollout.state.in_(UNFINISHED_ROLLOUT))
        with self._db.read() as conn:
            return [_rollout_row(conn, r) for r in conn.execute(query).all()]

    def last_rollout(self, service: str, *, state: str | None = None) -> RolloutRow | None:
        query = select(Rollout).where(Rollout.service == service).order_by(Rollout.id.desc()).limit(1)
        if state is not None:
            query = query.where(Rollout.state == state)
        with self._db.read() as conn:
            row = conn.execute(query).first()
            return None if row is None else _rollout_row(conn, row)

    # -- unpromotable digests ----------------------------------------------------------

    def mark_unpromotable(self, *, digest: str, repository: str, stage: str, reason: str,
                          events: Sequence[EventDraft] = ()) -> None:
        """Never roll this digest (manifest or config digest) out again (idempotent: the first reason stays)."""
        def work(conn: Connection, _new: object) -> None:
            insert_unpromotable(conn, digest=digest, repository=repository, stage=stage,
                                reason=reason)
            add_events(conn, events)

        self._db.write(work)

    def unpromotable(self, *digests: str | None) -> UnpromotableRow | None:
        """The record of the first of these digests that is unpromotable, if any."""
        wanted = [d for d in digests if d]
        with self._db.read() as conn:
            r = conn.execute(select(Unpromotable).where(Unpromotable.digest.in_(wanted))).first() if wanted else None
        if r is None:
            return None
        recorded = utc(r.recorded_at)
        assert recorded is not None
        return UnpromotableRow(r.digest, r.repository, r.stage, r.reason, recorded)

    def unpromotables(self) -> list[UnpromotableRow]:
        with self._db.read() as conn:
            rows = conn.execute(select(Unpromotable).order_by(Unpromotable.recorded_at)).all()
        return [UnpromotableRow(r.digest, r.repository, r.stage, r.reason, utc(r.recorded_at) or utcnow())
                for r in rows]


def insert_unpromotable(conn: Connection, *, digest: str, repository: str, stage: str,
                        reason: str) -> None:
    if conn.execute(select(Unpromotable.digest)
                    .where(Unpromotable.digest == digest)).first() is None:
        conn.execute(insert(Unpromotable).values(digest=digest, repository=repository,
                                                 stage=stage, reason=reason[:4000], recorded_at=utcnow()))


def _with_id(draft: EventDraft, rollout_id: int) -> EventDraft:
    if "rollout_id" in draft.data:
        return draft
    return EventDraft(draft.type, draft.subject, {"rollout_id": rollout_id, **draft.data})


def _rollout_row(conn: Connection, r: Any) -> RolloutRow:
    reps = conn.execute(select(RolloutReplica).where(RolloutReplica.rollout_id == r.id)
                        .order_by(RolloutReplica.replica)).all()
    started = utc(r.started_at)
    assert started is not None
    return RolloutRow(
        id=r.id, service=r.service, strategy=r.strategy, from_image=r.from_image, to_image=r.to_image,
        state=r.state, phase=r.phase, reason=r.reason, spec=json.loads(r.spec), owner=r.owner,
        heartbeat_at=utc(r.heartbeat_at), started_at=started, finished_at=utc(r.finished_at),
        timings=json.loads(r.timings or "{}"),
        replicas=tuple(ReplicaRow(p.replica, p.from_image, p.state, p.container, p.detail,
                                  utc(p.updated_at) or started) for p in reps))

