"""Images and their packages: ingest (interned, idempotent by config digest), refs, layers, base images, the
stored inventories, and the image rows every query shows."""

from __future__ import annotations

import datetime as dt
import hashlib
import zlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, func, or_, select, update

from patchline._model import Ecosystem, Inventory
from patchline.store._database import Database
from patchline.store._findings import FindingMatcher, feed_lock, image_finding_count
from patchline.store._schema import Image, ImageLayer, ImagePackage, ImageRef, ImageScope, Layer, SbomDocument
from patchline.store._sql import as_time, chunks, mapping, raw_time, upsert, utc, utcnow
from patchline.store.model import ImageRow, IngestResult

_OS_ECOSYSTEMS = frozenset(e.value for e in Ecosystem if e.is_os)
_SBOM_FORMAT = "patchline-json"


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


class Images:
    """Images, their refs and packages, and their stored inventories."""

    def __init__(self, db: Database, matcher: FindingMatcher) -> None:
        self._db = db
        self._matcher = matcher

    def has_image(self, config_digest: str) -> bool:
        with self._db.read() as conn:
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
        result: IngestResult = self._db.write(
            lambda conn, new: self._record_image(conn, new, inventory, refs, now, replace, document))
        return result

    def _record_image(self, conn: Connection, new: dict[Any, int], inventory: Inventory,
                      refs: Sequence[tuple[str, str, str | None]], now: dt.datetime, replace: bool,
                      document: bytes | None) -> IngestResult:
        info = inventory.image
        digest = str(info.config_digest)
        feed_lock(conn, shared=True)
        existing = conn.execute(select(Image.id, Image.base_image_id).where(Image.config_digest == digest)).first()
        if existing is not None and not replace:
            image_id = existing[0]
            conn.execute(update(Image).where(Image.id == image_id).values(last_seen=now))
            _record_refs_in(conn, image_id, refs, now)
            base = _digest_of(conn, existing[1])
            return IngestResult(digest, False, _count(conn, image_id), image_finding_count(conn, image_id), base)

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
            image_id = conn.execute(upsert(conn, Image).values(config_digest=digest, first_seen=now, **values)
                                    .returning(Image.id)).scalar_one()
        else:
            image_id = existing[0]
            conn.execute(update(Image).where(Image.id == image_id).values(**values))
            for table in (ImagePackage, ImageLayer, ImageScope, SbomDocument):
                conn.execute(delete(table).where(table.image_id == image_id))
        _record_refs_in(conn, image_id, refs, now)

        # layers
        if diff_ids:
            sizes = {str(layer.diff_id): layer.size for layer in inventory.layers}
            conn.execute(upsert(conn, Layer).values([{"diff_id": d, "size": sizes[d]} for d in sorted(set(diff_ids))])
                         .on_conflict_do_nothing())
            layer_ids = mapping(conn.execute(select(Layer.diff_id, Layer.id).where(Layer.diff_id.in_(diff_ids))))
            conn.execute(upsert(conn, ImageLayer).values([
                {"image_id": image_id, "idx": layer.index, "layer_id": layer_ids[str(layer.diff_id)],
                 "chain_id": chains[i], "created_by": layer.created_by}
                for i, layer in enumerate(inventory.layers)
            ]))

        # packages, interned
        rows = [_package_key(p) for p in inventory.packages]
        names = self._db.interner.names(conn, [n for r in rows for n in (r[0], r[2])], new)
        versions = self._db.interner.versions(conn, [v for r in rows for v in (r[1], r[3])], new)
        if rows:
            payload = [
                {"image_id": image_id, "seq": i, "name_id": names[r[0]], "version_id": versions[r[1]],
                 "match_name_id": names[r[2]], "match_version_id": versions[r[3]],
                 "introduced_in": p.introduced_in, "changed_in": p.changed_in}
                for i, (r, p) in enumerate(zip(rows, inventory.packages, strict=True))
            ]
            for chunk in chunks(payload, 2000):
                conn.execute(upsert(conn, ImagePackage), list(chunk))

        scopes = image_scopes(distro.id if distro else None, distro.version_id if distro else None,
                              distro.version_codename if distro else None)
        if scopes:
            conn.execute(upsert(conn, ImageScope), [{"image_id": image_id, "scope": s} for s in sorted(scopes)])
        if document is not None:
            conn.execute(upsert(conn, SbomDocument).values(image_id=image_id, format=_SBOM_FORMAT, content=document,
                                                           created=now))

        base_id = _link_base(conn, image_id, chains)
        # Findings are per (name, version): only pairs no other image holds yet need evaluating.
        pairs = {(names[r[2]], versions[r[3]]) for r in rows}
        naming = self._matcher.advisories_naming(conn, {n for n, _ in pairs})
        pairs = {p for p in pairs if p[0] in naming}
        for chunk in chunks(sorted({n for n, _ in pairs})):
            pairs -= {(n, v) for n, v in conn.execute(
                select(ImagePackage.match_name_id, ImagePackage.match_version_id).distinct()
                .where(ImagePackage.match_name_id.in_(chunk), ImagePackage.image_id != image_id))}
        self._matcher.evaluate_pairs(conn, pairs, now, advisories=naming)
        return IngestResult(digest, existing is None, len(rows), image_finding_count(conn, image_id),
                            _digest_of(conn, base_id))

    def record_refs(self, config_digest: str, refs: Sequence[tuple[str, str, str | None]],
                    *, seen_at: dt.datetime | None = None) -> bool:
        """Note that these refs point at a stored image now; False when the image is not stored."""
        now = seen_at or utcnow()

        def work(conn: Connection, _new: dict[Any, int]) -> bool:
            image_id = conn.execute(select(Image.id).where(Image.config_digest == config_digest)).scalar()
            if image_id is None:
                return False
            conn.execute(update(Image).where(Image.id == image_id).values(last_seen=now))
            _record_refs_in(conn, image_id, refs, now)
            return True

        return bool(self._db.write(work))

    def image_for_manifest(self, manifest_digest: str) -> str | None:
        """The config digest of a stored image some repository served under this manifest digest."""
        with self._db.read() as conn:
            found = conn.execute(select(Image.config_digest).join(ImageRef, ImageRef.image_id == Image.id)
                                 .where(ImageRef.manifest_digest == manifest_digest).limit(1)).scalar()
        return str(found) if found is not None else None

    def inventory(self, config_digest: str) -> Inventory | None:
        """The stored inventory of an image (from its SBOM document), without reading the image."""
        from patchline.sbom.json import load_inventory_json

        with self._db.read() as conn:
            content = conn.execute(
                select(SbomDocument.content).join(Image, Image.id == SbomDocument.image_id)
                .where(Image.config_digest == config_digest, SbomDocument.format == _SBOM_FORMAT)
            ).scalar()
        if content is None:
            return None
        return load_inventory_json(zlib.decompress(content))

    def image_digests(self) -> list[str]:
        """Config digests of every stored image, oldest first."""
        with self._db.read() as conn:
            return list(conn.execute(select(Image.config_digest).order_by(Image.id)).scalars())


