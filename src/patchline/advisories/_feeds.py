"""OSV's per-ecosystem archives fetched from a mirror into a feed directory, kept current.

``update_feeds(mirror=..., ecosystems=("PyPI", "Debian"), directory=...)`` GETs
``<mirror>/<Ecosystem>/all.zip`` for each ecosystem, as OSV publishes them (the
mirror is OSV's public bucket or an internal copy of it; its URL is
configuration, ``[advisories] mirror``). A request is conditional on what was
fetched before (``If-None-Match`` / ``If-Modified-Since``): an unchanged archive
costs a 304. A new archive is downloaded beside the feed, verified (every
member's CRC, and every member a JSON OSV record), and only then moved over the
old one in one rename: a corrupt archive, a server gone mid-download or a
timeout leaves the feed as it was. Each feed's revision (its SHA-256, ETag,
Last-Modified, record count, when it was fetched and last checked) is kept in
``feeds.json`` next to the feeds. One ecosystem that fails never stops the others.

Layout of the directory::

    feeds.json
    PyPI/all.zip
    Debian/all.zip
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import hashlib
import json
import os
import re
import tempfile
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import httpx

from patchline import _clock
from patchline._feedurl import split_source
from patchline._http import tls_context
from patchline._redact import redact_passwords
from patchline.advisories.osv import MAX_DOWNLOAD_BYTES, MAX_RECORD_BYTES
from patchline.errors import FeedError

if TYPE_CHECKING:
    from patchline._config import AdvisoriesConfig

__all__ = [
    "ARCHIVE",
    "STATE_FILE",
    "FeedRevision",
    "FeedUpdate",
    "UpdateOutcome",
    "archive_url",
    "check_mirror",
    "default_feeds_dir",
    "feed_status",
    "feeds_directory",
    "fetched_feeds",
    "status_document",
    "update_configured_feeds",
    "update_feeds",
    "verify_archive",
]

ARCHIVE = "all.zip"
STATE_FILE = "feeds.json"
_STATE_SCHEMA = "patchline/feeds/v1"
_ECOSYSTEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:+-]*")  # OSV's names: "PyPI", "Debian:12", "Red Hat"

Progress = Callable[[str], None]


class UpdateOutcome(enum.StrEnum):
    UPDATED = "updated"  # a new archive is in place
    UNCHANGED = "unchanged"  # the server said 304, or sent the same bytes
    FAILED = "failed"  # the feed is as it was before (or still absent): see the reason


@dataclass(frozen=True, slots=True)
class FeedRevision:
    """What a fetched feed holds and where it came from (one entry of ``feeds.json``)."""

    ecosystem: str
    url: str  # without any password
    path: str
    sha256: str
    records: int
    fetched_at: str  # RFC 3339: when these bytes were downloaded
    checked_at: str  # RFC 3339: when the mirror was last asked
    etag: str | None = None
    last_modified: str | None = None

    @property
    def revision(self) -> str:
        """The revision an assessment reports for this feed (what ``OsvFeed.revision`` says of the file)."""
        return f"sha256:{self.sha256}"


@dataclass(frozen=True, slots=True)
class FeedUpdate:
    """What updating one ecosystem's feed did."""

    ecosystem: str
    outcome: UpdateOutcome
    revision: FeedRevision | None  # the feed in place now (the previous one when it failed; None: none yet)
    reason: str | None = None  # why it failed


def default_feeds_dir() -> Path:
    """``$XDG_DATA_HOME/patchline/osv``, else ``~/.local/share/patchline/osv``."""
    from patchline._paths import data_home

    return data_home() / "osv"


def check_mirror(text: str) -> tuple[str, bool]:
    """(base URL, allow_http) of a mirror setting; refuses plain http unless it ends in ``#allow_http``."""
    url, allow_http, pin = split_source(text, allow_http=False, sha256=None)
    shown = redact_passwords(url)
    if pin is not None:
        raise FeedError(f"advisory mirror {shown}: a sha256 pin is for one file, not for a mirror of archives")
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise FeedError(f"advisory mirror {shown} is not an http(s) URL")
    if scheme == "http" and not allow_http:
        raise FeedError(f"advisory mirror {shown} is plain http://: anyone on the way could change its "
                        "advisories; use https://, or end the URL with #allow_http to accept that")
    return url.rstrip("/"), allow_http


def _check_ecosystem(ecosystem: str) -> str:
    if not _ECOSYSTEM.fullmatch(ecosystem) or ".." in ecosystem:
        raise FeedError(f"{ecosystem!r} is not an OSV ecosystem name (as OSV spells it: PyPI, Debian, npm, Go...)")
    return ecosystem


def archive_url(base: str, ecosystem: str) -> str:
    """``<base>/<Ecosystem>/all.zip``, the ecosystem's name quoted as a path segment."""
    return f"{base.rstrip('/')}/{urllib.parse.quote(_check_ecosystem(ecosystem), safe=':+')}/{ARCHIVE}"


