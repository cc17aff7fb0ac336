"""Apt repositories as update sources: fetch, verify and parse a suite's indexes.

For one :class:`AptSuite` this fetches ``dists/SUITE/InRelease``, verifies it with
``gpgv`` against a keyring, refuses an expired one, then fetches each
component's ``binary-ARCH/Packages`` index (``.xz``, else ``.gz``, else plain),
checks its SHA256 and size against the Release before decompressing it, and
parses it. Index files are cached by their SHA256 (content-addressed), and so is
their parsed form, so that a warm load of a large index is fast.

A suite whose ``InRelease`` and ``Release`` both answer 404 is not there: there
is nothing to update from (a release with no ``-updates``). Unless it answered
before: every suite that answered is remembered in the cache directory
(``suites/``, the day it last answered), and one of those that goes missing is
unreadable, not absent, so that its pending updates do not vanish with it (they
are unknown, and a rebuild's verification fails).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from patchline import _clock
from patchline._findings import AssessSkip
from patchline._http import tls_context
from patchline.errors import (
    IndexFormatError,
    IndexIntegrityError,
    IndexSignatureError,
    SuiteMissing,
    UpdateSourceError,
)
from patchline.updates._packages import decompress_index, load_parsed, parse_packages, store_parsed
from patchline.updates._release import (
    check_fresh,
    parse_release,
    strip_clearsign,
    verify_detached,
    verify_inrelease,
)
from patchline.updates.interface import (
    DEBIAN_ARCHIVE_KEYRING,
    BinaryPackage,
    FetchOptions,
    PackagesIndex,
    ReleaseInfo,
    SourceIndexes,
)

__all__ = ["AptSuite", "default_apt_cache_dir", "fetch_release", "last_answered", "load_sources"]

_INDEX_NAMES = ("Packages.xz", "Packages.gz", "Packages")


def default_apt_cache_dir() -> Path:
    """``patchline.inventory.default_cache_dir() / "apt"``."""
    from patchline._paths import cache_home as default_cache_dir

    return default_cache_dir() / "apt"


@dataclass(frozen=True, slots=True)
class AptSuite:
    """One suite of an apt repository: ``deb URL SUITE COMPONENT...`` for one architecture."""

    url: str  # the archive root: dists/ and pool/ are below it
    suite: str
    components: tuple[str, ...]
    arch: str = "amd64"
    keyring: Path | None = None  # the keys this suite is signed with when not configured (Ubuntu's for Ubuntu)

    def __post_init__(self) -> None:
        if not self.components:
            raise ValueError(f"AptSuite {self.url} {self.suite}: no components")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"AptSuite {self.suite}: only http(s) URLs are fetched, not {self.url!r}")

    @property
    def label(self) -> str:
        """``URL SUITE``, as reports list the sources."""
        return f"{self.url.rstrip('/')} {self.suite}"

    @property
    def dists_url(self) -> str:
        return f"{self.url.rstrip('/')}/dists/{self.suite}"

    def fetch(self, options: FetchOptions) -> SourceIndexes:
        """Fetch, verify and parse every component; a bad component becomes a skip.

        Raises :class:`~patchline.errors.IndexSignatureError`,
        :class:`~patchline.errors.IndexExpiredError` or another
        :class:`~patchline.errors.UpdateSourceError` when the suite as a whole
        cannot be used.
        """
        if self.keyring is not None and options.keyring == DEBIAN_ARCHIVE_KEYRING:
            options = replace(options, keyring=self.keyring)  # a configured keyring ([updates] keyring) wins
        with _client(options) as client:
            release = fetch_release(self, options, client=client)
            indexes: list[PackagesIndex] = []
            skipped: list[AssessSkip] = []
            missing: list[str] = []
            for component in self.components:
                try:
                    indexes.append(_fetch_packages(self, component, release, options, client=client))
                except UpdateSourceError as exc:
                    what = f"{self.dists_url}/{component}/binary-{self.arch}"
                    skipped.append(AssessSkip(what=what, reason=str(exc)))
                    if isinstance(exc, SuiteMissing):
                        missing.append(what)
            return SourceIndexes(indexes=tuple(indexes), skipped=tuple(skipped), sources=(self.label,),
                                 missing=tuple(missing), releases=((self.label, release),))


def load_sources(
    suites: Sequence[AptSuite], options: FetchOptions | None = None, *, strict: bool = False
) -> SourceIndexes:
    """Fetch every suite; one that cannot be used is recorded as a skip (raised when ``strict``).

    An empty list of suites is refused: an assessment against no source would
    silently report that nothing needs an update.
    """
    if not suites:
        raise ValueError("load_sources: no update sources given")
    options = options or FetchOptions()
    indexes: list[PackagesIndex] = []
    skipped: list[AssessSkip] = []
    missing: list[str] = []
    releases: list[tuple[str, ReleaseInfo]] = []
    with _client(options) as client:
        shared = FetchOptions(
            keyring=options.keyring,
            unsafe_skip_signature=options.unsafe_skip_signature,
            cache_dir=options.cache_dir,
            client=client,
            now=options.now,
            timeout=options.timeout,
        )
        for suite in suites:
            try:
                got = suite.fetch(shared)
            except UpdateSourceError as exc:
                if strict:
                    raise
                skipped.append(AssessSkip(what=suite.label, reason=str(exc)))
                if isinstance(exc, SuiteMissing):
                    missing.append(suite.label)
                continue
            if strict and got.skipped:
                raise UpdateSourceError(f"{suite.label}: {got.skipped[0].reason}")
            indexes.extend(got.indexes)
            skipped.extend(got.skipped)
            missing.extend(got.missing)
            releases.extend(got.releases)
    return SourceIndexes(indexes=tuple(indexes), skipped=tuple(skipped), sources=tuple(s.label for s in suites),
                         missing=tuple(missing), releases=tuple(releases))


@contextlib.contextmanager
def _client(options: FetchOptions) -> Iterator[httpx.Client]:
    if options.client is not None:
        yield options.client
        return
    with httpx.Client(timeout=options.timeout, follow_redirects=True, verify=tls_context()) as client:
        yield client


def _get(client: httpx.Client, url: str) -> bytes | None:
    """The body of ``url``; ``None`` on 404/410, an :class:`UpdateSourceError` otherwise."""
    try:
        resp = client.get(url)
    except httpx.HTTPError as exc:
        raise UpdateSourceError(f"cannot fetch {url}: {exc}") from exc
    if resp.status_code in (404, 410):
        return None
    if resp.status_code != 200:
        raise UpdateSourceError(f"cannot fetch {url}: HTTP {resp.status_code}")
    return resp.content


def fetch_release(suite: AptSuite, options: FetchOptions, *, client: httpx.Client) -> ReleaseInfo:
    """Fetch and verify ``InRelease`` (or ``Release`` + ``Release.gpg``), then parse it."""
    base = suite.dists_url
    what = f"{base}/InRelease"
    inrelease = _get(client, what)
    signed_by: str | None = None
    if inrelease is not None:
        document = inrelease
        if options.unsafe_skip_signature:
            text = strip_clearsign(inrelease)
        else:
            text, signed_by = verify_inrelease(inrelease, keyring=options.keyring, what=what)
    else:
        what = f"{base}/Release"
        release = _get(client, what)
        if release is None:
            cache_dir = options.cache_dir or default_apt_cache_dir()
            answered = last_answered(cache_dir, suite)
            if answered is not None:
                # Gone from a mirror that served it (or hidden by whoever answers for it): planned without it,
                # its updates would look applied.
                raise UpdateSourceError(
                    f"{suite.label}: no InRelease or Release at {base}/ any more (it answered on {answered}); "
                    "its pending updates cannot be checked",
                    detail=f"remembered in {_answer_path(cache_dir, suite)}: remove that file once the suite is "
                    "gone for good (a release moved to an archive: configure the archive as its source)")
            raise SuiteMissing(f"{suite.label}: no InRelease or Release at {base}/ (is the suite name right?)")
        signature = _get(client, f"{base}/Release.gpg")
        if options.unsafe_skip_signature:
            text = release
        elif signature is None:
            raise IndexSignatureError(
                f"{suite.label} is unsigned (no InRelease, no Release.gpg); refusing it",
                detail="use unsafe_skip_signature=True only for a repository you trust by other means",
            )
        else:
            signed_by = verify_detached(release, signature, keyring=options.keyring, what=what)
            text = release
        document = release
    info = parse_release(text, what=what, signed_by=signed_by)
    info = replace(info, document_sha256=hashlib.sha256(document).hexdigest())
    # A validly signed Release of another suite (a replayed "stable" for "stable-security") is refused, as apt does.
    names = {n for n in (info.suite, info.codename) if n}
    if names and suite.suite not in names and suite.suite.split("/")[0] not in names:
        raise IndexFormatError(
            f"{what} describes suite {info.suite!r} (codename {info.codename!r}), not {suite.suite!r}"
        )
    now = options.now or _clock.now()
    check_fresh(info, now=now, what=what)
    _remember_answer(options.cache_dir or default_apt_cache_dir(), suite, now.date().isoformat())
    return info


def last_answered(cache_dir: Path, suite: AptSuite) -> str | None:
    """The day (``YYYY-MM-DD``) ``suite`` last answered with a usable Release, or None if it never did."""
    try:
        record = json.loads(_answer_path(cache_dir, suite).read_text())
    except (OSError, ValueError):
        return None
    answered = record.get("answered") if isinstance(record, dict) else None
    return answered if isinstance(answered, str) else None


def _answer_path(cache_dir: Path, suite: AptSuite) -> Path:
    key = hashlib.sha256(f"{suite.url.rstrip('/')} {suite.suite}".encode()).hexdigest()
    return cache_dir / "suites" / f"{key}.json"


def _remember_answer(cache_dir: Path, suite: AptSuite, day: str) -> None:
    if last_answered(cache_dir, suite) == day:
        return
    record = json.dumps({"url": suite.url.rstrip("/"), "suite": suite.suite, "answered": day}).encode()
    path = _answer_path(cache_dir, suite)
    # Not fatal: the suite is usable; only the next 404 would be taken for a suite that never existed.
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, record)


def _fetch_packages(
    suite: AptSuite, component: str, release: ReleaseInfo, options: FetchOptions, *, client: httpx.Client
) -> PackagesIndex:
    # Debian's security archive lists "updates/main" for "main" (a historical prefix apt tolerates too).
    known = set(release.components) | {c.rsplit("/", 1)[-1] for c in release.components}
    if release.components and component not in known:
        raise SuiteMissing(
            f"{suite.label}: the Release has no component {component!r} "
            f"(it has: {', '.join(release.components) or 'none'})"
        )
    if release.architectures and suite.arch not in release.architectures:
        raise SuiteMissing(
            f"{suite.label}: the Release has no architecture {suite.arch!r} "
            f"(it has: {', '.join(release.architectures)})"
        )
    prefix = f"{component}/binary-{suite.arch}/"
    listed = [(name, release.sha256[prefix + name]) for name in _INDEX_NAMES if prefix + name in release.sha256]
    if not listed:
        raise SuiteMissing(f"{suite.label}: the Release lists no {prefix}Packages index")
    cache_dir = options.cache_dir or default_apt_cache_dir()

    def build(sha256: str, packages: tuple[BinaryPackage, ...]) -> PackagesIndex:
        return PackagesIndex.build(
            url=suite.url.rstrip("/"),
            suite=suite.suite,
            component=component,
            arch=suite.arch,
            sha256=sha256,
            packages=packages,
        )

    for _, (sha256, _) in listed:
        cached = load_parsed(cache_dir, sha256)
        if cached is not None:
            return build(sha256, cached)
    for name, (sha256, size) in listed:
        path = prefix + name
        url = f"{suite.dists_url}/{path}"
        data = _read_blob(cache_dir, sha256)
        if data is None:
            fetch_url = url
            if release.acquire_by_hash:  # immune to the index changing between InRelease and here
                fetch_url = f"{suite.dists_url}/{prefix}by-hash/SHA256/{sha256}"
            data = _get(client, fetch_url)
            if data is None and fetch_url != url:
                data = _get(client, url)
            if data is None:
                continue  # listed but not served: try the next compression, as apt does
            _check(data, sha256=sha256, size=size, what=url)
            _write_blob(cache_dir, sha256, data)
        text = decompress_index(data, path=path)
        plain = release.sha256.get(prefix + "Packages")
        if plain is not None and name != "Packages":
            _check(text.encode("utf-8"), sha256=plain[0], size=plain[1], what=f"{url} (decompressed)")
        packages = parse_packages(text, origin=url)
        store_parsed(cache_dir, sha256, packages)
        return build(sha256, packages)
    raise UpdateSourceError(f"{suite.label}: none of the listed {prefix}Packages indexes could be fetched")


def _check(data: bytes, *, sha256: str, size: int, what: str) -> None:
    """Hash and size against the Release, before anything decompresses or parses the bytes."""
    if len(data) != size:
        raise IndexIntegrityError(
            f"{what} is {len(data)} bytes, the Release says {size} (truncated or replaced); index skipped"
        )
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise IndexIntegrityError(
            f"{what} has SHA256 {got}, the Release says {sha256} (corrupt or tampered); index skipped"
        )


def _blob_path(cache_dir: Path, sha256: str) -> Path:
    return cache_dir / "blobs" / "sha256" / sha256


def _read_blob(cache_dir: Path, sha256: str) -> bytes | None:
    try:
        data = _blob_path(cache_dir, sha256).read_bytes()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == sha256 else None


def _write_blob(cache_dir: Path, sha256: str, data: bytes) -> None:
    path = _blob_path(cache_dir, sha256)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, data)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)
