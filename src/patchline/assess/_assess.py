"""Assess one image: pending updates from its update sources, findings from advisory feeds.

The two routes are independent and both optional: an image may be assessed
against the distribution's update repositories only (no feeds configured), or
against feeds only (``updates.enabled = false``, or a non-Debian image). What
cannot be used (a suite that fails its signature, a malformed advisory, a
version that is invalid in its ecosystem) is recorded as a skip, and the rest
goes on.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from patchline import _clock
from patchline._model import Distro, Ecosystem, Package, Purl
from patchline.assess._input import ScanInput
from patchline.assess.model import Assessment, AssessSkip, Finding, Ignored, PendingUpdate
from patchline.errors import ConfigError, Error, NoUpdateRoute

if TYPE_CHECKING:
    from patchline.updates import AptSuite, FetchOptions, SourceIndexes

Progress = Callable[[str], None]

_OS_ECOSYSTEMS = (Ecosystem.DEB.value, Ecosystem.RPM.value, Ecosystem.APK.value)


@dataclass(frozen=True, slots=True)
class UpdateSuiteSpec:
    """An explicit update source from patchline.toml."""

    url: str
    suite: str
    components: tuple[str, ...] = ("main",)


@dataclass(frozen=True, slots=True)
class IgnoreSpec:
    id: str
    reason: str
    package: str | None = None
    expires: dt.date | None = None


@dataclass(frozen=True, slots=True)
class AssessOptions:
    """How to assess; every field has the safe default."""

    updates: bool = True
    suites: tuple[UpdateSuiteSpec, ...] = ()  # empty: derive from the image's own apt sources
    keyring: Path | None = None
    unsafe_skip_signature: bool = False
    changelogs: bool = True
    feeds: tuple[str, ...] = ()
    vex: tuple[Path, ...] = ()
    ignore: tuple[IgnoreSpec, ...] = ()
    today: dt.date = field(default_factory=_clock.today)


def _as_packages(scan: ScanInput) -> list[Package]:
    """The inventory's packages (or the SBOM's, rebuilt) for the apt planner."""
    if scan.inventory is not None:
        return list(scan.inventory.packages)
    out = []
    for ref in scan.packages:
        if ref.ecosystem != Ecosystem.DEB.value:
            continue
        out.append(Package(
            ecosystem=Ecosystem.DEB, name=ref.name, version=ref.version, purl=Purl(ref.purl),
            introduced_in=ref.introduced_in or 0, changed_in=ref.introduced_in or 0, locations=(),
            source_name=ref.source_name, source_version=ref.source_version, arch=ref.arch,
        ))
    return out


def debian_release(scan: ScanInput) -> str | None:
    """The Debian release an image runs: os-release's ``VERSION_CODENAME``, else its ``VERSION_ID``, else
    ``/etc/debian_version`` (``12.8`` -> bookworm, ``trixie/sid`` -> trixie); ``None`` when none says."""
    from patchline._hostapt import DEBIAN_CODENAMES

    distro = scan.distro
    if distro is not None and distro.version_codename:
        return distro.version_codename
    if distro is not None and distro.version_id:
        codename = DEBIAN_CODENAMES.get(distro.version_id.split(".")[0])
        if codename:
            return codename
    text = dict(scan.system_files).get("/etc/debian_version", "").strip()
    if text:
        head = text.split("/")[0].split(".")[0]
        return DEBIAN_CODENAMES.get(head) or (head if head.isalpha() and head != "sid" else None)
    return None


def _image_suites(scan: ScanInput) -> list[AptSuite]:
    """Update suites of the image's Debian release: its own apt sources say which release and components,
    os-release or ``/etc/debian_version`` when it has none (slim and distroless images delete them); the host's
    Debian mirror says where (one archive serves every release), else the mirror the image names.

    Raises :class:`NoUpdateRoute` when the image is not Debian or its release or a mirror cannot be told.
    """
    from patchline._hostapt import host_debian_mirror
    from patchline.updates import IMAGE_SOURCE_GLOBS, mirror_from_image_files, sources_from_image_files

    distro = scan.distro
    files = {p: t for p, t in scan.system_files if any(fnmatch.fnmatch(p, g) for g in IMAGE_SOURCE_GLOBS)}
    arch = scan.inventory.image.architecture if scan.inventory is not None else "amd64"
    if distro is not None and distro.id == "ubuntu":
        return _ubuntu_suites(distro, files, arch)
    if distro is not None and distro.id != "debian":
        name = distro.pretty_name or distro.id
        raise NoUpdateRoute(f"patchline has no update route for {name}: its pending updates cannot be checked")
    codename = debian_release(scan)
    try:
        host = host_debian_mirror(codename)
    except ConfigError as exc:
        image_mirror = mirror_from_image_files(files)
        if image_mirror is None:
            raise NoUpdateRoute(exc.message, detail=exc.detail) from exc
        host = image_mirror
    if host.security is None:
        image_mirror = mirror_from_image_files(files)
        if image_mirror is not None and image_mirror.security is not None:
            host = host._replace(security=image_mirror.security)
    suites = sources_from_image_files(files, host_mirror=host, arch=arch) if files else []
    if suites:
        return suites
    if codename is None:
        raise NoUpdateRoute("cannot tell which Debian release the image runs: no VERSION_CODENAME or VERSION_ID "
                            "in os-release, no /etc/debian_version, no apt source naming a release")
    # No usable sources in the image (deleted, distroless, an SBOM): the release's main suite on the mirror.
    return sources_from_image_files({"/etc/apt/sources.list": f"deb {host.mirror} {codename} main\n"},
                                    host_mirror=host, arch=arch)


_UBUNTU_CODENAMES = {"20.04": "focal", "22.04": "jammy", "24.04": "noble", "24.10": "oracular", "25.04": "plucky",
                     "25.10": "questing", "26.04": "resolute"}


def _ubuntu_suites(distro: Distro, files: Mapping[str, str], arch: str) -> list[AptSuite]:
    """Ubuntu's -security and -updates pockets of the image's release, at the archive its sources name."""
    from patchline.updates import ubuntu_sources_from_image_files

    release = distro.version_codename or _UBUNTU_CODENAMES.get((distro.version_id or "")[:5])
    if release is None:
        raise NoUpdateRoute(f"cannot tell which Ubuntu release the image runs ({distro.pretty_name or distro.id}): "
                            "no VERSION_CODENAME in os-release")
    suites = ubuntu_sources_from_image_files(files, release=release, arch=arch)
    if not suites:
        raise NoUpdateRoute(f"the image's apt sources name no archive for Ubuntu {release}: name Ubuntu's archive "
                            "(or a mirror of it) in patchline.toml ([[updates.sources]])")
    return suites


def update_suites_for(scan: ScanInput, options: AssessOptions) -> list[AptSuite]:
    """The apt suites an image takes updates from: the configured ones, else its own release's.

    Empty only for an SBOM that names no operating system and no OS package (nothing to update). Raises
    :class:`NoUpdateRoute` when the image's updates cannot be checked: no OS package database (busybox,
    scratch), a distribution patchline has no update route for, a release or mirror that cannot be told.
    """
    from patchline.updates import AptSuite

    os_ecosystems = sorted({p.ecosystem for p in scan.packages if p.ecosystem in _OS_ECOSYSTEMS})
    distro = (scan.distro.pretty_name or scan.distro.id) if scan.distro else None
    if not os_ecosystems:
        if scan.inventory is None and scan.distro is None:
            return []  # an SBOM of application packages only: no operating system to update
        where = f" ({distro})" if distro else ""
        raise NoUpdateRoute(f"no package database of the operating system (dpkg, rpm, apk) found{where}: "
                            "patchline cannot tell what is installed, so it cannot tell which updates are missing")
    if Ecosystem.DEB.value not in os_ecosystems:
        raise NoUpdateRoute(f"patchline has no update route for {distro or 'the image'} "
                            f"({', '.join(os_ecosystems)} packages): its pending updates cannot be checked")
    if options.suites:
        return [AptSuite(s.url, s.suite, tuple(s.components)) for s in options.suites]
    return _image_suites(scan)


def fetch_options(options: AssessOptions) -> FetchOptions:
    from patchline.updates import FetchOptions

    fetch = FetchOptions(unsafe_skip_signature=options.unsafe_skip_signature)
    if options.keyring is not None:
        fetch = replace(fetch, keyring=options.keyring)
    return fetch


def pending_against(scan: ScanInput, loaded: SourceIndexes, *, changelogs: bool, say: Progress) -> list[PendingUpdate]:
    """What ``apt-get upgrade`` would install in the image from these loaded indexes (with changelog CVEs)."""
    from patchline.updates import plan_upgrade, read_changelogs

    status = scan.inventory.system_file("/var/lib/dpkg/status") if scan.inventory is not None else None
    plan = plan_upgrade(_as_packages(scan), loaded.indexes, dpkg_status=status)
    pending = list(plan.pending)
    if changelogs and pending:
        say(f"reading the changelogs of {len(plan.debs)} update(s)")
        pending = list(read_changelogs(plan).pending)
    return pending


def pending_updates_for(
    scan: ScanInput, options: AssessOptions, *, say: Progress
) -> tuple[list[PendingUpdate], list[AssessSkip], list[str], list[str], list[Finding]]:
    """(pending updates, skips, sources used, why the pending updates are unknown: empty when they are known,
    findings of releases out of security support)."""
    from patchline.updates import load_sources

    try:
        suites = update_suites_for(scan, options)
    except NoUpdateRoute as exc:
        return [], [], [], [exc.message], []
    if not suites:
        return [], [], [], [], []
    say(f"reading {len(suites)} update source(s): {', '.join(s.label for s in suites)}")
    loaded = load_sources(suites, fetch_options(options))
    pending = pending_against(scan, loaded, changelogs=options.changelogs, say=say)
    support = out_of_support(scan, loaded, today=options.today)
    return pending, list(loaded.skipped), list(loaded.sources), unchecked_sources(suites, loaded), support


SECURITY_SUITE_SILENT_DAYS = 30
"""A security suite whose Release is older than this has stopped: a supported one is re-signed every week."""


def out_of_support(scan: ScanInput, loaded: SourceIndexes, *, today: dt.date) -> list[Finding]:
    """A finding for each security suite that has stopped publishing (the release is out of security support,
    as bullseye after its LTS ended): the image gets no more security fixes, whatever is pending today."""
    from patchline._hostapt import release_of
    from patchline.assess.model import AdvisoryId, PackageRef, Severity

    out = []
    for label, release in loaded.releases:
        suite = label.rsplit(" ", 1)[-1]
        if not suite.endswith(("-security", "/updates")) or release.date is None:
            continue
        silent = (today - release.date.date()).days
        if silent <= SECURITY_SUITE_SILENT_DAYS:
            continue
        name = release_of(suite)
        carrier = next((p for p in scan.packages if p.ecosystem == Ecosystem.DEB.value and p.name == "base-files"),
                       None) or PackageRef(ecosystem="deb", name="debian", version=name, purl=f"pkg:deb/debian/{name}")
        version = f" {release.suite.removesuffix('-security')}" if release.suite else ""
        out.append(Finding(
            advisory=AdvisoryId(f"PATCHLINE-EOSL-DEBIAN-{name.upper()}"), aliases=(), package=carrier,
            fixed_versions=(), severity=Severity.HIGH,
            summary=(f"Debian {name}{version} is out of security support: {suite} was last updated on "
                     f"{release.date:%Y-%m-%d} ({silent} days ago); no security fix reaches this image any more. "
                     "Move it to a supported release."),
            feed="update sources"))
    return out


def unchecked_sources(suites: Sequence[AptSuite], loaded: SourceIndexes) -> list[str]:
    """Why pending updates computed from ``loaded`` cannot be trusted as complete: a source that is there but
    could not be read or trusted (its updates would look applied), or a security suite that is not there at all
    (the release is archived or out of support: nothing tells which security fixes it misses)."""
    from patchline._hostapt import release_of

    out = [f"{s.what}: {s.reason}" for s in loaded.unread]
    for suite in suites:
        if suite.label in loaded.missing and suite.suite.endswith(("-security", "/updates")):
            out.append(f"the security suite {suite.suite} is not at {suite.url}: Debian {release_of(suite.suite)} "
                       "is archived or out of security support, so its missing security fixes cannot be checked")
    return out


def findings_for(
    scan: ScanInput, options: AssessOptions, *, say: Progress
) -> tuple[list[Finding], list[AssessSkip], list[str], tuple[str, ...]]:
    """(findings, skips, feeds used, ecosystems of the image's packages that no feed covers)."""
    from patchline.advisories import (
        AdvisoryIndex,
        AliasSeverities,
        OsvFeed,
        feed_coverage,
        match_packages,
        uncovered_ecosystems,
    )

    if not options.feeds:
        return [], [], [], uncovered_ecosystems(scan.packages, (), distro=scan.distro)
    say(f"loading {len(options.feeds)} advisory feed(s)")
    osv_feeds = [OsvFeed(f) for f in options.feeds]
    index = AdvisoryIndex.build_lazy(osv_feeds)
    findings, skipped = match_packages(scan.packages, index, distro=scan.distro)
    documents = [doc for feed in osv_feeds for _, doc, _ in feed.documents()]  # read once, cached by each feed
    findings = AliasSeverities.from_documents(documents).fill(findings)
    uncovered = uncovered_ecosystems(scan.packages, feed_coverage(documents), distro=scan.distro)
    feeds = list(index.feeds)
    # Read after matching: records parsed on lookup add their skips then.
    return findings, [*index.skipped, *skipped], feeds, uncovered


def _mark_fix_available(findings: list[Finding], pending: list[PendingUpdate], checked: bool) -> list[Finding]:
    """Whether the configured update sources already carry a version that fixes each finding."""
    from patchline.versions import scheme_for

    by_package = {(p.package.name, p.package.arch): p for p in pending}
    scheme = scheme_for("deb")
    out = []
    for f in findings:
        if f.package.ecosystem != Ecosystem.DEB.value or not checked:
            out.append(f)
            continue
        update = by_package.get((f.package.name, f.package.arch))
        available = False
        if update is not None and f.fixed_versions:
            # Debian advisories name source versions; the candidate's source version is comparable.
            try:
                available = any(scheme.compare(update.source_version, fixed) >= 0 for fixed in f.fixed_versions)
            except Error:
                available = False
        out.append(replace(f, fix_available=available))
    return out


def assess(scan: ScanInput, options: AssessOptions | None = None, *, progress: Progress | None = None) -> Assessment:
    """Pending updates and advisory findings for the packages of one image."""
    from patchline.advisories import IgnoreRule, VexDocument, apply_ignores, expired_rules

    options = options or AssessOptions()
    say = progress or (lambda _line: None)
    skipped = [AssessSkip(what, reason) for what, reason in scan.unreadable]
    pending: list[PendingUpdate] = []
    sources: list[str] = []
    unknown: list[str] = []
    support: list[Finding] = []
    if options.updates:
        pending, update_skips, sources, unknown, support = pending_updates_for(scan, options, say=say)
        skipped += update_skips
    findings, feed_skips, feeds, no_feed = findings_for(scan, options, say=say)
    findings = [*findings, *support]
    skipped += feed_skips
    findings = _mark_fix_available(findings, pending, checked=options.updates and bool(sources))

    rules = [IgnoreRule(id=r.id, reason=r.reason, package=r.package, expires=r.expires) for r in options.ignore]
    vex = [VexDocument.load(path) for path in options.vex]
    ignored: list[Ignored] = []
    if rules or vex:
        findings, ignored = apply_ignores(findings, rules, vex, today=options.today)
    for rule in expired_rules(rules, today=options.today):
        skipped.append(AssessSkip(f"ignore rule {rule.id}", f"expired on {rule.expires}; it no longer applies"))
    return Assessment(
        image=scan.image,
        config_digest=scan.config_digest,
        pending=tuple(sorted(pending, key=lambda p: (p.source_name, p.package.name))),
        findings=tuple(sorted(findings, key=lambda f: (-f.severity, f.package.name, f.advisory))),
        ignored=tuple(ignored),
        skipped=tuple(skipped),
        sources=tuple(sources),
        feeds=tuple(feeds),
        unknown=tuple(unknown),
        no_advisory_feed=no_feed,
    )


def options_from_config(config: object, *, feeds: Sequence[str] = (), vex: Sequence[Path] = (),
                        unsafe_skip_signature: bool = False, changelogs: bool = True) -> AssessOptions:
    """AssessOptions from patchline.toml plus command-line additions."""
    from patchline._config import Config
    from patchline.advisories import fetched_feeds

    assert isinstance(config, Config)
    return AssessOptions(
        updates=config.updates.enabled,
        suites=tuple(UpdateSuiteSpec(s.url, s.suite, s.components) for s in config.updates.sources),
        keyring=config.updates.keyring,
        unsafe_skip_signature=unsafe_skip_signature or config.updates.unsafe_skip_signature,
        changelogs=changelogs,
        feeds=(*config.advisories.feeds, *fetched_feeds(config.advisories), *feeds),
        vex=(*config.advisories.vex, *vex),
        ignore=tuple(IgnoreSpec(r.id, r.reason, r.package, r.expires) for r in config.ignore),
    )
