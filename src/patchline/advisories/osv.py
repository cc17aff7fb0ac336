"""OSV advisory feeds: a directory of records, an ``all.zip``, or a URL of either.

``OsvFeed(source)`` reads every ``*.json``, ``*.yaml`` and ``*.yml`` record of a
directory (recursively) or a zip (OSV publishes ``<ECOSYSTEM>/all.zip``: one
JSON file per advisory), or downloads an https URL of a zip or a single JSON
record into ``default_cache_dir() / "osv"`` (revalidated with ETag /
Last-Modified; at most ``MAX_DOWNLOAD_BYTES``). A record that cannot be used is
an ``AssessSkip`` with its reason; withdrawn records are dropped.

A plain ``http://`` URL is refused unless the feed allows it, since anyone on
the path could change its advisories; a SHA-256 pin makes any change an error.
Both are keyword arguments, or options in the URL's fragment (which is never
sent), so that a feed stays one string on the command line and in the
configuration: ``http://mirror/osv/all.zip#allow_http&sha256=<64 hex digits>``.

Parsing thousands of YAML files is slow (seconds), so a directory feed keeps
the parsed documents as one JSON file keyed by the directory's listing (path,
mtime, size of every record): an unchanged directory loads from it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, cast

import httpx
import yaml

from patchline._feedurl import check_feed_url, feed_source, pin_of
from patchline._findings import AdvisoryId, AssessSkip, Severity, SeverityScore
from patchline._http import tls_context
from patchline.advisories._cvss import score_vector
from patchline.advisories.interface import Advisory, Affected
from patchline.errors import FeedError
from patchline.versions import UnknownEcosystem, scheme_for
from patchline.versions.interface import InvalidVersion, VersionScheme
from patchline.versions.osv import EventKind, OsvEvent, OsvRange, RangeError

__all__ = ["MAX_DOWNLOAD_BYTES", "MAX_RECORD_BYTES", "OsvFeed", "feed_source", "parse_record", "record_severity"]

MAX_RECORD_BYTES = 8 * 1024 * 1024
"""A single advisory record larger than this is skipped, not parsed (OSV records are kilobytes)."""

MAX_DOWNLOAD_BYTES = 1024 * 1024 * 1024
"""A feed download larger than this is refused (OSV's largest all.zip, Debian's, is about 100 MB)."""

_SUFFIXES = (".json", ".yaml", ".yml")
_RANGE_TYPES = ("ECOSYSTEM", "SEMVER", "GIT")
_EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
_CACHE_FORMAT = "osv-docs-2"  # 2: YAML aliases refused; a cache of format 1 may hold an expanded alias bomb
_ALIAS_REASON = "YAML aliases are not allowed in an OSV record"

_Doc = tuple[str, object, str | None]  # (what, parsed document, reason it could not be read)


class _StringLoader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """Safe YAML, but plain scalars stay strings: ``1.10`` is a version, not the float 1.1."""


_StringLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag.rsplit(":", 1)[-1] in ("null", "bool")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _has_alias(data: bytes) -> bool:
    """Whether a YAML document uses an alias (``*name``).

    Aliases let a few hundred bytes stand for gigabytes once the document is
    walked, hashed or written out as JSON ("billion laughs"); OSV records never
    need them. Only the parser's events are looked at, nothing is constructed.
    """
    if b"*" not in data:  # every alias starts with one: most records need no second look
        return False
    return any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(data, Loader=_StringLoader))


def _decode(what: str, data: bytes) -> _Doc:
    if len(data) > MAX_RECORD_BYTES:
        return (what, None, f"record is {len(data)} bytes, over the {MAX_RECORD_BYTES}-byte limit for one advisory")
    is_json = what.lower().endswith(".json")
    try:
        if is_json:
            return (what, json.loads(data), None)
        if _has_alias(data):
            return (what, None, _ALIAS_REASON)
        return (what, yaml.load(data, Loader=_StringLoader), None)
    except (ValueError, yaml.YAMLError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        kind = "JSON" if is_json else "YAML"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (what, None, f"not valid {kind}: {first_line}")
    except RecursionError:
        return (what, None, f"not valid {'JSON' if is_json else 'YAML'}: nested too deeply")


class OsvFeed:
    """OSV records from a directory, a zip file, or an https URL of a zip or one JSON record.

    ``allow_http`` accepts a plain ``http://`` URL; ``sha256`` pins the feed
    file's content (a zip or a single record; not a directory). A URL may carry
    both in its fragment instead (see the module docstring). A download is at
    most ``max_download_bytes``.
    """

    def __init__(
        self,
        source: str | os.PathLike[str],
        *,
        cache_dir: Path | None = None,
        client: httpx.Client | None = None,
        allow_http: bool = False,
        sha256: str | None = None,
        max_download_bytes: int = MAX_DOWNLOAD_BYTES,
    ) -> None:
        text = os.fspath(source)
        if not text:
            raise FeedError("an advisory feed needs a directory, a zip file or a URL")
        self._is_url = text.lower().startswith(("http://", "https://"))
        if self._is_url:
            text, allow_http, self._sha256 = check_feed_url(text, allow_http=allow_http, sha256=sha256)
        else:
            self._sha256 = pin_of(sha256, where=text)
        self._source = text
        self._allow_http = allow_http
        self._max_download = max_download_bytes
        self._cache_dir = cache_dir
        self._client = client
        self._records: list[Advisory | AssessSkip] | None = None
        self._docs: list[tuple[str, object, str | None]] | None = None
        self._revision = ""

    @property
    def name(self) -> str:
        return self._source

    @property
    def revision(self) -> str:
        self.documents()  # sets it: a content hash, or a directory's newest record
        return self._revision

    def records(self) -> Iterator[Advisory | AssessSkip]:
        yield from self._load()

    # -- loading -------------------------------------------------------------

    def _cache_root(self) -> Path:
        if self._cache_dir is not None:
            return self._cache_dir
        from patchline._paths import cache_home as default_cache_dir

        return default_cache_dir() / "osv"

    def documents(self) -> list[tuple[str, object, str | None]]:
        """The feed's raw records as ``(what, document, reason it is unreadable)``, not yet parsed.

        :meth:`AdvisoryIndex.build_lazy` indexes these by package and parses only
        the records of the packages it is asked about.
        """
        docs = self._documents()
        if not self._revision:  # a directory: its newest record
            modified = (str(d.get("modified")) for _, d, r in docs
                        if r is None and isinstance(d, Mapping) and d.get("modified"))
            self._revision = max(modified, default="empty")
        return docs

    def _documents(self) -> list[tuple[str, object, str | None]]:
        if self._docs is not None:
            return self._docs
        if self._is_url:
            path = self._download()
            docs, self._revision = self._docs_from_file(path, display=self._source)
        else:
            path = Path(self._source)
            if path.is_dir():
                docs = self._docs_from_directory(path)
            elif path.is_file():
                docs, self._revision = self._docs_from_file(path, display=self._source)
            else:
                raise FeedError(f"advisory feed {self._source} does not exist")
        self._docs = docs
        return docs

    def _load(self) -> list[Advisory | AssessSkip]:
        if self._records is not None:
            return self._records
        docs = self.documents()
        records: list[Advisory | AssessSkip] = []
        for what, doc, reason in docs:
            if reason is not None:
                records.append(AssessSkip(what=what, reason=reason))
            else:
                records.extend(parse_record(doc, what=what))
        self._records = records
        return records

    def _docs_from_file(self, path: Path, *, display: str) -> tuple[list[_Doc], str]:
        # One open file for hashing and reading: what is read is what was hashed (and pinned).
        try:
            with path.open("rb") as f:
                head = f.read(4)
                is_zip = head == b"PK\x03\x04" or display.lower().endswith(".zip")
                digest = hashlib.sha256(head)
                kept = [head]  # a single record's bytes, up to one past the record limit
                size = len(head)
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
                    if not is_zip and size <= MAX_RECORD_BYTES + 1:
                        kept.append(chunk)
                revision = "sha256:" + digest.hexdigest()
                if self._sha256 is not None and digest.hexdigest() != self._sha256:
                    raise FeedError(
                        f"advisory feed {display} has SHA-256 {digest.hexdigest()}, but is pinned to {self._sha256}"
                    )
                if is_zip:
                    f.seek(0)
                    return self._docs_from_zip(f, display=display), revision
        except OSError as exc:
            raise FeedError(f"cannot read advisory feed {display}: {exc.strerror or exc}") from exc
        name = display if display.lower().endswith(_SUFFIXES) else display + ".json"
        if size > MAX_RECORD_BYTES:
            return [(display, None, f"record is {size} bytes, over the {MAX_RECORD_BYTES}-byte limit")], revision
        _, doc, reason = _decode(name, b"".join(kept))
        return [(display, doc, reason)], revision

    def _docs_from_zip(self, file: BinaryIO, *, display: str) -> list[_Doc]:
        docs: list[_Doc] = []
        try:
            with zipfile.ZipFile(file) as archive:
                for info in sorted(archive.infolist(), key=lambda i: i.filename):
                    if info.is_dir() or not info.filename.lower().endswith(_SUFFIXES):
                        continue
                    what = f"{display}!{info.filename}"
                    if info.file_size > MAX_RECORD_BYTES:  # checked before inflating anything
                        size = info.file_size
                        docs.append((what, None, f"record is {size} bytes, over the {MAX_RECORD_BYTES}-byte limit"))
                        continue
                    try:
                        data = archive.read(info)
                    except (zipfile.BadZipFile, OSError, EOFError) as exc:
                        docs.append((what, None, f"cannot be extracted: {exc}"))
                        continue
                    docs.append(_decode(what, data))
        except (zipfile.BadZipFile, OSError) as exc:
            raise FeedError(f"advisory feed {display} is not a readable zip file: {exc}") from exc
        return docs

    def _docs_from_directory(self, root: Path) -> list[_Doc]:
        if self._sha256 is not None:
            raise FeedError(f"advisory feed {root} is a directory: a sha256 pin is for a zip or a single record")
        listing: list[tuple[str, int, int]] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in filenames:
                if filename.lower().endswith(_SUFFIXES) and not filename.startswith("."):
                    full = os.path.join(dirpath, filename)
                    try:
                        st = os.stat(full)
                    except OSError:
                        continue  # vanished while walking
                    listing.append((os.path.relpath(full, root), st.st_mtime_ns, st.st_size))
        listing.sort()
        key = hashlib.sha256(json.dumps([_CACHE_FORMAT, str(root.resolve()), listing]).encode()).hexdigest()[:32]
        cache_file = self._cache_root() / "parsed" / f"{key}.json"
        cached = _read_doc_cache(cache_file)
        if cached is not None:
            return cached
        docs: list[_Doc] = []
        for rel, _, _ in listing:
            what = str(root / rel)
            try:
                data = (root / rel).read_bytes()
            except OSError as exc:
                docs.append((what, None, f"cannot be read: {exc.strerror or exc}"))
                continue
            docs.append(_decode(what, data))
        _write_doc_cache(cache_file, docs)
        return docs

    def _download(self) -> Path:
        downloads = self._cache_root() / "downloads"
        key = hashlib.sha256(self._source.encode()).hexdigest()[:32]
        body, meta_file = downloads / key, downloads / f"{key}.meta.json"
        # The body is counted as it arrives: only an identity body can be (a compressed one could inflate by
        # thousands of times inside a single chunk).
        headers: dict[str, str] = {"Accept-Encoding": "identity"}
        meta: dict[str, str] = {}
        if body.is_file() and meta_file.is_file():
            with contextlib.suppress(OSError, ValueError):
                meta = json.loads(meta_file.read_text())
            if meta.get("etag"):
                headers["If-None-Match"] = meta["etag"]
            if meta.get("last_modified"):
                headers["If-Modified-Since"] = meta["last_modified"]
        client = self._client or httpx.Client(timeout=60.0, follow_redirects=True, verify=tls_context())
        try:
            downloads.mkdir(parents=True, exist_ok=True)
            with client.stream("GET", self._source, headers=headers) as response:
                self._check_response(response)
                if response.status_code == 304 and ("If-None-Match" in headers or "If-Modified-Since" in headers):
                    return body
                if response.status_code != 200:
                    raise FeedError(f"advisory feed {self._source} answered HTTP {response.status_code}")
                fd, tmp = tempfile.mkstemp(dir=downloads, prefix=".part-")
                try:
                    with os.fdopen(fd, "wb") as out:
                        self._copy_body(response, out)
                    os.replace(tmp, body)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
                new_meta = {
                    "url": self._source,
                    "etag": response.headers.get("etag", ""),
                    "last_modified": response.headers.get("last-modified", ""),
                }
                meta_file.write_text(json.dumps(new_meta))
                return body
        except httpx.HTTPError as exc:
            raise FeedError(f"cannot download advisory feed {self._source}: {exc}") from exc
        except OSError as exc:
            raise FeedError(f"cannot store advisory feed {self._source} under {downloads}: {exc}") from exc
        finally:
            if self._client is None:
                client.close()

    def _check_response(self, response: httpx.Response) -> None:
        """Refuse a redirect to plain http (unless allowed) and a body that is not sent as is."""
        if not self._allow_http:
            for hop in (*response.history, response):
                if hop.url.scheme == "http":
                    raise FeedError(f"advisory feed {self._source} was redirected to plain http: {hop.url}")
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise FeedError(
                f"advisory feed {self._source} answered with Content-Encoding {encoding!r}, not the identity asked for"
            )
        length = response.headers.get("content-length", "")
        if response.status_code == 200 and length.isdigit() and int(length) > self._max_download:
            raise FeedError(
                f"advisory feed {self._source} is {int(length)} bytes, over the {self._max_download}-byte download "
                "limit"
            )

    def _copy_body(self, response: httpx.Response, out: BinaryIO) -> None:
        digest = hashlib.sha256()
        got = 0
        for chunk in response.iter_raw(1 << 20):
            got += len(chunk)
            if got > self._max_download:
                raise FeedError(
                    f"advisory feed {self._source} is over the {self._max_download}-byte download limit"
                )
            digest.update(chunk)
            out.write(chunk)
        if self._sha256 is not None and digest.hexdigest() != self._sha256:
            raise FeedError(
                f"advisory feed {self._source} downloaded with SHA-256 {digest.hexdigest()}, "
                f"but is pinned to {self._sha256}"
            )


def _read_doc_cache(path: Path) -> list[_Doc] | None:
    try:
        payload = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("format") != _CACHE_FORMAT:
        return None
    return [(str(w), d, r) for w, d, r in payload["docs"]]


def _write_doc_cache(path: Path, docs: list[_Doc]) -> None:
    # Best effort: a cache that cannot be written only costs the next load its speed.
    with contextlib.suppress(OSError, TypeError, ValueError):
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"format": _CACHE_FORMAT, "docs": docs}, default=str, separators=(",", ":"))
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".part-")
        with os.fdopen(fd, "w") as out:
            out.write(data)
        os.replace(tmp, path)


# -- records -------------------------------------------------------------------


class _BadEntry(Exception):
    """One affected entry cannot be used (internal; becomes an AssessSkip)."""


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime | dt.date):  # an unquoted YAML timestamp
        return value.isoformat()
    return None


def _severity_word(*holders: object) -> str | None:
    for holder in holders:
        if isinstance(holder, Mapping):
            word = holder.get("severity")
            if isinstance(word, str) and word.strip():
                return word.strip()
    return None


_schemes: dict[str, VersionScheme | None] = {}


def _scheme(ecosystem: str) -> VersionScheme | None:
    if ecosystem not in _schemes:
        try:
            _schemes[ecosystem] = scheme_for(ecosystem)
        except UnknownEcosystem:
            _schemes[ecosystem] = None  # an ecosystem without a scheme: its versions cannot be checked here
    return _schemes[ecosystem]


def _parse_range(where: str, raw: object, scheme: VersionScheme | None) -> OsvRange:
    if not isinstance(raw, Mapping):
        raise _BadEntry(f"{where} is not an object")
    kind = raw.get("type")
    if kind not in _RANGE_TYPES:
        raise _BadEntry(f"{where} has unknown range type {kind!r} (known: {', '.join(_RANGE_TYPES)})")
    events_raw = raw.get("events")
    if not isinstance(events_raw, list) or not events_raw:
        raise _BadEntry(f"{where} has no events")
    events: list[OsvEvent] = []
    for j, event in enumerate(events_raw):
        if not isinstance(event, Mapping) or len(event) != 1:
            n = len(event) if isinstance(event, Mapping) else "not an object"
            raise _BadEntry(f"{where}.events[{j}] must have exactly one key, has {n}")
        ((ev_kind, value),) = event.items()
        if ev_kind not in _EVENT_KINDS:
            raise _BadEntry(f"{where}.events[{j}] has unknown event {ev_kind!r}")
        if not isinstance(value, str) or not value:
            raise _BadEntry(f"{where}.events[{j}] {ev_kind} is not a version string")
        if scheme is not None and kind != "GIT" and not (ev_kind == "introduced" and value == "0"):
            try:
                scheme.validate(value)
            except InvalidVersion as exc:
                raise _BadEntry(
                    f"{where}.events[{j}] {ev_kind} version {value!r} is not valid ({scheme.name}): {exc}"
                ) from exc
        try:
            events.append(OsvEvent(cast(EventKind, ev_kind), value))
        except RangeError as exc:
            raise _BadEntry(f"{where}.events[{j}]: {exc}") from exc
    return OsvRange(kind, tuple(events))


def _parse_affected(index: int, raw: object) -> Affected:
    if not isinstance(raw, Mapping):
        raise _BadEntry(f"affected[{index}] is not an object")
    package = raw.get("package")
    if not isinstance(package, Mapping):
        raise _BadEntry(f"affected[{index}] has no package")
    ecosystem, name = package.get("ecosystem"), package.get("name")
    if not isinstance(ecosystem, str) or not ecosystem or not isinstance(name, str) or not name:
        raise _BadEntry(f"affected[{index}].package needs an ecosystem and a name")
    purl = package.get("purl")
    ranges_raw = raw.get("ranges") or []
    versions_raw = raw.get("versions") or []
    if not isinstance(ranges_raw, list) or not isinstance(versions_raw, list):
        raise _BadEntry(f"affected[{index}] ranges and versions must be lists")
    scheme = _scheme(ecosystem)
    ranges = tuple(_parse_range(f"affected[{index}].ranges[{i}]", r, scheme) for i, r in enumerate(ranges_raw))
    versions = tuple(v for v in (_text(v) for v in versions_raw) if v)
    if not ranges and not versions:
        raise _BadEntry(f"affected[{index}] names no ranges and no versions")
    return Affected(
        ecosystem=ecosystem,
        name=name,
        purl=purl if isinstance(purl, str) else None,
        ranges=ranges,
        versions=versions,
        severity_text=_severity_word(raw.get("ecosystem_specific"), raw.get("database_specific")),
    )


def record_severity(doc: Mapping[str, Any]) -> tuple[SeverityScore, ...]:
    """A record's severity statements: a score per CVSS vector of ``severity[]``, then its own word
    (``database_specific.severity``: GitHub's LOW / MODERATE / HIGH / CRITICAL)."""
    scores: list[SeverityScore] = []
    entries = doc.get("severity")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and isinstance(entry.get("type"), str) and isinstance(entry.get("score"), str):
            scores.append(score_vector(entry["type"], entry["score"]))
    word = _severity_word(doc.get("database_specific"))
    if word:
        scores.append(SeverityScore(Severity.parse(word), "record", None, None))
    return tuple(scores)


def parse_record(doc: object, *, what: str) -> list[Advisory | AssessSkip]:
    """One OSV record as an advisory and/or skips; ``[]`` for a withdrawn record.

    An unusable ``affected`` entry is a skip of its own; the rest of the record is kept.
    """
    if not isinstance(doc, Mapping):
        kind = "a list" if isinstance(doc, list) else type(doc).__name__
        return [AssessSkip(what=what, reason=f"an OSV record must be an object, this is {kind}")]
    ident = doc.get("id")
    if not isinstance(ident, str) or not ident.strip():
        return [AssessSkip(what=what, reason="record has no id")]
    label = f"{what} ({ident})" if ident not in what else what
    if doc.get("withdrawn"):
        return []
    modified = _text(doc.get("modified"))
    if not modified:
        return [AssessSkip(what=label, reason=f"{ident} has no modified timestamp")]
    out: list[Advisory | AssessSkip] = []
    affected: list[Affected] = []
    affected_raw = doc.get("affected") or []
    if not isinstance(affected_raw, list):
        return [AssessSkip(what=label, reason=f"{ident}: affected is not a list")]
    for i, entry in enumerate(affected_raw):
        try:
            affected.append(_parse_affected(i, entry))
        except _BadEntry as exc:
            out.append(AssessSkip(what=label, reason=f"{ident}: {exc}"))
    if affected_raw and not affected:
        return out  # nothing left to match against
    scores = record_severity(doc)
    out.append(
        Advisory(
            id=AdvisoryId(ident.strip()),
            aliases=tuple(sorted({a for a in _strings(doc.get("aliases")) if a != ident})),
            summary=_text(doc.get("summary")),
            details=_text(doc.get("details")),
            modified=modified,
            published=_text(doc.get("published")),
            severity=scores,
            affected=tuple(affected),
            references=tuple(r["url"] for r in _mappings(doc.get("references")) if isinstance(r.get("url"), str)),
        )
    )
    return out


def _strings(value: object) -> Sequence[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _mappings(value: object) -> Sequence[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []
