"""The CVEs and urgency an update's Debian changelog names since the installed version.

For each pending update the candidate ``.deb`` is downloaded (verified against
the SHA256 and size the verified index gives), its ``data.tar.*`` is streamed
until ``usr/share/doc/<package>/changelog.Debian.gz`` (or ``changelog.gz`` for
native packages), and the entries newer than the installed version are read.
A package whose doc directory is a symlink to another package's has no
changelog of its own: another binary of the same source in the same update is
used instead, and a note says so. A failure is recorded in
:attr:`PendingUpdate.changelog_error`; it never aborts the assessment.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import io
import json
import lzma
import os
import posixpath
import re
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

import httpx
from debian.changelog import Changelog

from patchline._findings import PendingUpdate
from patchline._http import tls_context
from patchline.errors import IndexFormatError, IndexIntegrityError, UpdateSourceError
from patchline.updates._candidates import CandidateDeb, UpgradePlan
from patchline.updates._packages import decompress_capped
from patchline.updates._relations import compare_versions

__all__ = [
    "MAX_CHANGELOG_TEXT",
    "ChangelogEntry",
    "ChangelogResult",
    "changelog_entries",
    "changelog_text",
    "cves_since",
    "extract_changelog",
    "iter_ar_members",
    "read_changelogs",
]

CVE_RE = re.compile(r"CVE-\d{4}-\d{4,}")
_URGENCY = {"low": 1, "medium": 2, "high": 3, "emergency": 4, "critical": 5}
_CACHE_VERSION = 2
_MAX_CHANGELOG = 32 * 1024 * 1024  # compressed, as the .deb holds it
MAX_CHANGELOG_TEXT = 64 * 1024 * 1024
"""A changelog that decompresses to more than this is not read (Debian's longest are a few MB)."""
DEFAULT_MAX_DEB_SIZE = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ChangelogEntry:
    """One entry of a Debian changelog, reduced to what an assessment reports."""

    version: str
    urgency: str
    cves: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChangelogResult:
    """Pending updates with their CVEs filled in, and notes on where changelogs came from."""

    pending: tuple[PendingUpdate, ...]
    notes: tuple[str, ...] = ()


class _NoChangelog(Exception):
    """The .deb has no changelog of its own (a doc-dir symlink, or none shipped)."""


def changelog_entries(text: str) -> tuple[ChangelogEntry, ...]:
    """Parse a changelog's text into entries, newest first."""
    try:
        changelog = Changelog(text, strict=False)
    except Exception as exc:  # python-debian raises assorted errors on garbage
        raise IndexFormatError(f"cannot parse the changelog: {exc}") from exc
    entries = []
    for block in changelog:
        if block.version is None:
            continue
        body = "\n".join(block.changes())
        cves = tuple(dict.fromkeys(CVE_RE.findall(body)))
        entries.append(ChangelogEntry(str(block.version), (block.urgency or "").lower(), cves))
    return tuple(entries)


def cves_since(entries: Sequence[ChangelogEntry], installed: str) -> tuple[tuple[str, ...], str | None]:
    """The CVEs (sorted, unique) and highest urgency of the entries newer than ``installed``."""
    newer = [e for e in entries if compare_versions(e.version, installed) > 0]
    cves = sorted({c for e in newer for c in e.cves}, key=_cve_key)
    urgencies = [e.urgency for e in newer if e.urgency]
    urgency = max(urgencies, key=lambda u: _URGENCY.get(u, 0)) if urgencies else None
    return tuple(cves), urgency


def _cve_key(cve: str) -> tuple[int, int]:
    _, year, number = cve.split("-")
    return int(year), int(number)


def changelog_text(raw: bytes, *, what: str, max_size: int = MAX_CHANGELOG_TEXT) -> str:
    """The text of a gzipped changelog; one that decompresses to more than ``max_size`` is an IndexFormatError."""
    return decompress_capped(raw, path="changelog.gz", max_size=max_size, what=what).decode("utf-8", errors="replace")


# --- .deb reading ---------------------------------------------------------------------------------------------------


class _Slice(io.RawIOBase):
    """A read-only window of ``size`` bytes of a file, from its current position."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f = f
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), self._left)]
        n = self._f.readinto(view)  # type: ignore[attr-defined]
        if not n:
            raise IndexFormatError("the .deb ends inside an ar member")
        self._left -= n
        return int(n)


def iter_ar_members(f: BinaryIO) -> Iterator[tuple[str, int, BinaryIO]]:
    """The members of an ar archive (a ``.deb``) as (name, size, stream); read each before the next."""
    if f.read(8) != b"!<arch>\n":
        raise IndexFormatError("not a .deb: no ar archive magic")
    while True:
        header = f.read(60)
        if not header:
            return
        if len(header) != 60 or header[58:60] != b"`\n":
            raise IndexFormatError("not a .deb: malformed ar member header")
        name = header[0:16].decode("ascii", errors="replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError as exc:
            raise IndexFormatError("not a .deb: bad ar member size") from exc
        start = f.tell()
        yield name, size, io.BufferedReader(_Slice(f, size))
        f.seek(start + size + (size % 2))  # members are 2-byte aligned


def _decompressed(name: str, stream: BinaryIO) -> BinaryIO:
    if name.endswith(".xz"):
        return lzma.LZMAFile(stream)  # type: ignore[return-value]
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=stream)  # type: ignore[return-value]
    if name.endswith(".zst"):
        import zstandard

        reader: BinaryIO = zstandard.ZstdDecompressor().stream_reader(stream)
        return reader
    if name == "data.tar":
        return stream
    raise IndexFormatError(f"unsupported .deb member compression: {name}")


def extract_changelog(deb: BinaryIO, package: str) -> bytes:
    """The raw ``changelog.Debian.gz`` (or native ``changelog.gz``) of ``package`` in a ``.deb``.

    Raises ``_NoChangelog`` when the package ships none of its own, or an
    :class:`IndexFormatError` when the ``.deb`` cannot be read.
    """
    doc = f"usr/share/doc/{package}"
    wanted = (f"{doc}/changelog.Debian.gz", f"{doc}/changelog.gz")
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    for name, _, member in iter_ar_members(deb):
        if not name.startswith("data.tar"):
            continue
        try:
            with tarfile.open(fileobj=_decompressed(name, member), mode="r|") as tar:
                for info in tar:
                    path = posixpath.normpath(info.name.removeprefix("./").lstrip("/") or ".")
                    if not path.startswith("usr/share/doc/"):
                        continue
                    if info.issym() or info.islnk():
                        links[path] = info.linkname
                    elif info.isfile() and posixpath.basename(path) in ("changelog.Debian.gz", "changelog.gz"):
                        if info.size > _MAX_CHANGELOG:
                            raise IndexFormatError(f"{path} is {info.size} bytes, over the changelog size cap")
                        data = tar.extractfile(info)
                        if data is not None:
                            files[path] = data.read()
                        if path == wanted[0]:
                            return files[path]
        except (tarfile.TarError, lzma.LZMAError, EOFError, OSError) as exc:
            raise IndexFormatError(f"cannot read {name} of the .deb: {exc}") from exc
        break
    else:
        raise IndexFormatError("the .deb has no data.tar member")
    for path in wanted:
        resolved = _resolve(path, links)
        if resolved in files:
            return files[resolved]
    raise _NoChangelog(doc if doc in links else f"{wanted[0]} not in the package")


def _resolve(path: str, links: dict[str, str]) -> str:
    """Follow symlinks (of the path or its parent directories) within the archive, a few hops."""
    for _ in range(8):
        parts = path.split("/")
        for i in range(len(parts), 0, -1):
            head = "/".join(parts[:i])
            if head in links:
                target = links[head]
                base = "" if target.startswith("/") else posixpath.dirname(head)
                new_head = posixpath.normpath(posixpath.join(base, target.lstrip("/")))
                path = "/".join([new_head, *parts[i:]])
                break
        else:
            return path
    return path


# --- fetching ---------------------------------------------------------------------------------------------------


def read_changelogs(
    plan: UpgradePlan,
    *,
    cache_dir: Path | None = None,
    client: httpx.Client | None = None,
    max_deb_size: int = DEFAULT_MAX_DEB_SIZE,
    workers: int = 4,
    timeout: float = 120.0,
) -> ChangelogResult:
    """Fill in the CVEs and urgency of every pending update from its changelog.

    ``.deb`` files are fetched in parallel (``workers`` threads), each at most
    ``max_deb_size`` bytes; the entries read are cached by the ``.deb``'s SHA256.
    """
    if cache_dir is None:
        from patchline.updates.apt import default_apt_cache_dir

        cache_dir = default_apt_cache_dir()
    unique = {deb.sha256: deb for deb in plan.debs}
    own_client = client is None
    http = client or httpx.Client(timeout=timeout, follow_redirects=True, verify=tls_context())
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="patchline-deb") as pool:
            results = dict(
                zip(
                    unique,
                    pool.map(lambda d: _entries_for(d, cache_dir, http, max_deb_size), unique.values()),
                    strict=True,
                )
            )
    finally:
        if own_client:
            http.close()

    pending: list[PendingUpdate] = []
    notes: list[str] = []
    for update, deb in zip(plan.pending, plan.debs, strict=True):
        result = results[deb.sha256]
        if isinstance(result, _NoChangelog):
            sibling = next(
                (
                    other
                    for other in plan.debs
                    if other.source_name == deb.source_name
                    and other.source_version == deb.source_version
                    and isinstance(results[other.sha256], tuple)
                ),
                None,
            )
            if sibling is None:
                pending.append(
                    dataclasses.replace(
                        update,
                        changelog_error=f"{deb.name} {deb.version} ships no changelog of its own ({result}) and no "
                        f"other binary of {deb.source_name} {deb.source_version} is in this update",
                    )
                )
                continue
            notes.append(
                f"{deb.name} {deb.version}: changelog read from {sibling.name} (same source "
                f"{deb.source_name} {deb.source_version}; {result})"
            )
            result = results[sibling.sha256]
        if isinstance(result, str):
            pending.append(dataclasses.replace(update, changelog_error=result))
            continue
        assert isinstance(result, tuple)
        installed = update.package.source_version or update.package.version
        cves, urgency = cves_since(result, installed)
        pending.append(dataclasses.replace(update, cves=cves, urgency=urgency))
    return ChangelogResult(tuple(pending), tuple(notes))


def _entries_for(
    deb: CandidateDeb, cache_dir: Path, client: httpx.Client, max_size: int
) -> tuple[ChangelogEntry, ...] | _NoChangelog | str:
    cached = _load_cached(cache_dir, deb.sha256)
    if cached is not None:
        return cached
    url = f"{deb.url.rstrip('/')}/{deb.filename}"
    try:
        if deb.size > max_size:
            raise UpdateSourceError(f"{url} is {deb.size} bytes, over the {max_size}-byte cap for changelog reading")
        with tempfile.TemporaryFile(prefix="patchline-deb-") as tmp:
            _download(client, url, tmp, sha256=deb.sha256, size=deb.size)
            tmp.seek(0)
            try:
                raw = extract_changelog(tmp, deb.name)
            except _NoChangelog as missing:
                _store_cached(cache_dir, deb.sha256, missing)
                return missing
        entries = changelog_entries(changelog_text(raw, what=f"the changelog in {url}"))
    except UpdateSourceError as exc:
        return str(exc)
    _store_cached(cache_dir, deb.sha256, entries)
    return entries


def _download(client: httpx.Client, url: str, out: IO[bytes], *, sha256: str, size: int) -> None:
    digest = hashlib.sha256()
    got = 0
    try:
        with client.stream("GET", url) as resp:
            if resp.status_code != 200:
                raise UpdateSourceError(f"cannot fetch {url}: HTTP {resp.status_code}")
            for chunk in resp.iter_bytes(1 << 20):
                got += len(chunk)
                if got > size:
                    raise IndexIntegrityError(f"{url} is larger than the {size} bytes its index says")
                digest.update(chunk)
                out.write(chunk)
    except httpx.HTTPError as exc:
        raise UpdateSourceError(f"cannot fetch {url}: {exc}") from exc
    if got != size:
        raise IndexIntegrityError(f"{url} is {got} bytes, its index says {size}")
    if digest.hexdigest() != sha256:
        raise IndexIntegrityError(f"{url} has SHA256 {digest.hexdigest()}, its index says {sha256}")


def _cache_path(cache_dir: Path, sha256: str) -> Path:
    return cache_dir / "changelog" / f"{sha256}.v{_CACHE_VERSION}.json"


def _load_cached(cache_dir: Path, sha256: str) -> tuple[ChangelogEntry, ...] | _NoChangelog | None:
    try:
        doc = json.loads(_cache_path(cache_dir, sha256).read_bytes())
        if "missing" in doc:
            return _NoChangelog(str(doc["missing"]))
        return tuple(ChangelogEntry(v, u, tuple(c)) for v, u, c in doc["entries"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _store_cached(cache_dir: Path, sha256: str, found: tuple[ChangelogEntry, ...] | _NoChangelog) -> None:
    if isinstance(found, _NoChangelog):
        doc: dict[str, object] = {"missing": str(found)}
    else:
        doc = {"entries": [[e.version, e.urgency, list(e.cves)] for e in found]}
    path = _cache_path(cache_dir, sha256)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(doc, out)
        os.replace(tmp, path)
