"""``patchline sbom`` and ``patchline scan``: one image's inventory, and what it misses."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from patchline._config import Config
from patchline._model import Inventory
from patchline._term import escape, printable
from patchline.assess.model import Assessment, PendingUpdate, Severity
from patchline.cli._options import Format, JsonOption, SbomFormatOption, ScanFormatOption, chosen_format, state
from patchline.cli._output import emit, stderr
from patchline.errors import ConfigError
from patchline.oci.interface import Descriptor, ResolvedImage

EXIT_UNKNOWN = 3
"""`patchline scan`: the image could not be (fully) assessed; what it found is reported, but it is not clean."""

OutputOption = Annotated[Path | None, typer.Option("--output", "-o", help="Write to FILE instead of stdout.")]
PlatformOption = Annotated[str | None, typer.Option(help="os/arch[/variant] of a multi-platform image.")]
InsecureOption = Annotated[bool, typer.Option(
    "--insecure", help="Allow plain HTTP or an unverified certificate for the image's registry host only; "
    "every other host keeps TLS verification.")]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the layer cache.")]


class _RichScanProgress:
    """Draws scan progress on stderr; only used when stderr is a terminal."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[int, TaskID] = {}
        self._total = 0

    def resolved(self, image: ResolvedImage) -> None:
        self._total = len(image.layers)

    def layer_started(self, index: int, descriptor: Descriptor, *, cached: bool) -> None:
        label = f"layer {index + 1}/{self._total} {descriptor.digest[7:19]}"
        total = descriptor.size if descriptor.size >= 0 else None
        if cached:
            label += " (cached)"
        self._tasks[index] = self._progress.add_task(label, total=total)

    def layer_advanced(self, index: int, done: int) -> None:
        self._progress.update(self._tasks[index], completed=done)

    def layer_finished(self, index: int) -> None:
        task = self._tasks[index]
        total = self._progress.tasks[task].total
        self._progress.update(task, completed=total or 1, total=total or 1)


def _scan(reference: str, *, platform: str | None, insecure: bool, use_cache: bool,
          catalogers: str | None, config: Config) -> Inventory:
    from patchline.catalog.list import DEFAULT_CATALOGERS, catalogers_by_name
    from patchline.inventory import LayerCache, default_cache_dir, scan_image
    from patchline.oci import open_source, parse_platform, parse_source_ref

    names = [n.strip() for n in catalogers.split(",") if n.strip()] if catalogers else config.scan.catalogers
    chosen = tuple(catalogers_by_name(names)) if names else DEFAULT_CATALOGERS
    plat_text = platform or config.scan.platform
    plat = parse_platform(plat_text) if plat_text else None
    ref = parse_source_ref(reference)
    if ref.image is not None and ref.image.registry in config.registries.insecure:
        insecure = True
    cache = None
    if use_cache and config.cache.enabled:
        cache = LayerCache(config.cache.dir or default_cache_dir(), chosen)
    with open_source(reference, platform=plat, insecure=insecure) as source:
        if stderr.is_terminal:
            with Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                console=stderr, transient=True,
            ) as bar:
                return scan_image(source, catalogers=chosen, cache=cache, progress=_RichScanProgress(bar))
        return scan_image(source, catalogers=chosen, cache=cache)