def _record_refs_in(conn: Connection, image_id: int | None, refs: Sequence[tuple[str, str, str | None]],
                    now: dt.datetime) -> None:
    if image_id is None:
        return
    for repository, tag, manifest_digest in refs:
        stmt = upsert(conn, ImageRef).values(image_id=image_id, repository=repository, tag=tag,
                                             manifest_digest=manifest_digest, first_seen=now, last_seen=now)
        changes: dict[str, Any] = {"last_seen": now}
        if manifest_digest:
            changes["manifest_digest"] = manifest_digest
        conn.execute(stmt.on_conflict_do_update(index_elements=["image_id", "repository", "tag"], set_=changes))


def _count(conn: Connection, image_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(ImagePackage)
                            .where(ImagePackage.image_id == image_id)).scalar_one())


def _digest_of(conn: Connection, image_id: int | None) -> str | None:
    if image_id is None:
        return None
    return conn.execute(select(Image.config_digest).where(Image.id == image_id)).scalar()


def _link_base(conn: Connection, image_id: int, chains: list[str]) -> int | None:
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


def current_tag_targets(conn: Connection) -> dict[tuple[str, str], int]:
    """(repository, tag) -> the image it pointed at when last seen."""
    out: dict[tuple[str, str], tuple[dt.datetime, int]] = {}
    for r in conn.execute(select(ImageRef.repository, ImageRef.tag, ImageRef.last_seen, ImageRef.image_id)
                          .where(ImageRef.tag != "")):
        seen = utc(r.last_seen) or utcnow()
        key = (r.repository, r.tag)
        if key not in out or out[key][0] < seen:
            out[key] = (seen, r.image_id)
    return {k: v[1] for k, v in out.items()}


