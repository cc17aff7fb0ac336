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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from patchline import _clock
from patchline._model import Ecosystem, Package, Purl
from patchline.assess._input import ScanInput
from patchline.assess.model import Assessment, AssessSkip, Finding, Ignored, PendingUpdate
from patchline.errors import ConfigError, Error

if TYPE_CHECKING:
    from patchline.updates import AptSuite, FetchOptions, SourceIndexes

Progress = Callable[[str], None]

# Debian releases by major version, for SBOMs that name the distro only by number.
_DEBIAN_CODENAMES = {"10": "buster", "11": "bullseye", "12": "bookworm", "13": "trixie", "14": "forky"}


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


def _image_suites(scan: ScanInput) -> list[AptSuite]:
    """Update suites derived from the image's own apt sources (or its distro when they are unknown)."""
    from patchline._hostapt import host_debian_mirror
    from patchline.updates import IMAGE_SOURCE_GLOBS, sources_from_image_files

    files = {p: t for p, t in scan.system_files if any(fnmatch.fnmatch(p, g) for g in IMAGE_SOURCE_GLOBS)}
    codename = scan.distro.version_codename if scan.distro else None
    if codename is None and scan.distro and scan.distro.version_id:
        codename = _DEBIAN_CODENAMES.get(scan.distro.version_id.split(".")[0])
    if codename is None:
        raise ConfigError("cannot tell which Debian release the image is: no os-release and no apt sources")
    host = host_debian_mirror(codename)
    if not files:
        # An SBOM carries no apt sources: assume the release's main suite on the host's mirror.
        files = {"/etc/apt/sources.list": f"deb {host.mirror} {codename} main\n"}
    return sources_from_image_files(files, host_mirror=host)


def update_suites_for(scan: ScanInput, options: AssessOptions) -> list[AptSuite]:
    """The apt suites an image takes updates from: the configured ones, else its own sources' suites."""
    from patchline.updates import AptSuite

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
) -> tuple[list[PendingUpdate], list[AssessSkip], list[str]]:
    from patchline.updates import load_sources

    if not any(p.ecosystem == Ecosystem.DEB.value for p in scan.packages):
        return [], [], []
    suites = update_suites_for(scan, options)
    if not suites:
        return [], [AssessSkip("update sources", "the image's apt sources name no Debian release")], []
    say(f"reading {len(suites)} update source(s): {', '.join(s.label for s in suites)}")
    loaded = load_sources(suites, fetch_options(options))
    pending = pending_against(scan, loaded, changelogs=options.changelogs, say=say)
    return pending, list(loaded.skipped), list(loaded.sources)


def findings_for(
    scan: ScanInput, options: AssessOptions, *, say: Progress
) -> tuple[list[Finding], list[AssessSkip], list[str]]:
    from patchline.advisories import AdvisoryIndex, OsvFeed, match_packages

    if not options.feeds:
        return [], [], []
    say(f"loading {len(options.feeds)} advisory feed(s)")
    index = AdvisoryIndex.build_lazy([OsvFeed(f) for f in options.feeds])
    findings, skipped = match_packages(scan.packages, index, distro=scan.distro)
    feeds = list(index.feeds)
    # Read after matching: records parsed on lookup add their skips then.
    return findings, [*index.skipped, *skipped], feeds


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
    if options.updates:
        pending, update_skips, sources = pending_updates_for(scan, options, say=say)
        skipped += update_skips
    findings, feed_skips, feeds = findings_for(scan, options, say=say)
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
    )


def options_from_config(config: object, *, feeds: Sequence[str] = (), vex: Sequence[Path] = (),
                        unsafe_skip_signature: bool = False, changelogs: bool = True) -> AssessOptions:
    """AssessOptions from patchline.toml plus command-line additions."""
    from patchline._config import Config

    assert isinstance(config, Config)
    return AssessOptions(
        updates=config.updates.enabled,
        suites=tuple(UpdateSuiteSpec(s.url, s.suite, s.components) for s in config.updates.sources),
        keyring=config.updates.keyring,
        unsafe_skip_signature=unsafe_skip_signature or config.updates.unsafe_skip_signature,
        changelogs=changelogs,
        feeds=(*config.advisories.feeds, *feeds),
        vex=(*config.advisories.vex, *vex),
        ignore=tuple(IgnoreSpec(r.id, r.reason, r.package, r.expires) for r in config.ignore),
    )
