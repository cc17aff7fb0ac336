"""The fleet store: what is in every image, what runs where, and which advisories touch it.

Only this module talks to the database. Stages hand it plain data (an
:class:`~patchline._model.Inventory`, :class:`~patchline.fleet.Workload` rows,
an OSV feed) and get plain data back (:mod:`patchline.store.model`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, String, and_, delete, func, or_, select, tuple_, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from patchline import _clock
from patchline._model import Ecosystem, Inventory
from patchline._redact import redact_passwords
from patchline.assess.model import AssessSkip
from patchline.errors import Error, StoreError
from patchline.store import _engine
from patchline.store._builds import BuildRecords
from patchline.store._outbox import OutboxRecords
from patchline.store._rollouts import RolloutRecords
from patchline.store._runs import RunRecords
from patchline.store._schema import (
    Advisory,
    AdvisoryPackage,
    Feed,
    Finding,
    Image,
    ImageLayer,
    ImagePackage,
    ImageRef,
    ImageScope,
    Layer,
    PackageName,
    PendingUpdate,
    SbomDocument,
    Version,
    Workload,
)
from patchline.store.model import (
    AdvisoryHit,
    AdvisoryReport,
    ExposureRow,
    FleetSummary,
    ImageRow,
    IngestResult,
    RefreshResult,
    WhereHit,
    WorkloadRow,
    WorkloadSync,
)

if TYPE_CHECKING:
    from patchline.advisories import Advisory as OsvAdvisory
    from patchline.advisories import AdvisoryFeed, OsvFeed
    from patchline.assess.model import PendingUpdate as PendingUpdateData
    from patchline.fleet.interface import Workload as WorkloadData

_OS_ECOSYSTEMS = frozenset(e.value for e in Ecosystem if e.is_os)
_CHUNK = 500  # bound parameters per IN (...) list: SQLite allows 32766, keep statements small anyway
_SBOM_FORMAT = "patchline-json"


def utcnow() -> dt.datetime:
    return _clock.now()


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _mapping(result: Any) -> dict[Any, Any]:
    """A two-column result as a dict (``dict(result)`` would take the Result for a mapping)."""
    return {key: value for key, value in result}


def _insert(conn: Connection, table: Any) -> Any:
    """An INSERT that can say ON CONFLICT on both databases."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """OCI ChainIDs: the identity of a stack of layers (image-spec, config.md "Layer ChainID")."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


def image_scopes(distro: str | None, version_id: str | None, codename: str | None) -> set[str]:
    """The distribution scopes an image is in: ``debian``, ``debian:12``, ``debian:bookworm``...

    Mirrors :meth:`patchline.advisories.EcosystemKey.applies_to`: a release
    matches the image's VERSION_ID, any dotted prefix of it, or its codename.
    """
    if not distro:
        return set()
    d = distro.lower()
    scopes = {d}
    if version_id:
        parts = version_id.split(".")
        scopes.update(f"{d}:{'.'.join(parts[:i])}" for i in range(1, len(parts) + 1))
    if codename:
        scopes.add(f"{d}:{codename.lower()}")
    return scopes


def finding_scope(distro: str | None, release: str | None) -> str:
    if distro is None:
        return ""
    return distro if release is None else f"{distro}:{release}"


def _doc_hash(doc: object) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Evaluated:
    scope: str
    severity: int
    fixed: tuple[str, ...]