def refs_of(conn: Connection, condition: Any) -> dict[int, tuple[str, ...]]:
    """image id -> its refs, most recently seen first.

    A tag names only the image it points at now (the one seen under it last): a superseded image is named
    by its digest (``repository@sha256:...``), so an old and a new image never both show ``:latest``.
    """
    seen: dict[int, list[tuple[dt.datetime, str]]] = defaultdict(list)
    rows = list(conn.execute(select(ImageRef.image_id, ImageRef.repository, ImageRef.tag,
                                    ImageRef.manifest_digest, raw_time(ImageRef.last_seen)).where(condition)))
    current = current_tag_targets(conn) if any(r.tag for r in rows) else {}
    for r in rows:
        if r.tag and current.get((r.repository, r.tag), r.image_id) == r.image_id:
            name = f"{r.repository}:{r.tag}"
        elif r.manifest_digest:
            name = f"{r.repository}@{r.manifest_digest}"
        else:
            name = f"{r.repository}:{r.tag} (superseded)"
        if name not in (n for _, n in seen[r.image_id]):
            seen[r.image_id].append((as_time(r.last_seen), name))
    return {i: tuple(n for _, n in sorted(v, reverse=True)) for i, v in seen.items()}


def image_rows(conn: Connection, ids: set[int]) -> dict[int, ImageRow]:
    img = Image.__table__
    out = {}
    for chunk in chunks(sorted(ids), 5000):
        refs = refs_of(conn, ImageRef.image_id.in_(chunk))
        for r in conn.execute(select(img.c.id.label("image_id"), *image_columns(img)).where(img.c.id.in_(chunk))):
            out[r.image_id] = image_row(r, refs.get(r.image_id, ()))
    return out


def image_columns(img: Any) -> tuple[Any, ...]:
    return (img.c.config_digest, raw_time(img.c.created), img.c.distro, img.c.distro_version, img.c.package_count,
            raw_time(img.c.first_seen), raw_time(img.c.last_seen), img.c.assess_unknown)


def image_row(r: Any, refs: tuple[str, ...]) -> ImageRow:
    distro = " ".join(x for x in (r.distro, r.distro_version) if x) or None
    return ImageRow(r.config_digest, refs, as_time(r.created) if r.created else None, distro, r.package_count,
                    as_time(r.first_seen), as_time(r.last_seen), r.assess_unknown)


def _package_key(p: Any) -> tuple[tuple[str, str], str, tuple[str, str], str]:
    """((eco, name), version, (eco, match name), match version) of an inventory package."""
    from patchline.advisories import normalize_name

    eco = p.ecosystem.value
    name = normalize_name(eco, p.name)
    if eco in _OS_ECOSYSTEMS:
        match = (eco, normalize_name(eco, p.source_name or p.name))
        return (eco, name), p.version, match, p.source_version or p.version
    return (eco, name), p.version, (eco, name), p.version


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