def render_table(inventory: Inventory, console: Console) -> None:
    layers = inventory.layers
    table = Table(title=escape(inventory.image.reference), title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("NAME", overflow="fold")
    table.add_column("VERSION", overflow="fold")
    table.add_column("TYPE")
    table.add_column("INTRODUCED", justify="right")
    table.add_column("CHANGED", justify="right")
    for p in inventory.packages:
        intro = f"{p.introduced_in}:{layers[p.introduced_in].diff_id[7:19]}"
        changed = "" if p.changed_in == p.introduced_in else f"{p.changed_in}:{layers[p.changed_in].diff_id[7:19]}"
        table.add_row(escape(p.name), escape(p.version), p.ecosystem.value, intro, changed)
    console.print(table)
    counts: dict[str, int] = {}
    for p in inventory.packages:
        counts[p.ecosystem.value] = counts.get(p.ecosystem.value, 0) + 1
    by_type = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
    distro = inventory.distro.pretty_name or inventory.distro.id if inventory.distro else "unknown distro"
    plural = "layer" if len(layers) == 1 else "layers"
    console.print(
        printable(f"\n{len(inventory.packages)} packages ({by_type}) in {len(layers)} {plural}; {distro}; "
                  f"config {inventory.image.config_digest}"),
        soft_wrap=True,
        markup=False,
    )
    if inventory.skipped:
        skipped = Table(title="skipped", title_justify="left", show_edge=False, pad_edge=False)
        skipped.add_column("LAYER", justify="right")
        skipped.add_column("PATH", overflow="fold")
        skipped.add_column("REASON", overflow="fold")
        for s in inventory.skipped:
            skipped.add_row("" if s.layer is None else str(s.layer), escape(s.path), escape(s.reason))
        console.print(skipped)


def sbom(
    image: Annotated[str, typer.Argument(help="Image: REGISTRY/REPO[:TAG|@DIGEST], containers-storage:REF, "
                                         "oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REF]")],
    output_format: SbomFormatOption = Format.TABLE,
    json_output: JsonOption = False,
    output: OutputOption = None,
    platform: PlatformOption = None,
    insecure: InsecureOption = False,
    no_cache: NoCacheOption = False,
    catalogers: Annotated[str | None, typer.Option(help="Comma-separated cataloger names (default: all).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 if anything was skipped.")] = False,
) -> None:
    """Inventory every package in IMAGE, with the layer that introduced it."""
    try:
        config = state.config()
        fmt = chosen_format(output_format, json_output)
        inventory = _scan(image, platform=platform, insecure=insecure, use_cache=not no_cache,
                          catalogers=catalogers, config=config)
        if fmt is Format.TABLE:
            emit(output, table=lambda console: render_table(inventory, console))
        else:
            from patchline.sbom import render_sbom

            emit(output, text=render_sbom(inventory, fmt.value))
        if output is not None:
            stderr.print(f"wrote {fmt.value} SBOM of {len(inventory.packages)} packages to {output}")
    except OSError as exc:
        raise ConfigError(f"cannot write {exc.filename}: {exc.strerror}") from exc
    if inventory.skipped and (strict or config.scan.strict):
        stderr.print(f"{len(inventory.skipped)} file(s) skipped; failing because of --strict")
        raise typer.Exit(1)


class FailOn(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


def render_assessment_table(assessment: Assessment, console: Console) -> None:
    from patchline.assess import summary

    if assessment.pending:
        table = Table(title="pending updates (by source package)", title_justify="left", show_edge=False,
                      pad_edge=False)
        for column in ("SOURCE", "PACKAGES", "INSTALLED", "CANDIDATE", "SUITE", "CVES"):
            table.add_column(column, overflow="fold")
        groups: dict[tuple[str, str], list[PendingUpdate]] = {}
        for p in assessment.pending:
            groups.setdefault((p.source_name, p.candidate), []).append(p)
        for (source, candidate), items in sorted(groups.items()):
            cves = sorted({c for p in items for c in p.cves})
            note = next((p.changelog_error for p in items if p.changelog_error), None)
            table.add_row(escape(source), escape(" ".join(sorted(p.package.name for p in items))),
                          escape(items[0].package.version), escape(candidate), escape(items[0].suite),
                          escape(" ".join(cves) or (f"(changelog: {note})" if note else "-")))
        console.print(table)
    if assessment.findings:
        table = Table(title="advisories", title_justify="left", show_edge=False, pad_edge=False)
        for column in ("PACKAGE", "VERSION", "ADVISORY", "SEVERITY", "FIXED IN", "FIX IN SOURCES", "LAYER"):
            table.add_column(column, overflow="fold")
        for f in assessment.findings:
            fix = {True: "yes", False: "no", None: ""}[f.fix_available]
            layer = "" if f.package.introduced_in is None else str(f.package.introduced_in)
            table.add_row(escape(f.package.name), escape(f.package.version), escape(f.advisory),
                          f.severity.name.lower(), escape(", ".join(f.fixed_versions) or "no fix"), fix, layer)
        console.print(table)
    if assessment.ignored:
        table = Table(title="ignored", title_justify="left", show_edge=False, pad_edge=False)
        for column in ("ADVISORY", "PACKAGE", "REASON", "RULE"):
            table.add_column(column, overflow="fold")
        for i in assessment.ignored:
            table.add_row(escape(i.finding.advisory), escape(i.finding.package.name), escape(i.reason), escape(i.rule))
        console.print(table)
    if assessment.skipped:
        table = Table(title="skipped", title_justify="left", show_edge=False, pad_edge=False)
        table.add_column("WHAT", overflow="fold")
        table.add_column("REASON", overflow="fold")
        for skip in assessment.skipped:
            table.add_row(escape(skip.what), escape(skip.reason))
        console.print(table)
    totals = summary(assessment)
    severities = ", ".join(f"{k} {v}" for k, v in totals["findings_by_severity"].items() if v) or "none"
    if assessment.unknown:
        lines = "\n".join(f"  - {reason}" for reason in assessment.unknown)
        console.print(printable(f"\nUNKNOWN: patchline could not check everything in this image, so it is not "
                                f"clean:\n{lines}"), soft_wrap=True, markup=False)
    if assessment.no_advisory_feed:
        from patchline.assess import no_feed_warning

        console.print(printable(f"\nWARNING: {no_feed_warning(assessment.no_advisory_feed)}"), soft_wrap=True,
                      markup=False)
    console.print(
        printable(f"\n{assessment.image}: {assessment.state.value}: {totals['pending_updates']} pending updates "
                  f"({totals['pending_sources']} source packages), {totals['findings']} advisories ({severities}; "
                  f"{totals['fixable']} with a fix), {totals['ignored']} ignored, {totals['skipped']} skipped"),
        soft_wrap=True, markup=False,
    )


def scan(
    image: Annotated[str | None, typer.Argument(help="Image to assess (any form `sbom` accepts).")] = None,
    sbom_file: Annotated[Path | None, typer.Option("--sbom", help="Assess this SBOM (CycloneDX or patchline "
                                                                  "JSON) instead of an image.")] = None,
    osv: Annotated[list[str] | None, typer.Option("--osv", help="OSV feed: dir, zip or URL (repeatable).")] = None,
    vex: Annotated[list[Path] | None, typer.Option("--vex", help="OpenVEX document (repeatable).")] = None,
    output_format: ScanFormatOption = Format.TABLE,
    json_output: JsonOption = False,
    output: OutputOption = None,
    fail_on: Annotated[FailOn | None, typer.Option(help="Exit 1 if a finding is at least this severe.")] = None,
    fail_on_pending: Annotated[bool, typer.Option("--fail-on-pending-updates",
                                                  help="Exit 1 if any update is pending.")] = False,
    no_updates: Annotated[bool, typer.Option("--no-updates", help="Do not read update sources.")] = False,
    no_changelogs: Annotated[bool, typer.Option("--no-changelogs", help="Do not read CVEs from changelogs.")] = False,
    unsafe_skip_signature: Annotated[bool, typer.Option(
        "--unsafe-skip-signature", help="Read update indexes whose signature is missing or bad.")] = False,
    platform: PlatformOption = None,
    insecure: InsecureOption = False,
    no_cache: NoCacheOption = False,
) -> None:
    """Which updates does IMAGE miss, and which advisories affect it."""
    from dataclasses import replace

    from patchline.assess import assess, from_inventory, options_from_config, read_sbom_file, render_assessment

    try:
        if (image is None) == (sbom_file is None):
            raise ConfigError("name either an IMAGE or --sbom FILE")
        config = state.config()
        fmt = chosen_format(output_format, json_output)
        if sbom_file is not None:
            scan_input = read_sbom_file(sbom_file)
        else:
            assert image is not None
            scan_input = from_inventory(_scan(image, platform=platform, insecure=insecure, use_cache=not no_cache,
                                              catalogers=None, config=config))
        options = options_from_config(config, feeds=osv or (), vex=vex or (),
                                      unsafe_skip_signature=unsafe_skip_signature, changelogs=not no_changelogs)
        if no_updates:
            options = replace(options, updates=False)
        if stderr.is_terminal:
            with stderr.status("assessing") as status:
                assessment = assess(scan_input, options, progress=lambda line: status.update(escape(line)))
        else:
            assessment = assess(scan_input, options)
        if fmt is Format.TABLE:
            emit(output, table=lambda console: render_assessment_table(assessment, console))
        else:
            if assessment.no_advisory_feed:
                from patchline.assess import no_feed_warning

                stderr.print(f"warning: {escape(no_feed_warning(assessment.no_advisory_feed))}", soft_wrap=True)
            emit(output, text=render_assessment(assessment, fmt.value, inventory=scan_input.inventory,
                                                sbom=scan_input.cyclonedx))
        if output is not None:
            stderr.print(f"wrote the {fmt.value} assessment to {output}")
    except OSError as exc:
        raise ConfigError(f"cannot write {exc.filename}: {exc.strerror}") from exc
    failed = []
    if fail_on is not None:
        threshold = Severity[fail_on.value.upper()]
        worst = [f for f in assessment.findings if f.severity >= threshold]
        if worst:
            failed.append(f"{len(worst)} finding(s) at or above {fail_on.value}")
    if fail_on_pending and assessment.pending:
        failed.append(f"{len(assessment.pending)} pending update(s)")
    if failed:
        stderr.print(f"failing: {'; '.join(failed)}")
        raise typer.Exit(1)
    if assessment.unknown:
        stderr.print(f"could not assess: {escape(assessment.unknown[0])}"
                     + (f" (and {len(assessment.unknown) - 1} more)" if len(assessment.unknown) > 1 else ""))
        raise typer.Exit(EXIT_UNKNOWN)
