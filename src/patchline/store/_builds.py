"""Build records: what was built from which recipe, and each recipe's current build."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, insert, select

from patchline._eventdata import EventDraft
from patchline.store._database import Database
from patchline.store._outbox import add_events
from patchline.store._rollouts import insert_unpromotable
from patchline.store._schema import Build
from patchline.store._sql import utc
from patchline.store.model import BuildRow

GOOD = ("built", "unchanged")


def _row(b: Any) -> BuildRow:
    return BuildRow(
        id=b.id, run_id=b.run_id, recipe=b.recipe, kind=b.kind, status=b.status,
        reasons=tuple(json.loads(b.reasons or "[]")), target=b.target, input_hash=b.input_hash,
        bases=json.loads(b.bases or "{}"), config_digest=b.config_digest, manifest_digest=b.manifest_digest,
        previous_config_digest=b.previous_config_digest, verification=json.loads(b.verification or "{}"),
        error=b.error, log_path=b.log_path, source_date_epoch=b.source_date_epoch,
        started_at=utc(b.started_at), finished_at=utc(b.finished_at))


class Builds:
    """Build records: each recipe's builds and its current (latest good) one."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record_build(self, *, run_id: str, recipe: str, kind: str, status: str, target: str,
                     reasons: Sequence[Mapping[str, Any]] = (), input_hash: str = "",
                     bases: Mapping[str, str] | None = None, config_digest: str | None = None,
                     manifest_digest: str | None = None, previous_config_digest: str | None = None,
                     verification: Mapping[str, Any] | None = None, error: str = "", log_path: str = "",
                     source_date_epoch: int | None = None, started_at: dt.datetime,
                     finished_at: dt.datetime, events: Sequence[EventDraft] = (),
                     unpromotable: tuple[str, str] | None = None) -> int:
        """Store one build's outcome; only ``built`` and ``unchanged`` ones become a recipe's current state.

        ``events`` go into the outbox in the same transaction; ``unpromotable`` is
        ``(repository, reason)`` for an image that failed its verification (recorded by
        manifest digest when it was pushed, else by config digest).
        """
        values = dict(
            run_id=run_id, recipe=recipe, kind=kind, status=status, target=target,
            reasons=json.dumps(list(reasons)), input_hash=input_hash, bases=json.dumps(dict(bases or {})),
            config_digest=config_digest, manifest_digest=manifest_digest,
            previous_config_digest=previous_config_digest, verification=json.dumps(dict(verification or {})),
            error=error, log_path=log_path, source_date_epoch=source_date_epoch, started_at=started_at,
            finished_at=finished_at)

        def work(conn: Connection, _new: dict[Any, int]) -> int:
            key = conn.execute(insert(Build).values(**values)).inserted_primary_key
            assert key is not None
            if unpromotable is not None and (config_digest or manifest_digest):
                insert_unpromotable(conn, digest=str(manifest_digest or config_digest), repository=unpromotable[0],
                                    stage="verify", reason=unpromotable[1])
            add_events(conn, events, now=finished_at)
            return int(key[0])

        return int(self._db.write(work))

    def current_builds(self) -> dict[str, BuildRow]:
        """Each recipe's latest good build (built or unchanged)."""
        with self._db.read() as conn:
            latest = (select(Build.recipe, func.max(Build.id).label("id"))
                      .where(Build.status.in_(GOOD)).group_by(Build.recipe).subquery())
            rows = conn.execute(select(Build).join(latest, Build.id == latest.c.id))
            return {r.recipe: _row(r) for r in rows}

    def builds(self, *, run_id: str | None = None, recipe: str | None = None, limit: int = 100) -> list[BuildRow]:
        """Stored builds, newest first."""
        query = select(Build).order_by(Build.id.desc()).limit(limit)
        if run_id is not None:
            query = query.where(Build.run_id == run_id)
        if recipe is not None:
            query = query.where(Build.recipe == recipe)
        with self._db.read() as conn:
            return [_row(r) for r in conn.execute(query)]

    def build_of(self, manifest_digest: str) -> BuildRow | None:
        """The newest build that pushed ``manifest_digest`` (what its provenance must agree with)."""
        query = (select(Build).where(Build.manifest_digest == manifest_digest, Build.status == "built")
                 .order_by(Build.id.desc()).limit(1))
        with self._db.read() as conn:
            row = conn.execute(query).first()
        return _row(row) if row is not None else None
