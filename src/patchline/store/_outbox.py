"""The transactional outbox: events written with the state change they report, delivered per sink in order."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update

from patchline._eventdata import Event, EventDraft
from patchline.store._database import Database
from patchline.store._schema import Event as EventModel
from patchline.store._schema import EventSink
from patchline.store._sql import utc, utcnow
from patchline.store.model import SinkRow

_OUTBOX_LOCK = 0x7061_746F  # "pato"


def add_events(conn: Connection, drafts: Sequence[EventDraft], *, now: dt.datetime | None = None) -> list[str]:
    """Write events inside the caller's transaction; returns their IDs.

    Writers take one lock first, so events commit in ``seq`` order and a sink's
    cursor can never pass a smaller ``seq`` that commits later. (SQLite writers
    hold the database's write lock anyway.)
    """
    if not drafts:
        return []
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_OUTBOX_LOCK)))
    when = now or utcnow()
    rows: list[dict[str, Any]] = [{"event_id": str(uuid.uuid4()), "type": d.type.value, "subject": d.subject,
             "data": json.dumps(d.data, sort_keys=True, default=str), "created_at": when} for d in drafts]
    conn.execute(insert(EventModel), rows)
    return [str(r["event_id"]) for r in rows]


def _event(row: Any) -> Event:
    created = utc(row.created_at)
    assert created is not None
    return Event(seq=row.seq, event_id=row.event_id, type=row.type, subject=row.subject,
                 data=json.loads(row.data), time=created)


class Outbox:
    """Events, and each sink's place in them."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def emit(self, drafts: Sequence[EventDraft]) -> list[str]:
        """Write events in a transaction of their own (when no state change goes with them)."""
        return list(self._db.write(lambda conn, _new: add_events(conn, drafts)))

    def events(self, *, after: int = 0, limit: int = 1000, types: Sequence[str] = ()) -> list[Event]:
        """Stored events with ``seq > after``, oldest first."""
        query = select(EventModel).where(EventModel.seq > after).order_by(EventModel.seq).limit(limit)
        if types:
            query = query.where(EventModel.type.in_(list(types)))
        with self._db.read() as conn:
            return [_event(r) for r in conn.execute(query)]

    def undelivered(self, sink: str, *, limit: int = 500) -> list[Event]:
        """The next events the sink has not acknowledged, in order."""
        with self._db.read() as conn:
            cursor = conn.execute(select(EventSink.delivered_seq).where(EventSink.name == sink)).scalar() or 0
            rows = conn.execute(select(EventModel).where(EventModel.seq > cursor)
                                .order_by(EventModel.seq).limit(limit))
            return [_event(r) for r in rows]

    def claim_sink(self, sink: str, *, owner: str, lease_seconds: float, dead_owners: Sequence[str] = ()) -> bool:
        """Take (or renew) the lease to deliver to ``sink``: free, expired, already ``owner``'s, or held by one
        of ``dead_owners``. Two deliverers at once would interleave their batches out of order."""
        now = utcnow()

        def work(conn: Connection, _new: object) -> bool:
            self._ensure_sink(conn, sink)
            result = conn.execute(update(EventSink).where(
                EventSink.name == sink,
                or_(EventSink.owner == "", EventSink.owner == owner, EventSink.lease_until.is_(None),
                    EventSink.lease_until < now, EventSink.owner.in_(list(dead_owners))),
            ).values(owner=owner, lease_until=now + dt.timedelta(seconds=lease_seconds)))
            return bool(result.rowcount)

        return bool(self._db.write(work))

    def release_sink(self, sink: str, *, owner: str) -> None:
        """Give the lease back (only its holder can)."""
        def work(conn: Connection, _new: object) -> None:
            conn.execute(update(EventSink).where(EventSink.name == sink, EventSink.owner == owner)
                         .values(owner="", lease_until=None))

        self._db.write(work)

    def rename_sink(self, old: str, new: str) -> bool:
        """Give sink ``old``'s cursor and retry state to ``new`` (when ``new`` has none yet); whether it did."""
        with self._db.read() as conn:
            if conn.execute(select(EventSink.name).where(EventSink.name == old)).first() is None:
                return False

        def work(conn: Connection, _new: object) -> bool:
            if conn.execute(select(EventSink.name).where(EventSink.name == new)).first() is not None:
                return False
            return bool(conn.execute(update(EventSink).where(EventSink.name == old).values(name=new)).rowcount)

        return bool(self._db.write(work))

    def _ensure_sink(self, conn: Connection, sink: str) -> None:
        if conn.execute(select(EventSink.name).where(EventSink.name == sink)).first() is None:
            conn.execute(insert(EventSink).values(name=sink, delivered_seq=0, attempts=0, last_error="",
                                                  updated_at=utcnow()))

    def mark_delivered(self, sink: str, up_to_seq: int) -> None:
        """Every event up to ``up_to_seq`` reached the sink; its retry state is cleared."""
        def work(conn: Connection, _new: object) -> None:
            self._ensure_sink(conn, sink)
            conn.execute(update(EventSink).where(EventSink.name == sink).values(
                delivered_seq=func.max(EventSink.delivered_seq, up_to_seq) if conn.dialect.name == "sqlite"
                else func.greatest(EventSink.delivered_seq, up_to_seq),
                attempts=0, next_attempt_at=None, last_error="", updated_at=utcnow()))

        self._db.write(work)

    def mark_failed(self, sink: str, error: str, *, retry_at: dt.datetime) -> int:
        """A delivery failed; returns the number of failures in a row."""
        def work(conn: Connection, _new: object) -> int:
            self._ensure_sink(conn, sink)
            conn.execute(update(EventSink).where(EventSink.name == sink).values(
                attempts=EventSink.attempts + 1, next_attempt_at=retry_at, last_error=error[:2000],
                updated_at=utcnow()))
            return int(conn.execute(select(EventSink.attempts).where(EventSink.name == sink)).scalar_one())

        return int(self._db.write(work))

    def sinks(self) -> list[SinkRow]:
        """Every sink that has been delivered to or failed, with its backlog."""
        with self._db.read() as conn:
            last = conn.execute(select(func.max(EventModel.seq))).scalar() or 0
            out = []
            for r in conn.execute(select(EventSink).order_by(EventSink.name)):
                backlog = conn.execute(select(func.count()).select_from(EventModel)
                                       .where(EventModel.seq > r.delivered_seq)).scalar_one() if last else 0
                out.append(SinkRow(r.name, r.delivered_seq, r.attempts, utc(r.next_attempt_at), r.last_error,
                                   utc(r.updated_at), int(backlog), r.owner or "", utc(r.lease_until)))
            return out

    def sink(self, name: str) -> SinkRow:
        """One sink's state (a sink never written yet starts at the beginning of the outbox)."""
        for row in self.sinks():
            if row.name == name:
                return row
        with self._db.read() as conn:
            backlog = conn.execute(select(func.count()).select_from(EventModel)).scalar_one()
        return SinkRow(name, 0, 0, None, "", None, int(backlog))
