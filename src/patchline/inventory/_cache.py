"""A content-addressed cache of layer catalogs, keyed by diff_id and cataloger versions.

Entries are written to a temporary file in the cache directory and renamed into
place, so concurrent scans never see a partial entry; two scans that catalog
the same layer at once both write the same content and the last rename wins.
A corrupt entry is treated as a miss and overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from patchline._model import Ecosystem
from patchline._paths import cache_home
from patchline.catalog.interface import Cataloger, FileResult, Found
from patchline.errors import CacheError
from patchline.inventory._walk import WALKER_VERSION, CatalogedFile, LayerCatalog, content_match

_FORMAT = 1


def default_cache_dir() -> Path:
    return cache_home()


def fingerprint(catalogers: Sequence[Cataloger]) -> str:
    """Changes whenever a cataloger's version, globs or limits change."""
    parts = [f"walker={WALKER_VERSION}", f"format={_FORMAT}"]
    for c in sorted(catalogers, key=lambda c: c.name):
        content = content_match(c)
        parts.append(f"{c.name}={c.version}:{','.join(sorted(c.globs))}:{c.max_file_size}"
                     + ("" if content is None else f":{content.executable}:{','.join(m.hex() for m in content.magic)}"))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _found_to_json(f: Found) -> list[Any]:
    return [f.ecosystem.value, f.name, f.version, f.source_name, f.source_version, f.arch,
            list(f.licenses), list(f.owned_paths), f.archive_path]


def _found_from_json(v: list[Any]) -> Found:
    return Found(Ecosystem(v[0]), v[1], v[2], v[3], v[4], v[5], tuple(v[6]), tuple(v[7]), v[8] if len(v) > 8 else "")


def layer_to_json(layer: LayerCatalog) -> dict[str, Any]:
    return {
        "format": _FORMAT,
        "diff_id": layer.diff_id,
        "entries": layer.entries,
        "size": layer.size,
        "compression": layer.compression,
        "whiteouts": list(layer.whiteouts),
        "opaque_dirs": list(layer.opaque_dirs),
        "problems": [list(p) for p in layer.problems],
        "files": [
            {
                "path": f.path,
                "cataloger": f.cataloger,
                "kind": f.kind,
                "error": f.error,
                "text": f.text,
                "link": f.link,
                "packages": None if f.result is None else [_found_to_json(p) for p in f.result.packages],
                "skipped": None if f.result is None else list(f.result.skipped),
            }
            for f in layer.files
        ],
    }


def layer_from_json(doc: dict[str, Any]) -> LayerCatalog:
    if doc.get("format") != _FORMAT:
        raise ValueError("cache entry of another format")
    files = tuple(
        CatalogedFile(
            path=f["path"],
            cataloger=f["cataloger"],
            kind=f["kind"],
            result=None if f["packages"] is None else FileResult(
                tuple(_found_from_json(p) for p in f["packages"]), tuple(f["skipped"])
            ),
            error=f["error"],
            text=f["text"],
            link=f["link"],
        )
        for f in doc["files"]
    )
    return LayerCatalog(
        diff_id=doc["diff_id"],
        files=files,
        whiteouts=tuple(doc["whiteouts"]),
        opaque_dirs=tuple(doc["opaque_dirs"]),
        problems=tuple((p[0], p[1]) for p in doc["problems"]),
        entries=doc["entries"],
        size=doc["size"],
        compression=doc["compression"],
    )


class LayerCache:
    """Layer catalogs on disk under ``root/layers/<algorithm>/<hex>-<fingerprint>.json``."""

    def __init__(self, root: Path, catalogers: Sequence[Cataloger]) -> None:
        self.root = root
        self._fingerprint = fingerprint(catalogers)

    def _path(self, diff_id: str) -> Path:
        algorithm, _, hexpart = diff_id.partition(":")
        if not algorithm.isalnum() or not hexpart or not all(c in "0123456789abcdef" for c in hexpart):
            raise CacheError(f"refusing to cache a layer with a malformed diff_id {diff_id!r}")
        return self.root / "layers" / algorithm / f"{hexpart}-{self._fingerprint}.json"

    def _pair_path(self, blob_digest: str) -> Path:
        algorithm, _, hexpart = blob_digest.partition(":")
        if not algorithm.isalnum() or not hexpart or not all(c in "0123456789abcdef" for c in hexpart):
            raise CacheError(f"refusing to cache a blob with a malformed digest {blob_digest!r}")
        return self.root / "pairs" / algorithm / hexpart

    def verified_diff_id(self, blob_digest: str) -> str | None:
        """The diff_id a blob with this digest was read and verified to unpack to, if one was."""
        try:
            text = self._pair_path(blob_digest).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text or None

    def put_pair(self, blob_digest: str, diff_id: str) -> None:
        """Record that the blob ``blob_digest`` was read and unpacks to ``diff_id`` (both checked as it streamed).

        A cache hit rests on this pair, never on the diff_id an image config merely claims: an archive could
        claim a known clean layer's diff_id and carry other files."""
        self._path(diff_id)  # validates it
        _write_atomically(self._pair_path(blob_digest), diff_id + "\n")

    def get(self, diff_id: str) -> LayerCatalog | None:
        path = self._path(diff_id)
        try:
            with path.open("rb") as fh:
                doc = json.load(fh)
            layer = layer_from_json(doc)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None  # unreadable or partial entry: a miss, rewritten by the next put
        return layer if layer.diff_id == diff_id else None

    def put(self, layer: LayerCatalog) -> None:
        _write_atomically(self._path(layer.diff_id), json.dumps(layer_to_json(layer), separators=(",", ":")))


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: concurrent scans see all or nothing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise CacheError(f"cannot write the layer cache at {path.parent}: {exc}") from exc