def verify_archive(path: Path) -> int:
    """The number of records of an OSV archive; raises :class:`FeedError` unless it is whole and every member
    is one JSON OSV record (an object with an ``id`` and a ``modified``).

    Reading every member checks its CRC, as ``ZipFile.testzip`` does; a member is checked against the
    record size limit before it is inflated.
    """
    records = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                where = f"{ARCHIVE}!{info.filename}"
                if not info.filename.lower().endswith(".json"):
                    raise FeedError(f"{where} is not a JSON record: an OSV archive holds only <ID>.json files")
                if info.file_size > MAX_RECORD_BYTES:
                    raise FeedError(f"{where} is {info.file_size} bytes, over the {MAX_RECORD_BYTES}-byte "
                                    "limit for one advisory")
                data = archive.read(info)  # BadZipFile on a CRC mismatch
                try:
                    doc = json.loads(data)
                except (ValueError, RecursionError) as exc:
                    raise FeedError(f"{where} is not valid JSON: {exc}") from exc
                if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not doc.get("modified"):
                    raise FeedError(f"{where} is not an OSV record (an object with an id and a modified time)")
                records += 1
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError) as exc:
        raise FeedError(f"not a whole zip archive: {exc}") from exc
    if records == 0:
        raise FeedError("the archive holds no OSV record")
    return records


# -- the state file --------------------------------------------------------------


