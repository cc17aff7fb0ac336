"""Build records and what a rebuild plan asks of the store: current builds, pending updates, fixable findings."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select

from patchline.events.interface import EventDraft
from patchline.store._outbox import add_events
from patchline.store._rollouts import insert_unpromotable
from patchline.store._schema import Advisory, Build, Finding, Image, ImagePackage, PackageName, PendingUpdate, Version

_CHUNK = 500
GOOD = ("built", "unchanged")


@dataclass(frozen=True, slots=True)
class BuildRow:
    """One stored build."""

    id: int
    run_id: str
    recipe: str
    kind: str
    status: str
    reasons: tuple[dict[str, Any], ...]
    target: str
    input_hash: str
    bases: Mapping[str, str]
    config_digest: str | None
    manifest_digest: str | None
    previous_config_digest: str | None
    verification: Mapping[str, Any]
    error: str
    log_path: str
    source_date_epoch: int | None
    started_at: dt.datetime
    finished_at: dt.datetime


@dataclass(frozen=True, slots=True)
class PendingRow:
    name: str
    installed: str
    candidate: str
    suite: str
    cves: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FixableRow:
    advisory_id: str
    package: str  # the name the advisory matches (the source package for OS packages)
    version: str
    fixed: tuple[str, ...]
    severity: int


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _row(b: Any) -> BuildRow:
    return BuildRow(
        id=b.id, run_id=b.run_id, recipe=b.recipe, kind=b.kind, status=b.status,
        reasons=tuple(json.loads(b.reasons or "[]")), target=b.target, input_hash=b.input_hash,
        bases=json.loads(b.bases or "{}"), config_digest=b.config_digest, manifest_digest=b.manifest_digest,
        previous_config_digest=b.previous_config_digest, verification=json.loads(b.verification or "{}"),
        error=b.error, log_path=b.log_path, source_date_epoch=b.source_date_epoch,
        started_at=_utc(b.started_at), finished_at=_utc(b.finished_at))


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


class BuildRecords:
    """Mixed into :class:`~patchline.store.Store`."""

    def _write(self, work: Any) -> Any:  # provided by Store
        raise NotImplementedError

    def _read(self) -> Any:  # provided by Store
        raise NotImplementedError

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

        return int(self._write(work))

    def current_builds(self) -> dict[str, BuildRow]:
        """Each recipe's latest good build (built or unchanged)."""
        with self._read() as conn:
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
        with self._read() as conn:
            return [_row(r) for r in conn.execute(query)]

    def build_of(self, manifest_digest: str) -> BuildRow | None:
        """The newest build that pushed ``manifest_digest`` (what its provenance must agree with)."""
        query = (select(Build).where(Build.manifest_digest == manifest_digest, Build.status == "built")
                 .order_by(Build.id.desc()).limit(1))
        with self._read() as conn:
            row = conn.execute(query).first()
        return _row(row) if row is not None else None

    def pending_for(self, config_digests: Iterable[str]) -> dict[str, list[PendingRow]]:
        """The stored pending updates of these images, by config digest."""
        digests = sorted(set(config_digests))
        out: dict[str, list[PendingRow]] = defaultdict(list)
        installed = Version.__table__.alias("installed")
        candidate = Version.__table__.alias("candidate")
        with self._read() as conn:
            for chunk in _chunks(digests):
                rows = conn.execute(
                    select(Image.config_digest, PackageName.name, installed.c.version, candidate.c.version,
                           PendingUpdate.suite, PendingUpdate.cves)
                    .join(PendingUpdate, PendingUpdate.image_id == Image.id)
                    .join(PackageName, PackageName.id == PendingUpdate.name_id)
                    .join(installed, installed.c.id == PendingUpdate.installed_version_id)
                    .join(candidate, candidate.c.id == PendingUpdate.candidate_version_id)
                    .where(Image.config_digest.in_(chunk))
                    .order_by(PackageName.name))
                for digest, name, inst, cand, suite, cves in rows:
                    out[digest].append(PendingRow(name, inst, cand, suite, tuple(cves.split())))
        return dict(out)

    def fixable_for(self, config_digests: Iterable[str], *, fixable_only: bool = True) -> dict[str, list[FixableRow]]:
        """The findings (by default only those with a fixed version) of these images, by config digest."""
        from patchline.store._store import _scope_applies

        digests = sorted(set(config_digests))
        out: dict[str, list[FixableRow]] = defaultdict(list)
        ip = ImagePackage.__table__
        with self._read() as conn:
            for chunk in _chunks(digests):
                rows = conn.execute(
                    select(Image.config_digest, Advisory.advisory_id, PackageName.name, Version.version,
                           Finding.fixed_versions, Finding.severity).distinct()
                    .join(ip, ip.c.image_id == Image.id)
                    .join(Finding, and_(Finding.match_name_id == ip.c.match_name_id,
                                        Finding.match_version_id == ip.c.match_version_id))
                    .join(Advisory, Advisory.id == Finding.advisory_pk)
                    .join(PackageName, PackageName.id == Finding.match_name_id)
                    .join(Version, Version.id == Finding.match_version_id)
                    .where(Image.config_digest.in_(chunk), _scope_applies(ip.c.image_id),
                           *((Finding.fixed_versions != "",) if fixable_only else ()))
                    .order_by(Advisory.advisory_id))
                for digest, adv, name, version, fixed, severity in rows:
                    out[digest].append(FixableRow(adv, name, version, tuple(fixed.split()), int(severity)))
        return dict(out)
