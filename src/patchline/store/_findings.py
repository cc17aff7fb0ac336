"""Findings: the stored advisories, what they affect, and the pending updates the update sources offer.

Findings are kept per (package name, version, advisory, scope), not per image; the
decision itself is :func:`patchline.advisories.match_version`, the one matcher
``patchline scan`` uses too. A feed refresh diffs the feed against the stored
advisories and recomputes only the (name, version) pairs the changed ones name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, func, or_, select, update

from patchline._findings import AssessSkip
from patchline.store._database import Database
from patchline.store._interning import name_rows, version_rows
from patchline.store._schema import (
    Advisory,
    AdvisoryPackage,
    Feed,
    Finding,
    Image,
    ImagePackage,
    ImageScope,
    PackageName,
    PendingUpdate,
    Version,
)
from patchline.store._sql import chunks, upsert, utcnow
from patchline.store.model import FixableRow, PendingRow, RefreshResult

if TYPE_CHECKING:
    from patchline._findings import PendingUpdate as PendingUpdateData
    from patchline.advisories import Advisory as OsvAdvisory
    from patchline.advisories import AdvisoryFeed, OsvFeed

_FEED_LOCK = 0x7061_7466  # "patf"


def feed_lock(conn: Connection, *, shared: bool) -> None:
    """Ingests (shared) and feed refreshes (exclusive) never overlap on PostgreSQL.

    Otherwise an ingest could evaluate a new package version against the advisories
    it saw, while a refresh that commits a new advisory meanwhile does not see that
    version yet, and the finding would be missed by both. SQLite serializes writers anyway.
    """
    if conn.dialect.name == "postgresql":
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        conn.execute(select(getattr(func, function)(_FEED_LOCK)))


def finding_scope(distro: str | None, release: str | None) -> str:
    if distro is None:
        return ""
    return distro if release is None else f"{distro}:{release}"


def scope_applies(image_id_column: Any) -> Any:
    """A finding applies to an image when it is scope-free or the image is in its scope."""
    in_scope = select(ImageScope.image_id).where(ImageScope.image_id == image_id_column,
                                                 ImageScope.scope == Finding.scope).exists()
    return or_(Finding.scope == "", in_scope)


def image_finding_count(conn: Connection, image_id: int) -> int:
    return int(conn.execute(
        select(func.count()).select_from(ImagePackage)
        .join(Finding, and_(Finding.match_name_id == ImagePackage.match_name_id,
                            Finding.match_version_id == ImagePackage.match_version_id))
        .where(ImagePackage.image_id == image_id, scope_applies(ImagePackage.image_id))
    ).scalar_one())


class FindingMatcher:
    """Computes and stores the findings of (match name id, match version id) pairs; parses each stored
    advisory once per content. An image's ingest and a feed refresh share one."""

    def __init__(self) -> None:
        self._parsed: dict[tuple[int, str], list[OsvAdvisory]] = {}

    def remember(self, pk: int, content_hash: str, records: list[OsvAdvisory]) -> None:
        """Records a refresh parsed already: evaluating them must not parse them again."""
        self._parsed[(pk, content_hash)] = records

    def advisories_naming(self, conn: Connection, name_ids: Iterable[int]) -> dict[int, list[int]]:
        """name id -> advisory pks that name it (not withdrawn)."""
        out: dict[int, list[int]] = defaultdict(list)
        ids = sorted(set(name_ids))
        for chunk in chunks(ids):
            rows = conn.execute(select(AdvisoryPackage.name_id, AdvisoryPackage.advisory_pk)
                                .join(Advisory, Advisory.id == AdvisoryPackage.advisory_pk)
                                .where(AdvisoryPackage.name_id.in_(chunk), Advisory.withdrawn.is_(False)))
            for name_id, pk in rows:
                out[name_id].append(pk)
        return out

    def _parsed_advisories(self, conn: Connection, pks: Iterable[int]) -> dict[int, tuple[list[OsvAdvisory], str]]:
        """Advisory pk -> (parsed records, feed revision), parsed once per content hash."""
        from patchline.advisories import parse_record

        out: dict[int, tuple[list[OsvAdvisory], str]] = {}
        ids = sorted(set(pks))
        for chunk in chunks(ids):
            rows = conn.execute(select(Advisory.id, Advisory.content_hash, Advisory.document, Advisory.advisory_id,
                                       Feed.revision).join(Feed, Feed.id == Advisory.feed_id)
                                .where(Advisory.id.in_(chunk)))
            for pk, content_hash, document, advisory_id, revision in rows:
                key = (pk, content_hash)
                if key not in self._parsed:
                    doc = json.loads(zlib.decompress(document))
                    self._parsed[key] = [
                        r for r in parse_record(doc, what=advisory_id) if not isinstance(r, AssessSkip)]
                out[pk] = (self._parsed[key], revision)
        return out

    def evaluate_pairs(self, conn: Connection, pairs: set[tuple[int, int]], now: dt.datetime,
                       advisories: Mapping[int, list[int]] | None = None) -> tuple[int, int]:
        """Compute and insert the findings of (match name id, match version id) pairs; returns (evaluated, added).

        ``advisories`` restricts the evaluation to these advisory pks per name id (default: all naming it).
        """
        from patchline.advisories import match_version

        if not pairs:
            return 0, 0
        naming = advisories if advisories is not None else self.advisories_naming(conn, (n for n, _ in pairs))
        pairs = {p for p in pairs if naming.get(p[0])}
        if not pairs:
            return 0, 0
        parsed = self._parsed_advisories(conn, (pk for n, _ in pairs for pk in naming[n]))
        name_of = name_rows(conn, {n for n, _ in pairs})
        version_of = version_rows(conn, {v for _, v in pairs})
        rows = []
        for name_id, version_id in sorted(pairs):
            eco, name = name_of[name_id]
            version = version_of[version_id]
            for pk in naming[name_id]:
                records, revision = parsed.get(pk, ([], ""))
                for hit in match_version(records, ecosystem=eco, name=name, version=version):
                    rows.append({"advisory_pk": pk, "match_name_id": name_id, "match_version_id": version_id,
                                 "scope": finding_scope(hit.key.distro, hit.key.release),
                                 "severity": int(hit.severity), "fixed_versions": " ".join(hit.fixed_versions),
                                 "feed_revision": revision, "computed_at": now})
        for chunk in chunks(rows, 1000):
            conn.execute(upsert(conn, Finding).on_conflict_do_nothing(), list(chunk))
        return len(pairs), len(rows)