def _read_state(directory: Path) -> dict[str, FeedRevision]:
    try:
        payload = json.loads((directory / STATE_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    feeds = payload.get("feeds") if isinstance(payload, dict) and payload.get("schema") == _STATE_SCHEMA else None
    out: dict[str, FeedRevision] = {}
    for ecosystem, entry in (feeds or {}).items():
        with contextlib.suppress(TypeError):
            out[ecosystem] = FeedRevision(**entry)
    return out


def _write_state(directory: Path, state: Mapping[str, FeedRevision]) -> None:
    payload = {"schema": _STATE_SCHEMA, "feeds": {k: asdict(v) for k, v in sorted(state.items())}}
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".state-")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(payload, out, indent=2)
            out.write("\n")
        os.replace(tmp, directory / STATE_FILE)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One update of a directory at a time (two would race on ``feeds.json``)."""
    with (directory / ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def feed_status(directory: Path) -> dict[str, FeedRevision]:
    """Every fetched feed of a directory by ecosystem, as ``feeds.json`` records it (a feed whose archive is
    gone is left out)."""
    return {k: v for k, v in _read_state(directory).items() if (directory / k / ARCHIVE).is_file()}


# -- fetching --------------------------------------------------------------------


def _now() -> str:
    return _clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")


def update_feeds(
    *,
    mirror: str,
    ecosystems: Sequence[str],
    directory: Path,
    client: httpx.Client | None = None,
    max_download_bytes: int = MAX_DOWNLOAD_BYTES,
    progress: Progress | None = None,
) -> list[FeedUpdate]:
    """Fetch each ecosystem's archive from ``mirror`` into ``directory`` (see the module docstring).

    Refuses an empty list of ecosystems and an unsafe mirror URL; any other failure is that ecosystem's
    ``FAILED`` outcome with its reason, and its feed is left as it was.
    """
    base, allow_http = check_mirror(mirror)
    if not ecosystems:
        raise FeedError("no OSV ecosystems to fetch: name them in [advisories] ecosystems (\"PyPI\", \"Debian\"...)")
    for ecosystem in ecosystems:
        _check_ecosystem(ecosystem)
    say = progress or (lambda _line: None)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FeedError(f"cannot create the feed directory {directory}: {exc.strerror or exc}") from exc
    own_client = client is None
    http = client or httpx.Client(timeout=60.0, follow_redirects=True, verify=tls_context())
    out: list[FeedUpdate] = []
    try:
        with _locked(directory):
            state = _read_state(directory)
            for ecosystem in dict.fromkeys(ecosystems):
                url = archive_url(base, ecosystem)
                say(f"checking {ecosystem} advisories at {redact_passwords(url)}")
                previous = state.get(ecosystem)
                try:
                    update = _fetch(http, url=url, ecosystem=ecosystem, directory=directory, previous=previous,
                                    allow_http=allow_http, max_bytes=max_download_bytes)
                except FeedError as exc:
                    update = FeedUpdate(ecosystem, UpdateOutcome.FAILED, previous, redact_passwords(exc.message))
                except httpx.HTTPError as exc:
                    reason = redact_passwords(f"cannot download {url}: {type(exc).__name__}: {exc}")
                    update = FeedUpdate(ecosystem, UpdateOutcome.FAILED, previous, reason)
                except OSError as exc:
                    reason = f"cannot store the feed under {directory}: {exc.strerror or exc}"
                    update = FeedUpdate(ecosystem, UpdateOutcome.FAILED, previous, reason)
                if update.outcome is not UpdateOutcome.FAILED and update.revision is not None:
                    state[ecosystem] = update.revision
                    _write_state(directory, state)
                out.append(update)
    finally:
        if own_client:
            http.close()
    return out


def _fetch(
    client: httpx.Client, *, url: str, ecosystem: str, directory: Path, previous: FeedRevision | None,
    allow_http: bool, max_bytes: int,
) -> FeedUpdate:
    target = directory / ecosystem / ARCHIVE
    shown = redact_passwords(url)
    # Counted as it arrives: only an identity body can be (a compressed one could inflate a thousandfold).
    headers = {"Accept-Encoding": "identity"}
    if previous is not None and target.is_file():
        if previous.etag:
            headers["If-None-Match"] = previous.etag
        if previous.last_modified:
            headers["If-Modified-Since"] = previous.last_modified
    with client.stream("GET", url, headers=headers) as response:
        _check_response(response, shown=shown, allow_http=allow_http, max_bytes=max_bytes)
        if response.status_code == 304 and previous is not None and len(headers) > 1:
            return FeedUpdate(ecosystem, UpdateOutcome.UNCHANGED, replace(previous, checked_at=_now()))
        if response.status_code != 200:
            raise FeedError(f"{shown} answered HTTP {response.status_code}")
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".part-{ecosystem}-")
        try:
            with os.fdopen(fd, "wb") as out:
                digest = _copy_body(response, out, shown=shown, max_bytes=max_bytes)
            try:
                records = verify_archive(Path(tmp))
            except FeedError as exc:
                raise FeedError(f"{shown}: refused, the feed is kept as it was: {exc.message}") from exc
            now = _now()
            revision = FeedRevision(
                ecosystem=ecosystem, url=shown, path=str(target), sha256=digest, records=records,
                fetched_at=now, checked_at=now, etag=response.headers.get("etag") or None,
                last_modified=response.headers.get("last-modified") or None)
            if previous is not None and previous.sha256 == digest and target.is_file():
                return FeedUpdate(ecosystem, UpdateOutcome.UNCHANGED, replace(revision,
                                                                              fetched_at=previous.fetched_at))
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            return FeedUpdate(ecosystem, UpdateOutcome.UPDATED, revision)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _check_response(response: httpx.Response, *, shown: str, allow_http: bool, max_bytes: int) -> None:
    if not allow_http:
        for hop in (*response.history, response):
            if hop.url.scheme == "http":
                raise FeedError(f"{shown} was redirected to plain http: {redact_passwords(str(hop.url))}")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise FeedError(f"{shown} answered with Content-Encoding {encoding!r}, not the identity asked for")
    length = response.headers.get("content-length", "")
    if response.status_code == 200 and length.isdigit() and int(length) > max_bytes:
        raise FeedError(f"{shown} is {int(length)} bytes, over the {max_bytes}-byte download limit")


def _copy_body(response: httpx.Response, out: BinaryIO, *, shown: str, max_bytes: int) -> str:
    digest = hashlib.sha256()
    got = 0
    for chunk in response.iter_raw(1 << 20):
        got += len(chunk)
        if got > max_bytes:
            raise FeedError(f"{shown} is over the {max_bytes}-byte download limit")
        digest.update(chunk)
        out.write(chunk)
    return digest.hexdigest()


# -- configuration -----------------------------------------------------------------


def feeds_directory(config: AdvisoriesConfig) -> Path:
    """Where the fetched feeds are: ``[advisories] feeds_dir``, else :func:`default_feeds_dir`."""
    return config.feeds_dir.expanduser() if config.feeds_dir is not None else default_feeds_dir()


def fetched_feeds(config: AdvisoriesConfig) -> tuple[str, ...]:
    """The archives of the configured ecosystems that have been fetched, as feeds an assessment reads."""
    if config.mirror is None:
        return ()
    directory = feeds_directory(config)
    paths = (directory / e / ARCHIVE for e in config.ecosystems if _ECOSYSTEM.fullmatch(e) and ".." not in e)
    return tuple(str(p) for p in paths if p.is_file())


def update_configured_feeds(
    config: AdvisoriesConfig, *, mirror: str | None = None, ecosystems: Sequence[str] = (),
    client: httpx.Client | None = None, progress: Progress | None = None,
) -> tuple[Path, list[FeedUpdate]]:
    """Update the feeds ``[advisories]`` configures (``mirror`` and ``ecosystems`` override it)."""
    base = mirror or config.mirror
    if base is None:
        raise FeedError("no advisory mirror configured: set [advisories] mirror to the base URL of OSV's "
                        "per-ecosystem archives (OSV's public bucket or an internal mirror), or pass --mirror")
    directory = feeds_directory(config)
    return directory, update_feeds(mirror=base, ecosystems=tuple(ecosystems) or config.ecosystems,
                                   directory=directory, client=client, progress=progress)


def status_document(directory: Path, updates: Sequence[FeedUpdate] | None = None) -> dict[str, Any]:
    """The JSON document ``patchline feeds update|status --json`` prints."""
    doc: dict[str, Any] = {"schema": _STATE_SCHEMA, "directory": str(directory)}
    if updates is not None:
        doc["updates"] = [{"ecosystem": u.ecosystem, "outcome": u.outcome.value, "reason": u.reason,
                           "revision": asdict(u.revision) if u.revision else None} for u in updates]
    doc["feeds"] = {k: {**asdict(v), "revision": v.revision} for k, v in sorted(feed_status(directory).items())}
    return doc
