"""Patch runs: steps with leases, triggers, approvals, and the time-to-patch items."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, and_, insert, or_, select, update

from patchline._eventdata import EventDraft
from patchline.errors import StoreError
from patchline.store._database import Database
from patchline.store._outbox import add_events
from patchline.store._schema import Approval, PatchItem, PatchRun, PatchTrigger, RunStep
from patchline.store._sql import utc, utcnow
from patchline.store.model import UNFINISHED_RUN, PatchItemRow, RunRow, StepRow


def _run_row(conn: Connection, r: Any) -> RunRow:
    steps = conn.execute(select(RunStep).where(RunStep.run_id == r.id).order_by(RunStep.position)).all()
    started = utc(r.started_at)
    assert started is not None
    return RunRow(r.id, r.trigger, r.triggered_by, r.state, r.step, json.loads(r.inputs or "{}"),
                  json.loads(r.summary or "{}"), r.error, started, utc(r.finished_at),
                  tuple(StepRow(s.step, s.position, s.state, s.owner, utc(s.lease_until), s.attempts,
                                utc(s.started_at), utc(s.finished_at), json.loads(s.output or "{}"))
                        for s in steps))


def _item_row(r: Any) -> PatchItemRow:
    first = utc(r.first_seen_at)
    assert first is not None
    return PatchItemRow(r.id, r.kind, r.item, r.recipe, r.state, r.why, first, r.first_seen_run,
                        utc(r.rebuilt_at), r.digest, utc(r.deployed_at), tuple(json.loads(r.services or "[]")))


class Runs:
    """Patch runs and their steps, triggers, approvals, and time-to-patch items."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- runs and steps ------------------------------------------------------------

    def start_run(self, *, trigger: str, triggered_by: str, steps: Sequence[str],
                  inputs: Mapping[str, Any] | None = None) -> int:
        """A new run with its steps pending; refused while another run is unfinished (resume that one)."""
        now = utcnow()

        def work(conn: Connection, _new: object) -> int:
            busy = conn.execute(select(PatchRun.id).where(PatchRun.state.in_(UNFINISHED_RUN))).first()
            if busy is not None:
                raise StoreError(f"run {busy[0]} is unfinished; resume it first")
            key = conn.execute(insert(PatchRun).values(
                trigger=trigger, triggered_by=triggered_by, state="running", step=steps[0] if steps else "",
                inputs=json.dumps(dict(inputs or {}), sort_keys=True), summary="{}", error="",
                started_at=now)).inserted_primary_key
            assert key is not None
            run_id = int(key[0])
            conn.execute(insert(RunStep), [{"run_id": run_id, "step": s, "position": i, "state": "pending",
                                            "owner": "", "attempts": 0, "output": "{}"}
                                           for i, s in enumerate(steps)])
            triggers = conn.execute(select(PatchTrigger.requested_by, PatchTrigger.reason, PatchTrigger.requested_at)
                                    .where(PatchTrigger.run_id.is_(None)).order_by(PatchTrigger.id)).all()
            if triggers:
                # Who asked for this run, and why, is part of its record.
                merged = {**dict(inputs or {}), "triggers": [
                    {"requested_by": t.requested_by, "reason": t.reason,
                     "requested_at": (utc(t.requested_at) or now).isoformat()} for t in triggers]}
                conn.execute(update(PatchRun).where(PatchRun.id == run_id).values(
                    inputs=json.dumps(merged, sort_keys=True)))
                conn.execute(update(PatchTrigger).where(PatchTrigger.run_id.is_(None)).values(run_id=run_id))
            return run_id

        return int(self._db.write(work))

    def claim_step(self, run_id: int, step: str, *, owner: str, lease_seconds: float,
                   dead_owners: Sequence[str] = ()) -> bool:
        """Take a step: pending, or running under a lease that expired or an owner that is gone."""
        now = utcnow()

        def work(conn: Connection, _new: object) -> bool:
            result = conn.execute(update(RunStep).where(
                RunStep.run_id == run_id, RunStep.step == step,
                or_(RunStep.state == "pending",
                    and_(RunStep.state == "running",
                         or_(RunStep.lease_until < now, RunStep.owner.in_(list(dead_owners)),
                             RunStep.owner == owner))),
            ).values(state="running", owner=owner, lease_until=now + dt.timedelta(seconds=lease_seconds),
                     attempts=RunStep.attempts + 1, started_at=now))
            if result.rowcount:
                conn.execute(update(PatchRun).where(PatchRun.id == run_id).values(step=step))
            return bool(result.rowcount)

        return bool(self._db.write(work))

    def renew_lease(self, run_id: int, step: str, *, owner: str, lease_seconds: float) -> bool:
        def work(conn: Connection, _new: object) -> bool:
            result = conn.execute(update(RunStep).where(
                RunStep.run_id == run_id, RunStep.step == step, RunStep.owner == owner, RunStep.state == "running",
            ).values(lease_until=utcnow() + dt.timedelta(seconds=lease_seconds)))
            return bool(result.rowcount)

        return bool(self._db.write(work))

    def finish_step(self, run_id: int, step: str, *, owner: str, state: str, output: Mapping[str, Any],
                    inputs: Mapping[str, Any] | None = None, events: Sequence[EventDraft] = ()) -> None:
        """Record a step's result (``done`` or ``failed``); only its lease holder may."""
        now = utcnow()

        def work(conn: Connection, _new: object) -> None:
            result = conn.execute(update(RunStep).where(
                RunStep.run_id == run_id, RunStep.step == step, RunStep.owner == owner, RunStep.state == "running",
            ).values(state=state, finished_at=now, lease_until=None,
                     output=json.dumps(dict(output), sort_keys=True, default=str)))
            if not result.rowcount:
                raise StoreError(f"run {run_id} step {step}: the lease is no longer {owner}'s")
            if inputs:
                row = conn.execute(select(PatchRun.inputs).where(PatchRun.id == run_id)).scalar_one()
                merged = {**json.loads(row or "{}"), **inputs}
                conn.execute(update(PatchRun).where(PatchRun.id == run_id).values(
                    inputs=json.dumps(merged, sort_keys=True, default=str)))
            add_events(conn, events, now=now)

        self._db.write(work)

    def finish_run(self, run_id: int, *, state: str, summary: Mapping[str, Any], error: str = "",
                   events: Sequence[EventDraft] = ()) -> None:
        def work(conn: Connection, _new: object) -> None:
            conn.execute(update(PatchRun).where(PatchRun.id == run_id).values(
                state=state, summary=json.dumps(dict(summary), sort_keys=True, default=str), error=error,
                finished_at=utcnow()))
            add_events(conn, events)

        self._db.write(work)

    def run(self, run_id: int) -> RunRow:
        with self._db.read() as conn:
            r = conn.execute(select(PatchRun).where(PatchRun.id == run_id)).first()
            if r is None:
                raise StoreError(f"no run {run_id}")
            return _run_row(conn, r)

    def runs(self, *, limit: int = 20, unfinished: bool = False) -> list[RunRow]:
        """Runs, newest first."""
        query = select(PatchRun).order_by(PatchRun.id.desc()).limit(limit)
        if unfinished:
            query = query.where(PatchRun.state.in_(UNFINISHED_RUN))
        with self._db.read() as conn:
            return [_run_row(conn, r) for r in conn.execute(query).all()]

    # -- triggers and approvals ----------------------------------------------------------

    def add_trigger(self, *, requested_by: str, reason: str = "") -> int:
        def work(conn: Connection, _new: object) -> int:
            key = conn.execute(insert(PatchTrigger).values(requested_by=requested_by, reason=reason,
                                                           requested_at=utcnow())).inserted_primary_key
            assert key is not None
            return int(key[0])

        return int(self._db.write(work))

    def pending_triggers(self) -> int:
        with self._db.read() as conn:
            return len(conn.execute(select(PatchTrigger.id).where(PatchTrigger.run_id.is_(None))).all())

    def approve(self, run_id: int, service: str, *, approved_by: str) -> None:
        def work(conn: Connection, _new: object) -> None:
            if conn.execute(select(PatchRun.id).where(PatchRun.id == run_id)).first() is None:
                raise StoreError(f"no run {run_id}")
            if conn.execute(select(Approval.run_id).where(Approval.run_id == run_id,
                                                          Approval.service == service)).first() is None:
                conn.execute(insert(Approval).values(run_id=run_id, service=service, approved_by=approved_by,
                                                     approved_at=utcnow()))

        self._db.write(work)

    def approvals(self, run_id: int) -> dict[str, str]:
        """service -> who approved it, for this run."""
        with self._db.read() as conn:
            return {s: by for s, by in conn.execute(select(Approval.service, Approval.approved_by)
                                                    .where(Approval.run_id == run_id))}

    def reopen_run(self, run_id: int, steps: Sequence[str]) -> None:
        """An approval arrived: the run's rollout and report steps run again."""
        def work(conn: Connection, _new: object) -> None:
            conn.execute(update(PatchRun).where(PatchRun.id == run_id).values(state="running", finished_at=None))
            conn.execute(update(RunStep).where(RunStep.run_id == run_id, RunStep.step.in_(list(steps)))
                         .values(state="pending", owner="", lease_until=None))

        self._db.write(work)

    # -- time-to-patch ------------------------------------------------------------------

    def note_patch_items(self, items: Sequence[tuple[str, str, str]], *, run_id: int | None,
                         services: Mapping[str, Sequence[str]] | None = None, when: dt.datetime | None = None
                         ) -> int:
        """Open ``(kind, item, recipe)`` not already open; returns how many were new."""
        now = when.astimezone(dt.UTC) if when is not None else utcnow()

        def work(conn: Connection, _new: object) -> int:
            open_rows = {(r.kind, r.item, r.recipe) for r in conn.execute(
                select(PatchItem.kind, PatchItem.item, PatchItem.recipe).where(
                    PatchItem.state.not_in(["deployed", "closed"])))}
            new = [t for t in dict.fromkeys(items) if t not in open_rows]
            if new:
                conn.execute(insert(PatchItem), [{
                    "kind": k, "item": i, "recipe": r, "state": "open", "why": "", "first_seen_at": now,
                    "first_seen_run": run_id, "services": json.dumps(sorted((services or {}).get(r, [])))}
                    for k, i, r in new])
            return len(new)

        return int(self._db.write(work))

    def close_vanished_patch_items(self, present: Sequence[tuple[str, str, str]], *, run_id: int | None,
                                   when: dt.datetime | None = None) -> int:
        """Close the open or stuck ``(kind, item, recipe)`` rows not in ``present`` (what the assessment still
        reports): fixed outside patchline, an advisory withdrawn, an image gone from the fleet. Rows already
        rebuilt are left to their rollout: their image is fixed, the workloads may not be. Returns how many."""
        now = when.astimezone(dt.UTC) if when is not None else utcnow()
        keep = set(present)
        why = (f"no longer reported (run {run_id}, {now:%Y-%m-%d %H:%M} UTC): fixed outside patchline, "
               "withdrawn, or the image left the fleet")

        def work(conn: Connection, _new: object) -> int:
            rows = conn.execute(select(PatchItem.id, PatchItem.kind, PatchItem.item, PatchItem.recipe).where(
                PatchItem.state.in_(["open", "stuck"]), PatchItem.rebuilt_at.is_(None))).all()
            ids = [r.id for r in rows if (r.kind, r.item, r.recipe) not in keep]
            if ids:
                conn.execute(update(PatchItem).where(PatchItem.id.in_(ids)).values(state="closed", why=why))
            return len(ids)

        return int(self._db.write(work))

    def update_patch_items(self, recipe: str, *, items: Sequence[tuple[str, str]] | None = None,
                           state: str, why: str = "", digest: str | None = None,
                           from_states: Sequence[str] = ("open", "stuck", "rebuilt"),
                           when: dt.datetime | None = None) -> int:
        """Move a recipe's open items (all, or these ``(kind, item)``) to ``state``; stamps the time (or ``when``)."""
        now = when.astimezone(dt.UTC) if when is not None else utcnow()
        values: dict[str, Any] = {"state": state, "why": why}
        if state == "rebuilt":
            values.update(rebuilt_at=now, digest=digest)
        if state == "deployed":
            values["deployed_at"] = now

        def work(conn: Connection, _new: object) -> int:
            query = update(PatchItem).where(PatchItem.recipe == recipe, PatchItem.state.in_(list(from_states)))
            if state == "deployed" and digest is not None:
                query = query.where(PatchItem.digest == digest)
            if items is not None:
                wanted = [f"{k}\x00{i}" for k, i in items]
                rows = conn.execute(select(PatchItem.id, PatchItem.kind, PatchItem.item).where(
                    PatchItem.recipe == recipe, PatchItem.state.in_(list(from_states)))).all()
                ids = [r.id for r in rows if f"{r.kind}\x00{r.item}" in wanted]
                if not ids:
                    return 0
                query = query.where(PatchItem.id.in_(ids))
            return int(conn.execute(query.values(**values)).rowcount)

        return int(self._db.write(work))

    def note_patch_why(self, recipe: str, *, why: str, states: Sequence[str] = ("rebuilt",)) -> None:
        """Say what keeps a recipe's items open, without moving them (no timestamp changes)."""
        def work(conn: Connection, _new: object) -> None:
            conn.execute(update(PatchItem).where(PatchItem.recipe == recipe, PatchItem.state.in_(list(states)))
                         .values(why=why))

        self._db.write(work)

    def patch_items(self, *, kind: str | None = None, state: str | None = None) -> list[PatchItemRow]:
        query = select(PatchItem).order_by(PatchItem.first_seen_at, PatchItem.id)
        if kind is not None:
            query = query.where(PatchItem.kind == kind)
        if state is not None:
            query = query.where(PatchItem.state == state)
        with self._db.read() as conn:
            return [_item_row(r) for r in conn.execute(query)]