class Findings:
    """Advisory feeds and pending updates, and the findings and updates of images for a rebuild plan."""

    def __init__(self, db: Database, matcher: FindingMatcher) -> None:
        self._db = db
        self._matcher = matcher

    # -- feeds: re-assessment without rescans ------------------------------------------

    def refresh_feed(self, feed: OsvFeed | AdvisoryFeed, *, now: dt.datetime | None = None) -> RefreshResult:
        """Bring the stored advisories of ``feed`` up to date and recompute only the findings they change.

        Reads the feed, never an image: the packages come from the store. A record
        whose content is unchanged is not even parsed.
        """
        started = time.perf_counter()
        now = now or utcnow()
        docs, skipped = _feed_documents(feed)
        revision = feed.revision
        incoming: dict[str, tuple[str, object, str]] = {}  # advisory id -> (hash, doc, what)
        for what, doc in docs:
            ident = str(doc["id"])  # type: ignore[index]
            incoming[ident] = (_doc_hash(doc), doc, what)

        def work(conn: Connection, new: dict[Any, int]) -> RefreshResult:
            return self._refresh(conn, new, feed.name, revision, incoming, skipped, now, started)

        return self._db.write(work)

    def _refresh(self, conn: Connection, new: dict[Any, int], feed_name: str, revision: str,
                 incoming: dict[str, tuple[str, object, str]], skipped: list[tuple[str, str]], now: dt.datetime,
                 started: float) -> RefreshResult:
        from patchline.advisories import normalize_ecosystem, normalize_name, parse_record

        feed_lock(conn, shared=False)
        feed_row = conn.execute(select(Feed.id, Feed.revision)
                                .where(Feed.kind == "osv", Feed.name == feed_name)).first()
        if feed_row is None:
            feed_id = conn.execute(upsert(conn, Feed).values(kind="osv", name=feed_name, revision=revision,
                                                             refreshed_at=now).returning(Feed.id)).scalar_one()
            previous = ""
        else:
            feed_id, previous = feed_row
            conn.execute(update(Feed).where(Feed.id == feed_id).values(revision=revision, refreshed_at=now))
        stored = {row.advisory_id: row for row in conn.execute(
            select(Advisory.id, Advisory.advisory_id, Advisory.content_hash, Advisory.withdrawn)
            .where(Advisory.feed_id == feed_id))}
        changed = [i for i, (h, _, _) in incoming.items()
                   if i not in stored or stored[i].content_hash != h or stored[i].withdrawn]
        removed = [row.id for i, row in stored.items() if i not in incoming and not row.withdrawn]
        added_count = sum(1 for i in changed if i not in stored)

        # Which (ecosystem, name) each changed record names: parse only those records.
        parsed: dict[str, list[OsvAdvisory]] = {}
        names_of: dict[str, set[tuple[str, str]]] = {}
        for ident in changed:
            _hash, doc, what = incoming[ident]
            records: list[OsvAdvisory] = []
            for record in parse_record(doc, what=what):
                if isinstance(record, AssessSkip):
                    skipped.append((record.what, record.reason))
                else:
                    records.append(record)
            parsed[ident] = records
            wanted = set()
            for record in records:
                for affected in record.affected:
                    key = normalize_ecosystem(affected.ecosystem)
                    if key is not None:
                        wanted.add((key.ecosystem, normalize_name(key.ecosystem, affected.name)))
            names_of[ident] = wanted
        name_ids = self._db.interner.names(conn, [n for s in names_of.values() for n in s], new)

        # The findings the changed and removed advisories had, and the images they exposed, go first.
        touched_pks = [stored[i].id for i in changed if i in stored] + removed
        removed_findings = 0
        affected_images: set[int] = set()
        for chunk in chunks(touched_pks):
            affected_images |= _images_with_findings_of(conn, chunk)
            removed_findings += conn.execute(delete(Finding).where(Finding.advisory_pk.in_(chunk))).rowcount or 0
            conn.execute(delete(AdvisoryPackage).where(AdvisoryPackage.advisory_pk.in_(chunk)))
        for chunk in chunks(removed):
            conn.execute(update(Advisory).where(Advisory.id.in_(chunk)).values(withdrawn=True))

        # Upsert the changed advisories and what they name.
        pk_of: dict[str, int] = {}
        for ident in changed:
            content_hash, doc, _what = incoming[ident]
            aliases = " ".join(sorted({a for r in parsed[ident] for a in r.aliases}))
            modified = str(doc.get("modified", "")) if isinstance(doc, Mapping) else ""
            values = dict(aliases=aliases, modified=modified[:64], content_hash=content_hash,
                          document=zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6), withdrawn=False)
            if ident in stored:
                pk = stored[ident].id
                conn.execute(update(Advisory).where(Advisory.id == pk).values(**values))
            else:
                pk = conn.execute(upsert(conn, Advisory).values(feed_id=feed_id, advisory_id=ident, first_seen=now,
                                                                **values).returning(Advisory.id)).scalar_one()
            pk_of[ident] = pk
            self._matcher.remember(pk, content_hash, parsed[ident])
            rows = [{"advisory_pk": pk, "name_id": name_ids[n]} for n in sorted(names_of[ident])]
            if rows:
                conn.execute(upsert(conn, AdvisoryPackage).on_conflict_do_nothing(), rows)

        # Recompute: for each name a changed advisory names, the distinct versions the fleet holds.
        naming: dict[int, list[int]] = defaultdict(list)
        for ident in changed:
            for n in names_of[ident]:
                naming[name_ids[n]].append(pk_of[ident])
        pairs: set[tuple[int, int]] = set()
        for chunk in chunks(sorted(naming)):
            pairs.update((n, v) for n, v in conn.execute(
                select(ImagePackage.match_name_id, ImagePackage.match_version_id).distinct()
                .where(ImagePackage.match_name_id.in_(chunk))))
        conn.execute(update(Feed).where(Feed.id == feed_id).values(revision=revision))
        evaluated, added = self._matcher.evaluate_pairs(conn, pairs, now, advisories=naming)
        for chunk in chunks(list(pk_of.values())):
            affected_images |= _images_with_findings_of(conn, chunk)
        return RefreshResult(
            feed=feed_name, revision=revision, previous_revision=previous,
            advisories_added=added_count, advisories_changed=len(changed) - added_count,
            advisories_removed=len(removed), advisories_unchanged=len(incoming) - len(changed),
            packages_evaluated=evaluated, findings_added=added, findings_removed=removed_findings,
            images_affected=len(affected_images), skipped=tuple(skipped), seconds=time.perf_counter() - started,
        )

    # -- pending updates -------------------------------------------------------------

    def record_pending(self, config_digest: str, pending: Sequence[PendingUpdateData], *, revision: str,
                       now: dt.datetime | None = None) -> bool:
        """Replace an image's pending updates with this assessment's; False when the image is not stored."""
        now = now or utcnow()
        interner = self._db.interner

        def work(conn: Connection, new: dict[Any, int]) -> bool:
            image_id = conn.execute(select(Image.id).where(Image.config_digest == config_digest)).scalar()
            if image_id is None:
                return False
            conn.execute(delete(PendingUpdate).where(PendingUpdate.image_id == image_id))
            conn.execute(update(Image).where(Image.id == image_id).values(assess_unknown=None))  # checked now
            if not pending:
                return True
            names = interner.names(conn, [(p.package.ecosystem, p.package.name) for p in pending], new)
            versions = interner.versions(conn, [v for p in pending for v in (p.package.version, p.candidate)], new)
            rows = {}
            for p in pending:
                rows[names[(p.package.ecosystem, p.package.name)]] = {
                    "image_id": image_id, "name_id": names[(p.package.ecosystem, p.package.name)],
                    "installed_version_id": versions[p.package.version], "candidate_version_id": versions[p.candidate],
                    "suite": p.suite, "source_name": p.source_name, "cves": " ".join(p.cves),
                    "source_revision": revision, "computed_at": now}
            conn.execute(upsert(conn, PendingUpdate), list(rows.values()))
            return True

        return bool(self._db.write(work))

    def record_unknown(self, config_digest: str, reason: str) -> bool:
        """Note why an image's pending updates could not be checked; the pending updates known before stay
        (exposed beats unknown). :meth:`record_pending` clears it. False when the image is not stored."""

        def work(conn: Connection, _new: dict[Any, int]) -> bool:
            done = conn.execute(update(Image).where(Image.config_digest == config_digest)
                                .values(assess_unknown=reason[:2000]))
            return bool(done.rowcount)

        return bool(self._db.write(work))

    def record_update_source(self, name: str, revision: str, *, now: dt.datetime | None = None) -> str:
        """Remember an update source's revision; returns the previous one ("" if new)."""
        now = now or utcnow()

        def work(conn: Connection, _new: dict[Any, int]) -> str:
            row = conn.execute(select(Feed.id, Feed.revision).where(Feed.kind == "apt", Feed.name == name)).first()
            if row is None:
                conn.execute(upsert(conn, Feed).values(kind="apt", name=name, revision=revision, refreshed_at=now))
                return ""
            conn.execute(update(Feed).where(Feed.id == row[0]).values(revision=revision, refreshed_at=now))
            return str(row[1])

        return str(self._db.write(work))

    def unknown_for(self, config_digests: Iterable[str]) -> dict[str, str]:
        """config digest -> why patchline could not assess it, for those of ``config_digests`` it could not."""
        out: dict[str, str] = {}
        with self._db.read() as conn:
            for chunk in chunks(sorted(set(config_digests)), 5000):
                for digest, why in conn.execute(select(Image.config_digest, Image.assess_unknown)
                                                .where(Image.config_digest.in_(chunk),
                                                       Image.assess_unknown.is_not(None))):
                    out[digest] = str(why)  # not None: filtered above
        return out

    # -- what a rebuild plan asks --------------------------------------------------------

    def pending_for(self, config_digests: Iterable[str]) -> dict[str, list[PendingRow]]:
        """The stored pending updates of these images, by config digest."""
        digests = sorted(set(config_digests))
        out: dict[str, list[PendingRow]] = defaultdict(list)
        installed = Version.__table__.alias("installed")
        candidate = Version.__table__.alias("candidate")
        with self._db.read() as conn:
            for chunk in chunks(digests):
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
        digests = sorted(set(config_digests))
        out: dict[str, list[FixableRow]] = defaultdict(list)
        ip = ImagePackage.__table__
        with self._db.read() as conn:
            for chunk in chunks(digests):
                rows = conn.execute(
                    select(Image.config_digest, Advisory.advisory_id, PackageName.name, Version.version,
                           Finding.fixed_versions, Finding.severity).distinct()
                    .join(ip, ip.c.image_id == Image.id)
                    .join(Finding, and_(Finding.match_name_id == ip.c.match_name_id,
                                        Finding.match_version_id == ip.c.match_version_id))
                    .join(Advisory, Advisory.id == Finding.advisory_pk)
                    .join(PackageName, PackageName.id == Finding.match_name_id)
                    .join(Version, Version.id == Finding.match_version_id)
                    .where(Image.config_digest.in_(chunk), scope_applies(ip.c.image_id),
                           *((Finding.fixed_versions != "",) if fixable_only else ()))
                    .order_by(Advisory.advisory_id))
                for digest, adv, name, version, fixed, severity in rows:
                    out[digest].append(FixableRow(adv, name, version, tuple(fixed.split()), int(severity)))
        return dict(out)



def _images_with_findings_of(conn: Connection, advisory_pks: Sequence[int]) -> set[int]:
    rows = conn.execute(
        select(ImagePackage.image_id).distinct()
        .join(Finding, and_(Finding.match_name_id == ImagePackage.match_name_id,
                            Finding.match_version_id == ImagePackage.match_version_id))
        .where(Finding.advisory_pk.in_(advisory_pks), scope_applies(ImagePackage.image_id))
    )
    return set(rows.scalars())


def _doc_hash(doc: object) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _feed_documents(feed: Any) -> tuple[list[tuple[str, object]], list[tuple[str, str]]]:
    """(what, document) of every usable record of a feed, and (what, reason) of the unreadable ones."""
    docs: list[tuple[str, object]] = []
    skipped: list[tuple[str, str]] = []
    for what, doc, reason in feed.documents():
        if reason is not None:
            skipped.append((what, reason))
        elif not isinstance(doc, Mapping) or not isinstance(doc.get("id"), str) or not doc["id"].strip():
            skipped.append((what, "an OSV record must be an object with an id"))
        elif doc.get("withdrawn"):
            continue  # a withdrawn record counts as removed
        else:
            docs.append((what, doc))
    return docs, skipped