class Store(BuildRecords, OutboxRecords, RolloutRecords, RunRecords):
    """The fleet store on one database. Open it with :func:`open_store`."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self._names: dict[tuple[str, str], int] = {}
        self._versions: dict[str, int] = {}
        self._parsed: dict[tuple[int, str], list[OsvAdvisory]] = {}

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # -- interning -----------------------------------------------------------------

    def _intern_names(self, conn: Connection, pairs: Iterable[tuple[str, str]], new: dict[Any, int]) -> dict[
            tuple[str, str], int]:
        wanted = sorted(set(pairs))
        out = {p: self._names[p] for p in wanted if p in self._names}
        missing = [p for p in wanted if p not in out]
        for _attempt in range(2):
            if not missing:
                break
            for chunk in _chunks(missing):
                rows = conn.execute(select(PackageName.id, PackageName.ecosystem, PackageName.name)
                                    .where(tuple_(PackageName.ecosystem, PackageName.name).in_(chunk)))
                for ident, eco, name in rows:
                    out[(eco, name)] = ident
                    self._names[(eco, name)] = ident  # committed rows only: safe to cache
            missing = [p for p in missing if p not in out]
            if missing:
                for chunk in _chunks(missing):
                    conn.execute(_insert(conn, PackageName).values(
                        [{"ecosystem": e, "name": n} for e, n in chunk]).on_conflict_do_nothing())
                for chunk in _chunks(missing):
                    rows = conn.execute(select(PackageName.id, PackageName.ecosystem, PackageName.name)
                                        .where(tuple_(PackageName.ecosystem, PackageName.name).in_(chunk)))
                    for ident, eco, name in rows:
                        out[(eco, name)] = ident
                        new[("n", eco, name)] = ident
                missing = [p for p in missing if p not in out]
        if missing:
            raise StoreError(f"could not intern {len(missing)} package names (first: {missing[0]})")
        return out

    def _intern_versions(self, conn: Connection, values: Iterable[str], new: dict[Any, int]) -> dict[str, int]:
        wanted = sorted(set(values))
        out = {v: self._versions[v] for v in wanted if v in self._versions}
        missing = [v for v in wanted if v not in out]
        if missing:
            for chunk in _chunks(missing):
                rows = conn.execute(select(Version.id, Version.version).where(Version.version.in_(chunk)))
                for ident, version in rows:
                    out[version] = ident
                    self._versions[version] = ident
            missing = [v for v in missing if v not in out]
        if missing:
            for chunk in _chunks(missing):
                conn.execute(_insert(conn, Version).values([{"version": v} for v in chunk]).on_conflict_do_nothing())
            for chunk in _chunks(missing):
                rows = conn.execute(select(Version.id, Version.version).where(Version.version.in_(chunk)))
                for ident, version in rows:
                    out[version] = ident
                    new[("v", version)] = ident
        return out

    def _commit_interned(self, new: Mapping[Any, int]) -> None:
        for key, ident in new.items():
            if key[0] == "n":
                self._names[(key[1], key[2])] = ident
            else:
                self._versions[key[1]] = ident

    def _write(self, work: Any) -> Any:
        """Run ``work(conn, new_interned)`` in a write transaction; cache interned rows once committed."""
        new: dict[Any, int] = {}

        def attempt(conn: Connection) -> Any:
            new.clear()
            return work(conn, new)

        result = _engine.run_write(self.engine, attempt)
        self._commit_interned(new)
        return result

    def _read(self) -> Any:
        return self.engine.connect()

    # -- images --------------------------------------------------------------------

    def has_image(self, config_digest: str) -> bool:
        with self._read() as conn:
            return conn.execute(select(Image.id).where(Image.config_digest == config_digest)).first() is not None

    def record_image(
        self,
        inventory: Inventory,
        *,
        refs: Sequence[tuple[str, str, str | None]] = (),
        seen_at: dt.datetime | None = None,
        replace: bool = False,
        sbom: bool = True,
    ) -> IngestResult:
        """Store an image's inventory (idempotent by config digest) and note the refs that point at it.

        ``refs`` are ``(repository, tag, manifest_digest)``; tag ``""`` for an image known by digest.
        The image's findings against the stored advisories are computed in the same transaction.
        ``replace`` rewrites the packages of an image already stored (a rescan by a newer cataloger).
        """
        now = seen_at or utcnow()
        document = None
        if sbom:
            from patchline.sbom import render_sbom

            document = zlib.compress(render_sbom(inventory, "json", created=now).encode(), 6)
        result: IngestResult = self._write(
            lambda conn, new: self._record_image(conn, new, inventory, refs, now, replace, document))
        return result

    def _record_image(self, conn: Connection, new: dict[Any, int], inventory: Inventory,
                      refs: Sequence[tuple[str, str, str | None]], now: dt.datetime, replace: bool,
                      document: bytes | None) -> IngestResult:
        info = inventory.image
        digest = str(info.config_digest)
        _feed_lock(conn, shared=True)
        existing = conn.execute(select(Image.id, Image.base_image_id).where(Image.config_digest == digest)).first()
        if existing is not None and not replace:
            image_id = existing[0]
            conn.execute(update(Image).where(Image.id == image_id).values(last_seen=now))
            self._record_refs_in(conn, image_id, refs, now)
            base = self._digest_of(conn, existing[1])
            return IngestResult(digest, False, self._count(conn, image_id), self._image_finding_count(conn, image_id),
                                base)

        distro = inventory.distro
        created = _parse_time(info.created)
        diff_ids = [str(layer.diff_id) for layer in inventory.layers]
        chains = chain_ids(diff_ids)
        values = dict(
            os=info.os, architecture=info.architecture, created=created,
            distro=distro.id if distro else None, distro_version=distro.version_id if distro else None,
            distro_codename=distro.version_codename if distro else None,
            layer_count=len(diff_ids), top_chain_id=chains[-1] if chains else None,
            package_count=len(inventory.packages), last_seen=now, scanned_at=now,
        )
        if existing is None:
            image_id = conn.execute(_insert(conn, Image).values(config_digest=digest, first_seen=now, **values)
                                    .returning(Image.id)).scalar_one()
        else:
            image_id = existing[0]
            conn.execute(update(Image).where(Image.id == image_id).values(**values))
            for table in (ImagePackage, ImageLayer, ImageScope, SbomDocument):
                conn.execute(delete(table).where(table.image_id == image_id))
        self._record_refs_in(conn, image_id, refs, now)

        # layers
        if diff_ids:
            sizes = {str(layer.diff_id): layer.size for layer in inventory.layers}
            conn.execute(_insert(conn, Layer).values([{"diff_id": d, "size": sizes[d]} for d in sorted(set(diff_ids))])
                         .on_conflict_do_nothing())
            layer_ids = _mapping(conn.execute(select(Layer.diff_id, Layer.id).where(Layer.diff_id.in_(diff_ids))))
            conn.execute(_insert(conn, ImageLayer).values([
                {"image_id": image_id, "idx": layer.index, "layer_id": layer_ids[str(layer.diff_id)],
                 "chain_id": chains[i], "created_by": layer.created_by}
                for i, layer in enumerate(inventory.layers)
            ]))

        # packages, interned
        rows = [_package_key(p) for p in inventory.packages]
        names = self._intern_names(conn, [n for r in rows for n in (r[0], r[2])], new)
        versions = self._intern_versions(conn, [v for r in rows for v in (r[1], r[3])], new)
        if rows:
            payload = [
                {"image_id": image_id, "seq": i, "name_id": names[r[0]], "version_id": versions[r[1]],
                 "match_name_id": names[r[2]], "match_version_id": versions[r[3]],
                 "introduced_in": p.introduced_in, "changed_in": p.changed_in}
                for i, (r, p) in enumerate(zip(rows, inventory.packages, strict=True))
            ]
            for chunk in _chunks(payload, 2000):
                conn.execute(_insert(conn, ImagePackage), list(chunk))

        scopes = image_scopes(distro.id if distro else None, distro.version_id if distro else None,
                              distro.version_codename if distro else None)
        if scopes:
            conn.execute(_insert(conn, ImageScope), [{"image_id": image_id, "scope": s} for s in sorted(scopes)])
        if document is not None:
            conn.execute(_insert(conn, SbomDocument).values(image_id=image_id, format=_SBOM_FORMAT, content=document,
                                                            created=now))

        base_id = self._link_base(conn, image_id, chains)
        # Findings are per (name, version): only pairs no other image holds yet need evaluating.
        pairs = {(names[r[2]], versions[r[3]]) for r in rows}
        naming = self._advisories_naming(conn, {n for n, _ in pairs})
        pairs = {p for p in pairs if p[0] in naming}
        for chunk in _chunks(sorted({n for n, _ in pairs})):
            pairs -= {(n, v) for n, v in conn.execute(
                select(ImagePackage.match_name_id, ImagePackage.match_version_id).distinct()
                .where(ImagePackage.match_name_id.in_(chunk), ImagePackage.image_id != image_id))}
        self._evaluate_pairs(conn, pairs, now, advisories=naming)
        return IngestResult(digest, existing is None, len(rows), self._image_finding_count(conn, image_id),
                            self._digest_of(conn, base_id))

    def _record_refs_in(self, conn: Connection, image_id: int | None, refs: Sequence[tuple[str, str, str | None]],
                        now: dt.datetime) -> None:
        if image_id is None:
            return
        for repository, tag, manifest_digest in refs:
            stmt = _insert(conn, ImageRef).values(image_id=image_id, repository=repository, tag=tag,
                                                  manifest_digest=manifest_digest, first_seen=now, last_seen=now)
            changes: dict[str, Any] = {"last_seen": now}
            if manifest_digest:
                changes["manifest_digest"] = manifest_digest
            conn.execute(stmt.on_conflict_do_update(index_elements=["image_id", "repository", "tag"], set_=changes))

    def record_refs(self, config_digest: str, refs: Sequence[tuple[str, str, str | None]],
                    *, seen_at: dt.datetime | None = None) -> bool:
        """Note that these refs point at a stored image now; False when the image is not stored."""
        now = seen_at or utcnow()

        def work(conn: Connection, _new: dict[Any, int]) -> bool:
            image_id = conn.execute(select(Image.id).where(Image.config_digest == config_digest)).scalar()
            if image_id is None:
                return False
            conn.execute(update(Image).where(Image.id == image_id).values(last_seen=now))
            self._record_refs_in(conn, image_id, refs, now)
            return True

        return bool(self._write(work))

    def image_for_manifest(self, manifest_digest: str) -> str | None:
        """The config digest of a stored image some repository served under this manifest digest."""
        with self._read() as conn:
            found = conn.execute(select(Image.config_digest).join(ImageRef, ImageRef.image_id == Image.id)
                                 .where(ImageRef.manifest_digest == manifest_digest).limit(1)).scalar()
        return str(found) if found is not None else None

    def _count(self, conn: Connection, image_id: int) -> int:
        return int(conn.execute(select(func.count()).select_from(ImagePackage)
                                .where(ImagePackage.image_id == image_id)).scalar_one())

    def _digest_of(self, conn: Connection, image_id: int | None) -> str | None:
        if image_id is None:
            return None
        return conn.execute(select(Image.config_digest).where(Image.id == image_id)).scalar()

    def _link_base(self, conn: Connection, image_id: int, chains: list[str]) -> int | None:
        """The base is the stored image whose whole layer stack is the longest proper prefix of this one's."""
        base_id = None
        if len(chains) > 1:
            row = conn.execute(
                select(Image.id, Image.layer_count).where(Image.top_chain_id.in_(chains[:-1]), Image.id != image_id)
                .order_by(Image.layer_count.desc(), Image.last_seen.desc()).limit(1)
            ).first()
            if row is not None:
                base_id = row[0]
                conn.execute(update(Image).where(Image.id == image_id)
                             .values(base_image_id=row[0], base_layer_count=row[1]))
        if chains:
            # This image may be a closer base of images stored before it.
            n = len(chains)
            children = select(ImageLayer.image_id).where(ImageLayer.idx == n - 1, ImageLayer.chain_id == chains[-1])
            conn.execute(
                update(Image)
                .where(Image.id.in_(children), Image.id != image_id, Image.layer_count > n,
                       or_(Image.base_layer_count.is_(None), Image.base_layer_count < n))
                .values(base_image_id=image_id, base_layer_count=n)
            )
        return base_id

    def inventory(self, config_digest: str) -> Inventory | None:
        """The stored inventory of an image (from its SBOM document), without reading the image."""
        from patchline.sbom.json import load_inventory_json

        with self._read() as conn:
            content = conn.execute(
                select(SbomDocument.content).join(Image, Image.id == SbomDocument.image_id)
                .where(Image.config_digest == config_digest, SbomDocument.format == _SBOM_FORMAT)
            ).scalar()
        if content is None:
            return None
        return load_inventory_json(zlib.decompress(content))

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
            by_config = _mapping(conn.execute(select(Image.config_digest, Image.id)
                                          .where(Image.config_digest.in_(sorted(configs))))) if configs else {}
            by_manifest = _mapping(conn.execute(
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
                    conn.execute(_insert(conn, Workload).values(runtime=runtime, host=host, container_id=w.container_id,
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
            for chunk in _chunks(gone_ids):
                conn.execute(update(Workload).where(Workload.id.in_(chunk)).values(gone_at=now))
            return WorkloadSync(new_count, updated, len(gone_ids), tuple(unresolved))

        result: WorkloadSync = self._write(work)
        return result

    def workloads(self, *, include_gone: bool = False) -> list[WorkloadRow]:
        with self._read() as conn:
            stmt = select(*Workload.__table__.c).order_by(Workload.runtime, Workload.host, Workload.name)
            if not include_gone:
                stmt = stmt.where(Workload.gone_at.is_(None))
            return [_workload_row(w) for w in conn.execute(stmt)]

    # -- findings --------------------------------------------------------------------

    def _advisories_naming(self, conn: Connection, name_ids: Iterable[int]) -> dict[int, list[int]]:
        """name id -> advisory pks that name it (not withdrawn)."""
        out: dict[int, list[int]] = defaultdict(list)
        ids = sorted(set(name_ids))
        for chunk in _chunks(ids):
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
        for chunk in _chunks(ids):
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

    def _evaluate_pairs(self, conn: Connection, pairs: set[tuple[int, int]], now: dt.datetime,
                        advisories: Mapping[int, list[int]] | None = None) -> tuple[int, int]:
        """Compute and insert the findings of (match name id, match version id) pairs; returns (evaluated, added).

        ``advisories`` restricts the evaluation to these advisory pks per name id (default: all naming it).
        """
        if not pairs:
            return 0, 0
        naming = advisories if advisories is not None else self._advisories_naming(conn, (n for n, _ in pairs))
        pairs = {p for p in pairs if naming.get(p[0])}
        if not pairs:
            return 0, 0
        parsed = self._parsed_advisories(conn, (pk for n, _ in pairs for pk in naming[n]))
        name_of = self._name_rows(conn, {n for n, _ in pairs})
        version_of = self._version_rows(conn, {v for _, v in pairs})
        rows = []
        for name_id, version_id in sorted(pairs):
            eco, name = name_of[name_id]
            version = version_of[version_id]
            for pk in naming[name_id]:
                records, revision = parsed.get(pk, ([], ""))
                for hit in _evaluate(records, eco, name, version):
                    rows.append({"advisory_pk": pk, "match_name_id": name_id, "match_version_id": version_id,
                                 "scope": hit.scope, "severity": hit.severity, "fixed_versions": " ".join(hit.fixed),
                                 "feed_revision": revision, "computed_at": now})
        for chunk in _chunks(rows, 1000):
            conn.execute(_insert(conn, Finding).on_conflict_do_nothing(), list(chunk))
        return len(pairs), len(rows)

    def _name_rows(self, conn: Connection, ids: set[int]) -> dict[int, tuple[str, str]]:
        out: dict[int, tuple[str, str]] = {}
        for chunk in _chunks(sorted(ids)):
            for ident, eco, name in conn.execute(select(PackageName.id, PackageName.ecosystem, PackageName.name)
                                                 .where(PackageName.id.in_(chunk))):
                out[ident] = (eco, name)
        return out

    def _version_rows(self, conn: Connection, ids: set[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for chunk in _chunks(sorted(ids)):
            out.update(_mapping(conn.execute(select(Version.id, Version.version).where(Version.id.in_(chunk)))))
        return out

    def _image_finding_count(self, conn: Connection, image_id: int) -> int:
        return int(conn.execute(
            select(func.count()).select_from(ImagePackage)
            .join(Finding, and_(Finding.match_name_id == ImagePackage.match_name_id,
                                Finding.match_version_id == ImagePackage.match_version_id))
            .where(ImagePackage.image_id == image_id, _scope_applies(ImagePackage.image_id))
        ).scalar_one())

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

        result: RefreshResult = self._write(work)
        return result

    def _refresh(self, conn: Connection, new: dict[Any, int], feed_name: str, revision: str,
                 incoming: dict[str, tuple[str, object, str]], skipped: list[tuple[str, str]], now: dt.datetime,
                 started: float) -> RefreshResult:
        from patchline.advisories import normalize_ecosystem, normalize_name, parse_record

        _feed_lock(conn, shared=False)
        feed_row = conn.execute(select(Feed.id, Feed.revision)
                                .where(Feed.kind == "osv", Feed.name == feed_name)).first()
        if feed_row is None:
            feed_id = conn.execute(_insert(conn, Feed).values(kind="osv", name=feed_name, revision=revision,
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
        name_ids = self._intern_names(conn, [n for s in names_of.values() for n in s], new)

        # The findings the changed and removed advisories had, and the images they exposed, go first.
        touched_pks = [stored[i].id for i in changed if i in stored] + removed
        removed_findings = 0
        affected_images: set[int] = set()
        for chunk in _chunks(touched_pks):
            affected_images |= self._images_with_findings_of(conn, chunk)
            removed_findings += conn.execute(delete(Finding).where(Finding.advisory_pk.in_(chunk))).rowcount or 0
            conn.execute(delete(AdvisoryPackage).where(AdvisoryPackage.advisory_pk.in_(chunk)))
        for chunk in _chunks(removed):
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
                pk = conn.execute(_insert(conn, Advisory).values(feed_id=feed_id, advisory_id=ident, first_seen=now,
                                                                 **values).returning(Advisory.id)).scalar_one()
            pk_of[ident] = pk
            self._parsed[(pk, content_hash)] = parsed[ident]
            rows = [{"advisory_pk": pk, "name_id": name_ids[n]} for n in sorted(names_of[ident])]
            if rows:
                conn.execute(_insert(conn, AdvisoryPackage).on_conflict_do_nothing(), rows)

        # Recompute: for each name a changed advisory names, the distinct versions the fleet holds.
        naming: dict[int, list[int]] = defaultdict(list)
        for ident in changed:
            for n in names_of[ident]:
                naming[name_ids[n]].append(pk_of[ident])
        pairs: set[tuple[int, int]] = set()
        for chunk in _chunks(sorted(naming)):
            pairs.update((n, v) for n, v in conn.execute(
                select(ImagePackage.match_name_id, ImagePackage.match_version_id).distinct()
                .where(ImagePackage.match_name_id.in_(chunk))))
        conn.execute(update(Feed).where(Feed.id == feed_id).values(revision=revision))
        evaluated, added = self._evaluate_pairs(conn, pairs, now, advisories=naming)
        for chunk in _chunks(list(pk_of.values())):
            affected_images |= self._images_with_findings_of(conn, chunk)
        return RefreshResult(
            feed=feed_name, revision=revision, previous_revision=previous,
            advisories_added=added_count, advisories_changed=len(changed) - added_count,
            advisories_removed=len(removed), advisories_unchanged=len(incoming) - len(changed),
            packages_evaluated=evaluated, findings_added=added, findings_removed=removed_findings,
            images_affected=len(affected_images), skipped=tuple(skipped), seconds=time.perf_counter() - started,
        )

    def _images_with_findings_of(self, conn: Connection, advisory_pks: Sequence[int]) -> set[int]:
        rows = conn.execute(
            select(ImagePackage.image_id).distinct()
            .join(Finding, and_(Finding.match_name_id == ImagePackage.match_name_id,
                                Finding.match_version_id == ImagePackage.match_version_id))
            .where(Finding.advisory_pk.in_(advisory_pks), _scope_applies(ImagePackage.image_id))
        )
        return set(rows.scalars())

    # -- pending updates -------------------------------------------------------------

    def record_pending(self, config_digest: str, pending: Sequence[PendingUpdateData], *, revision: str,
                       now: dt.datetime | None = None) -> bool:
        """Replace an image's pending updates with this assessment's; False when the image is not stored."""
        now = now or utcnow()

        def work(conn: Connection, new: dict[Any, int]) -> bool:
            image_id = conn.execute(select(Image.id).where(Image.config_digest == config_digest)).scalar()
            if image_id is None:
                return False
            conn.execute(delete(PendingUpdate).where(PendingUpdate.image_id == image_id))
            conn.execute(update(Image).where(Image.id == image_id).values(assess_unknown=None))  # checked now
            if not pending:
                return True
            names = self._intern_names(conn, [(p.package.ecosystem, p.package.name) for p in pending], new)
            versions = self._intern_versions(conn, [v for p in pending for v in (p.package.version, p.candidate)], new)
            rows = {}
            for p in pending:
                rows[names[(p.package.ecosystem, p.package.name)]] = {
                    "image_id": image_id, "name_id": names[(p.package.ecosystem, p.package.name)],
                    "installed_version_id": versions[p.package.version], "candidate_version_id": versions[p.candidate],
                    "suite": p.suite, "source_name": p.source_name, "cves": " ".join(p.cves),
                    "source_revision": revision, "computed_at": now}
            conn.execute(_insert(conn, PendingUpdate), list(rows.values()))
            return True

        return bool(self._write(work))

    def record_unknown(self, config_digest: str, reason: str) -> bool:
        """Note why an image's pending updates could not be checked; the pending updates known before stay
        (exposed beats unknown). :meth:`record_pending` clears it. False when the image is not stored."""

        def work(conn: Connection, _new: dict[Any, int]) -> bool:
            done = conn.execute(update(Image).where(Image.config_digest == config_digest)
                                .values(assess_unknown=reason[:2000]))
            return bool(done.rowcount)

        return bool(self._write(work))

    def record_update_source(self, name: str, revision: str, *, now: dt.datetime | None = None) -> str:
        """Remember an update source's revision; returns the previous one ("" if new)."""
        now = now or utcnow()

        def work(conn: Connection, _new: dict[Any, int]) -> str:
            row = conn.execute(select(Feed.id, Feed.revision).where(Feed.kind == "apt", Feed.name == name)).first()
            if row is None:
                conn.execute(_insert(conn, Feed).values(kind="apt", name=name, revision=revision, refreshed_at=now))
                return ""
            conn.execute(update(Feed).where(Feed.id == row[0]).values(revision=revision, refreshed_at=now))
            return str(row[1])

        return str(self._write(work))

    def unknown_for(self, config_digests: Iterable[str]) -> dict[str, str]:
        """config digest -> why patchline could not assess it, for those of ``config_digests`` it could not."""
        out: dict[str, str] = {}
        with self._read() as conn:
            for chunk in _chunks(sorted(set(config_digests)), 5000):
                for digest, why in conn.execute(select(Image.config_digest, Image.assess_unknown)
                                                .where(Image.config_digest.in_(chunk),
                                                       Image.assess_unknown.is_not(None))):
                    out[digest] = why
        return out

    def image_digests(self) -> list[str]:
        """Config digests of every stored image, oldest first."""
        with self._read() as conn:
            return list(conn.execute(select(Image.config_digest).order_by(Image.id)).scalars())

    # -- queries ---------------------------------------------------------------------

    def where(self, package: str, *, version_below: str | None = None, ecosystem: str | None = None,
              running_only: bool = False) -> list[WhereHit]:
        """Images (and their running workloads) that hold ``package``; binary or source name.

        ``version_below`` keeps versions lower than it, compared in each ecosystem's own scheme.
        """
        from patchline.advisories import normalize_name
        from patchline.versions import InvalidVersion, scheme_for

        ecosystems = [ecosystem] if ecosystem else sorted({e.value for e in Ecosystem})
        with self._read() as conn:
            wanted = [(e, normalize_name(e, package)) for e in ecosystems]
            name_ids = _mapping(conn.execute(select(PackageName.id, PackageName.ecosystem)
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
                       d2.c.diff_id.label("changed_diff_id"), *_image_columns(img))
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
            names = self._name_rows(conn, {r.name_id for r in found} | {r.match_name_id for r in found})
            versions = self._version_rows(conn, {r.version_id for r in found} | {r.match_version_id for r in found})
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
            refs = self._refs_of(conn, ImageRef.image_id.in_(holders))
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
                image = images[row.image_id] = _image_row(row, refs.get(row.image_id, ()))
            source = r["match_name"] if r["match_name_id"] != r["name_id"] else None
            hits.append(WhereHit(
                image=image, ecosystem=r["ecosystem"], name=r["name"], version=r["version"],
                source_name=source, source_version=r["match_version"] if source else None,
                introduced_in=r["introduced_in"], introduced_diff_id=row.introduced_diff_id,
                changed_in=r["changed_in"], changed_diff_id=row.changed_diff_id, workloads=tuple(running),
            ))
        hits.sort(key=lambda h: (-len(h.workloads), h.image.refs[:1], h.name, h.version))
        return hits

    def _refs_of(self, conn: Connection, condition: Any) -> dict[int, tuple[str, ...]]:
        """image id -> its refs, most recently seen first.

        A tag names only the image it points at now (the one seen under it last): a superseded image is named
        by its digest (``repository@sha256:...``), so an old and a new image never both show ``:latest``.
        """
        seen: dict[int, list[tuple[dt.datetime, str]]] = defaultdict(list)
        rows = list(conn.execute(select(ImageRef.image_id, ImageRef.repository, ImageRef.tag,
                                        ImageRef.manifest_digest, _raw_time(ImageRef.last_seen)).where(condition)))
        current = self._current_tag_targets(conn) if any(r.tag for r in rows) else {}
        for r in rows:
            if r.tag and current.get((r.repository, r.tag), r.image_id) == r.image_id:
                name = f"{r.repository}:{r.tag}"
            elif r.manifest_digest:
                name = f"{r.repository}@{r.manifest_digest}"
            else:
                name = f"{r.repository}:{r.tag} (superseded)"
            if name not in (n for _, n in seen[r.image_id]):
                seen[r.image_id].append((_time(r.last_seen), name))
        return {i: tuple(n for _, n in sorted(v, reverse=True)) for i, v in seen.items()}

    def _image_rows(self, conn: Connection, ids: set[int]) -> dict[int, ImageRow]:
        img = Image.__table__
        out = {}
        for chunk in _chunks(sorted(ids), 5000):
            refs = self._refs_of(conn, ImageRef.image_id.in_(chunk))
            for r in conn.execute(select(img.c.id.label("image_id"), *_image_columns(img)).where(img.c.id.in_(chunk))):
                out[r.image_id] = _image_row(r, refs.get(r.image_id, ()))
        return out

    def _running_by_image(self, conn: Connection, ids: set[int]) -> dict[int, list[WorkloadRow]]:
        out: dict[int, list[WorkloadRow]] = defaultdict(list)
        for chunk in _chunks(sorted(ids)):
            for w in conn.execute(select(*Workload.__table__.c)
                                  .where(Workload.image_id.in_(chunk), Workload.gone_at.is_(None))
                                  .order_by(Workload.name)):
                out[w.image_id].append(_workload_row(w))
        return out

    def _diff_ids(self, conn: Connection, ids: set[int]) -> dict[int, dict[int, str]]:
        out: dict[int, dict[int, str]] = defaultdict(dict)
        for chunk in _chunks(sorted(ids)):
            for image_id, idx, diff_id in conn.execute(
                    select(ImageLayer.image_id, ImageLayer.idx, Layer.diff_id)
                    .join(Layer, Layer.id == ImageLayer.layer_id).where(ImageLayer.image_id.in_(chunk))):
                out[image_id][idx] = diff_id
        return out

    def advisory(self, advisory_id: str) -> AdvisoryReport:
        """Every image and workload an advisory (by ID or alias) touches, and whether a fix is available."""
        with self._read() as conn:
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
                    .where(Finding.advisory_pk.in_(sorted(pks)), _scope_applies(ip.c.image_id)))
            found = list(conn.execute(stmt))
            image_ids = {r.image_id for r in found}
            images = self._image_rows(conn, image_ids)
            running = self._running_by_image(conn, image_ids)
            pending: set[tuple[int, int]] = set()
            for chunk in _chunks(sorted(image_ids)):
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
        from patchline.assess.model import Severity

        now = now or utcnow()
        with self._read() as conn:
            ip = ImagePackage.__table__
            exposure = {r.image_id: r for r in conn.execute(
                select(ip.c.image_id,
                       func.max(Finding.severity).label("worst"),
                       func.count().label("n"))
                .join(Finding, and_(Finding.match_name_id == ip.c.match_name_id,
                                    Finding.match_version_id == ip.c.match_version_id))
                .where(_scope_applies(ip.c.image_id))
                .group_by(ip.c.image_id))}
            fixable = {r.image_id: r for r in conn.execute(
                select(ip.c.image_id, func.max(Finding.severity).label("worst"), func.count().label("n"))
                .join(Finding, and_(Finding.match_name_id == ip.c.match_name_id,
                                    Finding.match_version_id == ip.c.match_version_id))
                .where(_scope_applies(ip.c.image_id), Finding.fixed_versions != "")
                .group_by(ip.c.image_id))}
            pending = _mapping(conn.execute(select(PendingUpdate.image_id, func.count())
                                            .group_by(PendingUpdate.image_id)))
            running = _mapping(conn.execute(select(Workload.image_id, func.count())
                                        .where(Workload.gone_at.is_(None), Workload.image_id.is_not(None))
                                        .group_by(Workload.image_id)))
            images_meta = list(conn.execute(select(Image.id, Image.base_image_id)))
            ids = {r.id for r in images_meta}
            rows = self._image_rows(conn, ids)
            current_of = self._current_tag_targets(conn)
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

    def _current_tag_targets(self, conn: Connection) -> dict[tuple[str, str], int]:
        """(repository, tag) -> the image it pointed at when last seen."""
        out: dict[tuple[str, str], tuple[dt.datetime, int]] = {}
        for r in conn.execute(select(ImageRef.repository, ImageRef.tag, ImageRef.last_seen, ImageRef.image_id)
                              .where(ImageRef.tag != "")):
            seen = _utc(r.last_seen) or utcnow()
            key = (r.repository, r.tag)
            if key not in out or out[key][0] < seen:
                out[key] = (seen, r.image_id)
        return {k: v[1] for k, v in out.items()}

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables (for reports and tests)."""
        tables = {"images": Image, "image_packages": ImagePackage, "package_names": PackageName, "versions": Version,
                  "workloads": Workload, "advisories": Advisory, "findings": Finding, "pending_updates": PendingUpdate,
                  "image_refs": ImageRef, "layers": Layer}
        with self._read() as conn:
            return {name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                    for name, t in tables.items()}


_FEED_LOCK = 0x7061_7466  # "patf"


def _feed_lock(conn: Connection, *, shared: bool) -> None:
    """Ingests (shared) and feed refreshes (exclusive) never overlap on PostgreSQL.

    Otherwise an ingest could evaluate a new package version against the advisories
    it saw, while a refresh that commits a new advisory meanwhile does not see that
    version yet, and the finding would be missed by both. SQLite serializes writers anyway.
    """
    if conn.dialect.name == "postgresql":
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        conn.execute(select(getattr(func, function)(_FEED_LOCK)))


def _raw_time(column: Any) -> Any:
    """A timestamp column read as the driver gives it: SQLAlchemy's SQLite parser costs microseconds a value."""
    return type_coerce(column, String).label(column.key)


def _time(value: object) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _image_columns(img: Any) -> tuple[Any, ...]:
    return (img.c.config_digest, _raw_time(img.c.created), img.c.distro, img.c.distro_version, img.c.package_count,
            _raw_time(img.c.first_seen), _raw_time(img.c.last_seen), img.c.assess_unknown)


def _image_row(r: Any, refs: tuple[str, ...]) -> ImageRow:
    distro = " ".join(x for x in (r.distro, r.distro_version) if x) or None
    return ImageRow(r.config_digest, refs, _time(r.created) if r.created else None, distro, r.package_count,
                    _time(r.first_seen), _time(r.last_seen), r.assess_unknown)


def _scope_applies(image_id_column: Any) -> Any:
    """A finding applies to an image when it is scope-free or the image is in its scope."""
    in_scope = select(ImageScope.image_id).where(ImageScope.image_id == image_id_column,
                                                 ImageScope.scope == Finding.scope).exists()
    return or_(Finding.scope == "", in_scope)


def _package_key(p: Any) -> tuple[tuple[str, str], str, tuple[str, str], str]:
    """((eco, name), version, (eco, match name), match version) of an inventory package."""
    from patchline.advisories import normalize_name

    eco = p.ecosystem.value
    name = normalize_name(eco, p.name)
    if eco in _OS_ECOSYSTEMS:
        match = (eco, normalize_name(eco, p.source_name or p.name))
        return (eco, name), p.version, match, p.source_version or p.version
    return (eco, name), p.version, (eco, name), p.version


def _evaluate(records: Sequence[OsvAdvisory], ecosystem: str, name: str, version: str) -> list[_Evaluated]:
    """Which scopes of these records' affected entries hit (ecosystem, name) at version."""
    from patchline.advisories import affects, finding_severity, normalize_ecosystem, normalize_name
    from patchline.versions import InvalidVersion, RangeError, UnknownEcosystem, fixed_versions

    out: dict[str, _Evaluated] = {}
    for record in records:
        for affected in record.affected:
            key = normalize_ecosystem(affected.ecosystem)
            if key is None or key.ecosystem != ecosystem or normalize_name(ecosystem, affected.name) != name:
                continue
            try:
                hit = affects(affected, version)
            except (InvalidVersion, RangeError, UnknownEcosystem):
                continue  # the per-image `patchline scan` reports these as skips
            if not hit:
                continue
            scope = finding_scope(key.distro, key.release)
            rated, _scores = finding_severity(record, [affected.severity_text])
            severity = int(rated)
            fixed = fixed_versions(affected.ranges)
            prior = out.get(scope)
            if prior is not None:
                fixed = tuple(dict.fromkeys((*prior.fixed, *fixed)))
                severity = max(severity, prior.severity)
            out[scope] = _Evaluated(scope, severity, fixed)
    return list(out.values())


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


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Go writes nanoseconds; Python takes at most microseconds.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _workload_row(w: Any) -> WorkloadRow:
    """A ``workloads`` table row as plain data."""
    return WorkloadRow(
        runtime=w.runtime, host=w.host, namespace=w.namespace, name=w.name, container_id=w.container_id,
        image_ref=w.image_ref, image_digest=w.image_digest, started_at=_utc(w.started_at),
        first_seen=_utc(w.first_seen) or utcnow(), last_seen=_utc(w.last_seen) or utcnow(), gone_at=_utc(w.gone_at),
    )


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """Open (and by default create or migrate) the store at ``url`` (default: :func:`default_db_url`)."""
    url = _engine.as_url(url) if url else _engine.default_db_url()
    engine = _engine.make_engine(url)
    try:
        if migrate:
            if _engine.current_revision(engine) != _engine.head_revision():
                _engine.upgrade(engine)
        else:
            current = _engine.current_revision(engine)
            if current != _engine.head_revision():
                raise StoreError(f"the store at {_display(url)} is at schema {current or 'none'}, not "
                                 f"{_engine.head_revision()}; run `patchline db upgrade`")
    except DBAPIError as exc:
        engine.dispose()
        raise _engine.translate(exc, f"opening the store at {_display(url)}",
                                secrets=_engine.url_passwords(engine)) from None
    except Error:
        engine.dispose()
        raise
    return Store(engine, url)


def _display(url: str) -> str:
    """A URL without its password."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a URL that does not parse is shown as given, but for its password
        return redact_passwords(url)
