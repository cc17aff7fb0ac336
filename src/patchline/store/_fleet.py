"""The fleet: what runs where, and the questions asked of the whole fleet (where is a package, what does an
advisory touch, how exposed is every image)."""

from __future__ import annotations

import datetime as dt
import json
import zlib
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, func, select, tuple_, update

from patchline._model import Ecosystem
from patchline.errors import Error, StoreError
from patchline.store._database import Database
from patchline.store._findings import scope_applies
from patchline.store._images import current_tag_targets, image_columns, image_row, image_rows, refs_of
from patchline.store._interning import name_rows, version_rows
from patchline.store._schema import (
    Advisory,
    Feed,
    Finding,
    Image,
    ImageLayer,
    ImagePackage,
    ImageRef,
    Layer,
    PackageName,
    PendingUpdate,
    Version,
    Workload,
)
from patchline.store._sql import chunks, mapping, upsert, utc, utcnow
from patchline.store.model import (
    AdvisoryHit,
    AdvisoryReport,
    ExposureRow,
    FleetSummary,
    ImageRow,
    WhereHit,
    WorkloadRow,
    WorkloadSync,
)

if TYPE_CHECKING:
    from patchline._model import Workload as WorkloadData


class Fleet:
    """Workloads, and the fleet-wide queries."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- workloads -----------------------------------------------------------------

    def record_workloads(
        self, runtime: str, host: str, observed: Sequence[WorkloadData], *, seen_at: dt.datetime | None = None,
        namespace: str | None = None,
    ) -> WorkloadSync:
        """One full observation of ``runtime`` on ``host``: upsert what runs, mark the rest gone (kept, not deleted).

        ``namespace`` limits "the rest" to one namespace (a namespaced Kubernetes listing).
        """
        now = seen_at or utcnow()

        def work(conn: Connection, _new: dict[Any, int]) -> WorkloadSync:
            configs = {w.image_id for w in observed if w.image_id}
            manifests = {w.manifest_digest for w in observed if w.manifest_digest}
            by_config = mapping(conn.execute(select(Image.config_digest, Image.id)
                                             .where(Image.config_digest.in_(sorted(configs))))) if configs else {}
            by_manifest = mapping(conn.execute(
                select(ImageRef.manifest_digest, ImageRef.image_id)
                .where(ImageRef.manifest_digest.in_(sorted(manifests)))
            )) if manifests else {}
            known = {row.container_id: row for row in conn.execute(
                select(Workload.id, Workload.container_id, Workload.gone_at)
                .where(Workload.runtime == runtime, Workload.host == host))}
            new_count = updated = 0
            unresolved = []
            seen_ids = set()
            for w in observed:
                if w.runtime != runtime or w.host != host:
                    raise StoreError(f"workload {w.name} is from {w.runtime} on {w.host}, not {runtime} on {host}")
                seen_ids.add(w.container_id)
                image_id = by_config.get(w.image_id or "") or by_manifest.get(w.manifest_digest or "")
                if image_id is None:
                    unresolved.append(w.name)
                values = dict(namespace=w.namespace, name=w.name, image_ref=w.image_ref, image_digest=w.image_id,
                              manifest_digest=w.manifest_digest, image_id=image_id, started_at=w.started_at,
                              last_seen=now, gone_at=None)
                row = known.get(w.container_id)
                if row is None:
                    conn.execute(upsert(conn, Workload).values(runtime=runtime, host=host, container_id=w.container_id,
                                                               first_seen=now, **values)
                                 .on_conflict_do_update(index_elements=["runtime", "host", "container_id"],
                                                        set_=values))
                    new_count += 1
                else:
                    conn.execute(update(Workload).where(Workload.id == row.id).values(**values))
                    updated += 1
            gone_ids = [row.id for cid, row in known.items() if cid not in seen_ids and row.gone_at is None]
            if namespace is not None and gone_ids:
                gone_ids = list(conn.execute(select(Workload.id).where(Workload.id.in_(gone_ids),
                                                                       Workload.namespace == namespace)).scalars())
            for chunk in chunks(gone_ids):
                conn.execute(update(Workload).where(Workload.id.in_(chunk)).values(gone_at=now))
            return WorkloadSync(new_count, updated, len(gone_ids), tuple(unresolved))

        result: WorkloadSync = self._db.write(work)
        return result

    def workloads(self, *, include_gone: bool = False) -> list[WorkloadRow]:
        with self._db.read() as conn:
            stmt = select(*Workload.__table__.c).order_by(Workload.runtime, Workload.host, Workload.name)
            if not include_gone:
                stmt = stmt.where(Workload.gone_at.is_(None))
            return [_workload_row(w) for w in conn.execute(stmt)]

    # -- queries ---------------------------------------------------------------------

    def where(self, package: str, *, version_below: str | None = None, ecosystem: str | None = None,
              running_only: bool = False) -> list[WhereHit]:
        """Images (and their running workloads) that hold ``package``; binary or source name.

        ``version_below`` keeps versions lower than it, compared in each ecosystem's own scheme.
        """
        from patchline.advisories import normalize_name
        from patchline.versions import InvalidVersion, scheme_for

        ecosystems = [ecosystem] if ecosystem else sorted({e.value for e in Ecosystem})
        with self._db.read() as conn:
            wanted = [(e, normalize_name(e, package)) for e in ecosystems]
            name_ids = mapping(conn.execute(select(PackageName.id, PackageName.ecosystem)
                                            .where(tuple_(PackageName.ecosystem, PackageName.name).in_(wanted))))
            if not name_ids:
                return []
            ids = sorted(name_ids)
            ip = ImagePackage.__table__
            img = Image.__table__
            l1, l2 = ImageLayer.__table__.alias("l1"), ImageLayer.__table__.alias("l2")
            d1, d2 = Layer.__table__.alias("d1"), Layer.__table__.alias("d2")
            # One pass: the package rows with their image and both layers' diff_ids, by primary keys.
            base = (
                select(ip.c.image_id, ip.c.name_id, ip.c.version_id, ip.c.match_name_id, ip.c.match_version_id,
                       ip.c.introduced_in, ip.c.changed_in, d1.c.diff_id.label("introduced_diff_id"),
                       d2.c.diff_id.label("changed_diff_id"), *image_columns(img))
                .join(img, img.c.id == ip.c.image_id)
                .outerjoin(l1, and_(l1.c.image_id == ip.c.image_id, l1.c.idx == ip.c.introduced_in))
                .outerjoin(d1, d1.c.id == l1.c.layer_id)
                .outerjoin(l2, and_(l2.c.image_id == ip.c.image_id, l2.c.idx == ip.c.changed_in))
                .outerjoin(d2, d2.c.id == l2.c.layer_id)
            )
            # Two index lookups (binary name, source name) rather than one OR, which planners may scan for.
            found = [*conn.execute(base.where(ip.c.name_id.in_(ids))),
                     *conn.execute(base.where(ip.c.match_name_id.in_(ids), ip.c.name_id != ip.c.match_name_id))]
            if not found:
                return []
            names = name_rows(conn, {r.name_id for r in found} | {r.match_name_id for r in found})
            versions = version_rows(conn, {r.version_id for r in found} | {r.match_version_id for r in found})
            rows = [{"image_id": r.image_id, "name_id": r.name_id, "match_name_id": r.match_name_id,
                     "ecosystem": names[r.name_id][0], "name": names[r.name_id][1], "version": versions[r.version_id],
                     "match_name": names[r.match_name_id][1], "match_version": versions[r.match_version_id],
                     "introduced_in": r.introduced_in, "changed_in": r.changed_in, "row": r} for r in found]
            if version_below is not None:
                keep = []
                verdict: dict[tuple[str, str], bool] = {}
                for r in rows:
                    # Compare the version of what was asked about: the source version when found by source name.
                    by_src = r["name_id"] not in name_ids
                    version = r["match_version"] if by_src else r["version"]
                    key = (r["ecosystem"], version)
                    if key not in verdict:
                        try:
                            verdict[key] = scheme_for(r["ecosystem"]).compare(version, version_below) < 0
                        except (InvalidVersion, Error):
                            verdict[key] = False
                    if verdict[key]:
                        keep.append(r)
                rows = keep
            holders = (select(ip.c.image_id).where(ip.c.name_id.in_(ids))
                       .union(select(ip.c.image_id).where(ip.c.match_name_id.in_(ids))))
            refs = refs_of(conn, ImageRef.image_id.in_(holders))
            workloads: dict[int, list[WorkloadRow]] = defaultdict(list)
            for w in conn.execute(select(*Workload.__table__.c).where(Workload.image_id.in_(holders),
                                                                      Workload.gone_at.is_(None))
                                  .order_by(Workload.name)):
                workloads[w.image_id].append(_workload_row(w))
        images: dict[int, ImageRow] = {}
        hits = []
        for r in rows:
            running = workloads.get(r["image_id"], ())
            if running_only and not running:
                continue
            row = r["row"]
            image = images.get(row.image_id)
            if image is None:
                image = images[row.image_id] = image_row(row, refs.get(row.image_id, ()))
            source = r["match_name"] if r["match_name_id"] != r["name_id"] else None
            hits.append(WhereHit(
                image=image, ecosystem=r["ecosystem"], name=r["name"], version=r["version"],
                source_name=source, source_version=r["match_version"] if source else None,
                introduced_in=r["introduced_in"], introduced_diff_id=row.introduced_diff_id,
                changed_in=r["changed_in"], changed_diff_id=row.changed_diff_id, workloads=tuple(running),
            ))
        hits.sort(key=lambda h: (-len(h.workloads), h.image.refs[:1], h.name, h.version))
        return hits

    def advisory(self, advisory_id: str) -> AdvisoryReport:
        """Every image and workload an advisory (by ID or alias) touches, and whether a fix is available."""
        with self._db.read() as conn:
            rows = list(conn.execute(select(Advisory.id, Advisory.advisory_id, Advisory.aliases, Advisory.document,
                                            Feed.name).join(Feed, Feed.id == Advisory.feed_id)
                                     .where(Advisory.withdrawn.is_(False), Advisory.advisory_id == advisory_id)))
            if not rows:  # an alias (a CVE ID naming a DSA...): aliases are few per record, scan them
                like = conn.execute(select(Advisory.id, Advisory.advisory_id, Advisory.aliases, Advisory.document,
                                           Feed.name).join(Feed, Feed.id == Advisory.feed_id)
                                    .where(Advisory.withdrawn.is_(False), Advisory.aliases.contains(advisory_id)))
                rows = [r for r in like if advisory_id in r.aliases.split()]
            if not rows:
                return AdvisoryReport(advisory_id, (), None, False, ())
            pks = {r.id: r for r in rows}
            ip = ImagePackage.__table__
            stmt = (select(ip.c.image_id, ip.c.name_id, PackageName.ecosystem, PackageName.name, Version.version,
                           Finding.advisory_pk, Finding.severity, Finding.fixed_versions, Finding.feed_revision)
                    .join(Finding, and_(Finding.match_name_id == ip.c.match_name_id,
                                        Finding.match_version_id == ip.c.match_version_id))
                    .join(PackageName, PackageName.id == ip.c.name_id).join(Version, Version.id == ip.c.version_id)
                    .where(Finding.advisory_pk.in_(sorted(pks)), scope_applies(ip.c.image_id)))
            found = list(conn.execute(stmt))
            image_ids = {r.image_id for r in found}
            images = image_rows(conn, image_ids)
            running = _running_by_image(conn, image_ids)
            pending: set[tuple[int, int]] = set()
            for chunk in chunks(sorted(image_ids)):
                pending |= {(i, n) for i, n in conn.execute(select(PendingUpdate.image_id, PendingUpdate.name_id)
                                                            .where(PendingUpdate.image_id.in_(chunk)))}
        first = rows[0]
        doc = json.loads(zlib.decompress(first.document))
        hits = []
        seen = set()
        for r in found:
            key = (r.image_id, r.name, r.version)
            if key in seen:  # the same package matched in two scopes or two feeds
                continue
            seen.add(key)
            fixed = tuple(r.fixed_versions.split())
            hits.append(AdvisoryHit(
                image=images[r.image_id], ecosystem=r.ecosystem, package=r.name, version=r.version,
                severity=r.severity, fixed_versions=fixed,
                fix_available=bool(fixed) or (r.image_id, r.name_id) in pending,
                feed=pks[r.advisory_pk].name, feed_revision=r.feed_revision,
                workloads=tuple(running.get(r.image_id, ())),
            ))
        hits.sort(key=lambda h: (-len(h.workloads), h.image.refs[:1], h.package))
        aliases = tuple(first.aliases.split())
        summary = doc.get("summary") if isinstance(doc, dict) else None
        return AdvisoryReport(first.advisory_id, aliases, summary if isinstance(summary, str) else None, True,
                              tuple(hits))

    def fleet(self, *, stale_days: int | None = None, now: dt.datetime | None = None,
              include_unused: bool = True) -> FleetSummary:
        """Exposure of every image (and the running workloads) by worst fixable severity, with age and base state."""
        from patchline._findings import Severity

        now = now or utcnow()
        with self._db.read() as conn:
            ip = ImagePackage.__table__
            exposure = {r.image_id: r for r in conn.execute(
                select(ip.c.image_id,
                       func.max(Finding.severity).label("worst"),
                       func.count().label("n"))
                .join(Finding, and_(Finding.match_name_id == ip.c.match_name_id,
                                    Finding.match_version_id == ip.c.match_version_id))
                .where(scope_applies(ip.c.image_id))
                .group_by(ip.c.image_id))}
            fixable = {r.image_id: r for r in conn.execute(
                select(ip.c.image_id, func.max(Finding.severity).label("worst"), func.count().label("n"))
                .join(Finding, and_(Finding.match_name_id == ip.c.match_name_id,
                                    Finding.match_version_id == ip.c.match_version_id))
                .where(scope_applies(ip.c.image_id), Finding.fixed_versions != "")
                .group_by(ip.c.image_id))}
            pending = mapping(conn.execute(select(PendingUpdate.image_id, func.count())
                                           .group_by(PendingUpdate.image_id)))
            running = mapping(conn.execute(select(Workload.image_id, func.count())
                                           .where(Workload.gone_at.is_(None), Workload.image_id.is_not(None))
                                           .group_by(Workload.image_id)))
            images_meta = list(conn.execute(select(Image.id, Image.base_image_id)))
            ids = {r.id for r in images_meta}
            rows = image_rows(conn, ids)
            current_of = current_tag_targets(conn)
            base_refs: dict[int, list[tuple[str, str]]] = defaultdict(list)
            tagged = select(ImageRef.image_id, ImageRef.repository, ImageRef.tag).where(ImageRef.tag != "")
            for r in conn.execute(tagged):
                base_refs[r.image_id].append((r.repository, r.tag))
            gone = int(conn.execute(select(func.count()).select_from(Workload).where(Workload.gone_at.is_not(None)))
                       .scalar_one())
            running_total = int(conn.execute(select(func.count()).select_from(Workload)
                                             .where(Workload.gone_at.is_(None))).scalar_one())
            feeds = tuple((k, n, r) for k, n, r in conn.execute(
                select(Feed.kind, Feed.name, Feed.revision).order_by(Feed.kind, Feed.name)))
        out = []
        for image_id, base_id in images_meta:
            row = rows[image_id]
            worst_fix = fixable.get(image_id)
            worst_any = exposure.get(image_id)
            outdated = None
            if base_id is not None:
                for ref in base_refs.get(base_id, []):
                    target = current_of.get(ref)
                    if target is not None and target != base_id:
                        outdated = rows[target].config_digest if target in rows else None
                        break
            age = (now - row.created).total_seconds() / 86400 if row.created else None
            # Superseded: nothing runs it and every tag it had points at a newer image now (a rebuild replaced
            # it). Its pending updates are history, not exposure: listed apart, not counted.
            tags = base_refs.get(image_id, [])
            superseded = (not running.get(image_id) and bool(tags)
                          and all(current_of.get(ref, image_id) != image_id for ref in tags))
            out.append(ExposureRow(
                image=row, worst_fixable=worst_fix.worst if worst_fix else None,
                worst=worst_any.worst if worst_any else None, findings=worst_any.n if worst_any else 0,
                fixable=worst_fix.n if worst_fix else 0, pending_updates=pending.get(image_id, 0), age_days=age,
                base=rows[base_id].config_digest if base_id in rows else None, base_outdated_by=outdated,
                workloads=running.get(image_id, 0), superseded=superseded,
            ))
        out.sort(key=lambda e: (-(e.worst_fixable or 0), -e.pending_updates, -e.workloads, e.image.refs[:1]))

        def bucket(e: ExposureRow) -> str:
            if e.superseded:
                return "superseded"
            if e.worst_fixable is not None:
                return Severity(e.worst_fixable).name.lower()
            if e.pending_updates:
                return "pending-updates"
            return "cannot-assess" if e.image.unknown else "clean"  # unknown is never clean

        by_images: dict[str, int] = defaultdict(int)
        by_workloads: dict[str, int] = defaultdict(int)
        for e in out:
            by_images[bucket(e)] += 1
            by_workloads[bucket(e)] += e.workloads
        stale = sum(1 for e in out if stale_days is not None and e.age_days is not None and e.age_days > stale_days)
        return FleetSummary(
            images=tuple(out), workloads_by_severity=dict(by_workloads), images_by_severity=dict(by_images),
            pending_updates=sum(e.pending_updates for e in out if not e.superseded),
            images_with_pending=sum(1 for e in out if e.pending_updates and not e.superseded), stale_days=stale_days,
            stale_images=stale, base_outdated=sum(1 for e in out if e.base_outdated_by),
            running_workloads=running_total, gone_workloads=gone, feeds=feeds,
        )

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables (for reports and tests)."""
        tables = {"images": Image, "image_packages": ImagePackage, "package_names": PackageName, "versions": Version,
                  "workloads": Workload, "advisories": Advisory, "findings": Finding, "pending_updates": PendingUpdate,
                  "image_refs": ImageRef, "layers": Layer}
        with self._db.read() as conn:
            return {name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                    for name, t in tables.items()}


def _workload_row(w: Any) -> WorkloadRow:
    """A ``workloads`` table row as plain data."""
    return WorkloadRow(
        runtime=w.runtime, host=w.host, namespace=w.namespace, name=w.name, container_id=w.container_id,
        image_ref=w.image_ref, image_digest=w.image_digest, started_at=utc(w.started_at),
        first_seen=utc(w.first_seen) or utcnow(), last_seen=utc(w.last_seen) or utcnow(), gone_at=utc(w.gone_at),
    )


def _running_by_image(conn: Connection, ids: set[int]) -> dict[int, list[WorkloadRow]]:
    out: dict[int, list[WorkloadRow]] = defaultdict(list)
    for chunk in chunks(sorted(ids)):
        for w in conn.execute(select(*Workload.__table__.c)
                              .where(Workload.image_id.in_(chunk), Workload.gone_at.is_(None))
                              .order_by(Workload.name)):
            out[w.image_id].append(_workload_row(w))
    return out
