"""The fleet commands of the CLI: ``discover``, ``refresh``, ``where``, ``fleet``, ``advisory``, ``db``.

They read and write the store; each parses, calls one library function, renders.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from patchline._term import escape, printable
from patchline.assess.model import Severity
from patchline.cli._options import (
    DbOption,
    Format,
    FormatOption,
    JsonOption,
    NoCacheOption,
    NoUpdatesOption,
    chosen_format,
    db_url,
    open_db,
    state,
)
from patchline.cli._output import dump, emit, stderr
from patchline.errors import ConfigError

if TYPE_CHECKING:
    from patchline.fleet import DiscoverOptions, DiscoveryReport
    from patchline.store import AdvisoryReport, FleetSummary, Store, WhereHit

discover_app = typer.Typer(help="Find what runs and what registries hold; inventory images new to the store.",
                           rich_markup_mode=None,
                           no_args_is_help=True)
db_app = typer.Typer(rich_markup_mode=None, help="The store's database: schema migrations.", no_args_is_help=True)


def _severity(value: int | None) -> str:
    return "" if value is None else Severity(value).name.lower()


_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def _styled(name: str) -> str:
    style = _STYLE.get(name)
    return f"[{style}]{name}[/]" if style else name


def _progress() -> Callable[[str], None] | None:
    if not stderr.is_terminal and state.verbose == 0:
        return None
    return lambda line: stderr.print(escape(line), style="dim")


def _options(insecure: bool, no_cache: bool) -> DiscoverOptions:
    from patchline.fleet import DiscoverOptions
    from patchline.inventory import LayerCache, default_cache_dir

    config = state.config()
    cache = None
    if not no_cache and config.cache.enabled:
        from patchline.catalog.list import DEFAULT_CATALOGERS

        cache = LayerCache(config.cache.dir or default_cache_dir(), DEFAULT_CATALOGERS)
    return DiscoverOptions(cache=cache, insecure=insecure, platform=config.scan.platform, strict=config.scan.strict)


def _after_discovery(store: Store, report: DiscoveryReport, *, updates: bool, fmt: Format) -> None:
    """Assess what discovery added (pending updates from the stored inventories), then report."""
    refresh = None
    if updates and report.inventoried and state.config().updates.enabled:
        from patchline.assess import options_from_config
        from patchline.fleet import refresh_updates

        refresh = refresh_updates(store, options_from_config(state.config()), progress=_progress())
    if fmt is Format.JSON:
        emit(None, text=dump("patchline/discovery/v1", {"discovery": report, "updates": refresh}))
        return
    sync = report.sync
    parts = [f"{report.source}:"]
    if sync is not None:
        parts.append(f"{report.workloads} running ({sync.new} new, {sync.gone} gone);")
    if report.tags:
        parts.append(f"{report.tags} tag(s);")
    parts.append(f"{report.images} image(s), {len(report.inventoried)} inventoried, {report.already_known} known")
    stderr.print(" ".join(parts), markup=False)
    if refresh is not None:
        stderr.print(f"pending updates: {refresh.pending} in {refresh.images_with_pending} of {refresh.images} "
                     "image(s)", markup=False)
        if refresh.kept:
            stderr.print(f"[yellow]kept as they were:[/] the pending updates of {len(refresh.kept)} image(s) whose "
                         "update sources could not all be read")
        _print_unknown(refresh.unknown, indent="")
    for what, why in (*report.failed, *report.skipped):
        stderr.print(f"[yellow]skipped[/] {escape(what)}: {escape(why)}")
    if sync is not None and sync.unresolved:
        stderr.print(f"[yellow]not inventoried:[/] {escape(', '.join(sync.unresolved))}")


@discover_app.command("podman")
def discover_podman(
    db: DbOption = None,
    host: Annotated[str | None, typer.Option(help="Name this host in the store (default: its hostname).")] = None,
    no_updates: NoUpdatesOption = False,
    no_cache: NoCacheOption = False,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """Record this host's running podman containers; inventory images new to the store."""
    from patchline.fleet import discover_podman as run

    with open_db(db) as store:
        report = run(store, options=_options(False, no_cache), host=host, progress=_progress())
        _after_discovery(store, report, updates=not no_updates,
                         fmt=chosen_format(output_format, json_output))
    if report.failed:
        raise typer.Exit(1 if state.config().scan.strict else 0)


@discover_app.command("registry")
def discover_registry(
    targets: Annotated[list[str] | None, typer.Argument(help="REGISTRY or REGISTRY/REPO (default: patchline.toml "
                                                             "[fleet] registries).")] = None,
    db: DbOption = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Allow plain HTTP or an unverified certificate for the named registry host(s) only; "
        "every other host keeps TLS verification.")] = False,
    page_size: Annotated[int, typer.Option(help="Entries per catalog and tag-list request.")] = 100,
    no_updates: NoUpdatesOption = False,
    no_cache: NoCacheOption = False,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """List a registry's repositories and tags; inventory what is new by digest only."""
    from patchline.fleet import discover_registry as run

    config = state.config()
    chosen = targets or list(config.fleet.registries)
    if not chosen:
        raise ConfigError("name a REGISTRY[/REPO], or list some under [fleet] registries in patchline.toml")
    with open_db(db) as store:
        for target in chosen:
            host = target.split("/", 1)[0]
            options = _options(insecure or host in config.registries.insecure, no_cache)
            report = run(store, target, options=options, page_size=page_size, progress=_progress())
            _after_discovery(store, report, updates=not no_updates,
                             fmt=chosen_format(output_format, json_output))


@discover_app.command("kubernetes")
def discover_kubernetes(
    db: DbOption = None,
    context: Annotated[str | None, typer.Option(help="kubeconfig context (default: the current one).")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="One namespace (default: all).")] = None,
    kubeconfig: Annotated[str | None, typer.Option(help="kubeconfig file (default: $KUBECONFIG, "
                                                        "~/.kube/config).")] = None,
    no_updates: NoUpdatesOption = False,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """Record a cluster's running pods and their image digests; inventory images new to the store."""
    from patchline.fleet import discover_kubernetes as run

    with open_db(db) as store:
        report = run(store, options=_options(False, False), context=context, namespace=namespace,
                     kubeconfig=kubeconfig, progress=_progress())
        _after_discovery(store, report, updates=not no_updates,
                         fmt=chosen_format(output_format, json_output))


def refresh(
    db: DbOption = None,
    osv: Annotated[list[str] | None, typer.Option("--osv", help="OSV feed: dir, zip or URL (repeatable; added to "
                                                                "patchline.toml's).")] = None,
    no_updates: Annotated[bool, typer.Option("--no-updates", help="Do not re-read update sources.")] = False,
    no_changelogs: Annotated[bool, typer.Option("--no-changelogs", help="Do not read CVEs from changelogs.")] = False,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """Re-assess the stored fleet after feeds or update sources changed, without reading any image."""
    from patchline.assess import options_from_config
    from patchline.fleet import refresh_feeds, refresh_updates

    config = state.config()
    options = options_from_config(config, feeds=osv or (), changelogs=not no_changelogs)
    if not options.feeds and (no_updates or not config.updates.enabled):
        raise ConfigError("nothing to refresh: no advisory feeds (--osv or [advisories] feeds) and updates off")
    with open_db(db) as store:
        feeds = refresh_feeds(store, options.feeds, progress=_progress())
        updates = None
        if not no_updates and config.updates.enabled:
            updates = refresh_updates(store, options, progress=_progress())
    if chosen_format(output_format, json_output) is Format.JSON:
        emit(None, text=dump("patchline/refresh/v1", {"feeds": feeds, "updates": updates}))
        return
    for f in feeds:
        stderr.print(
            f"{escape(f.feed)}: {f.advisories_added} new, {f.advisories_changed} changed, {f.advisories_removed} "
            f"removed, {f.advisories_unchanged} unchanged advisories; {f.packages_evaluated} package version(s) "
            f"re-evaluated; findings +{f.findings_added} -{f.findings_removed} in {f.images_affected} image(s) "
            f"({f.seconds:.2f} s)")
        for what, why in f.skipped[:20]:
            stderr.print(f"  [yellow]skipped[/] {escape(what)}: {escape(why)}")
        if len(f.skipped) > 20:
            stderr.print(f"  ... and {len(f.skipped) - 20} more skipped records (--json lists them all)")
    if updates is not None:
        stderr.print(f"pending updates: {updates.pending} in {updates.images_with_pending} of {updates.images} "
                     "image(s)", markup=False)
        for what, why in updates.skipped:
            stderr.print(f"  [yellow]skipped[/] {escape(what)}: {escape(why)}")
        if updates.kept:
            stderr.print(f"  [yellow]kept as they were:[/] the pending updates of {len(updates.kept)} image(s) "
                         "whose update sources could not all be read")
        _print_unknown(updates.unknown, indent="  ")


def _print_unknown(unknown: Sequence[tuple[str, str]], *, indent: str) -> None:
    """Images patchline could not check: unknown, never clean."""
    for digest, why in unknown[:20]:
        stderr.print(f"{indent}[red]unknown[/] {escape(digest[:19])}: {escape(why)}")
    if len(unknown) > 20:
        stderr.print(f"{indent}... and {len(unknown) - 20} more unknown image(s) (patchline fleet lists them)")


def _workload_names(hit_workloads: tuple[Any, ...]) -> str:
    names = [w.name if not w.namespace else f"{w.namespace}/{w.name}" for w in hit_workloads]
    return ", ".join(names[:4]) + (f" +{len(names) - 4}" if len(names) > 4 else "")


def _image_label(refs: tuple[str, ...], digest: str) -> str:
    return refs[0] if refs else digest[:19]


def where(
    package: Annotated[str, typer.Argument(help="Package name (binary or source package).")],
    db: DbOption = None,
    version_below: Annotated[str | None, typer.Option(help="Only versions lower than this (the ecosystem's "
                                                           "own ordering).")] = None,
    ecosystem: Annotated[str | None, typer.Option(help="deb, rpm, apk, pypi or npm (default: all).")] = None,
    running: Annotated[bool, typer.Option("--running", help="Only images that running workloads use.")] = False,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """Which images and running workloads contain PACKAGE, with versions and layers."""
    with open_db(db) as store:
        hits = store.where(package, version_below=version_below, ecosystem=ecosystem, running_only=running)
    if chosen_format(output_format, json_output) is Format.JSON:
        emit(None, text=dump("patchline/where/v1", {"package": package, "version_below": version_below,
                                                        "hits": hits}))
    else:
        emit(None, table=lambda console: _where_table(package, hits, console))
    if not hits:
        raise typer.Exit(1)


def _where_table(package: str, hits: list[WhereHit], console: Console) -> None:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("IMAGE", "PACKAGE", "VERSION", "LAYER", "RUNNING"):
        table.add_column(column, overflow="fold")
    for h in hits:
        name = h.name if not h.source_name else f"{h.name} ({h.source_name})"
        layer = f"{h.introduced_in}:{(h.introduced_diff_id or '')[7:19]}"
        if h.changed_in != h.introduced_in:
            layer += f" -> {h.changed_in}:{(h.changed_diff_id or '')[7:19]}"
        table.add_row(escape(_image_label(h.image.refs, h.image.config_digest)), escape(name), escape(h.version),
                      layer, escape(_workload_names(h.workloads)))
    console.print(table)
    images = len({h.image.config_digest for h in hits})
    workloads = len({w.container_id for h in hits for w in h.workloads})
    console.print(f"\n{escape(package)}: {len(hits)} match(es) in {images} image(s), {workloads} running workload(s)")


def _parse_days(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+)\s*([dw]?)\s*", text)
    if not m:
        raise ConfigError(f"--stale takes days like 30d or weeks like 4w, not {text!r}")
    return int(m.group(1)) * (7 if m.group(2) == "w" else 1)


def fleet(
    db: DbOption = None,
    stale: Annotated[str | None, typer.Option(help="Report images older than this: 30d, 4w (default: "
                                                   "patchline.toml [fleet] stale_days, 30).")] = None,
    all_images: Annotated[bool, typer.Option("--all", help="List clean images too.")] = False,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """Fleet exposure: images and workloads by worst fixable severity, pending updates, stale images, old bases."""
    days = _parse_days(stale) if stale else state.config().fleet.stale_days
    with open_db(db) as store:
        summary = store.fleet(stale_days=days)
    if chosen_format(output_format, json_output) is Format.JSON:
        emit(None, text=dump("patchline/fleet/v1", {"fleet": summary}))
    else:
        emit(None, table=lambda console: _fleet_table(summary, console, all_images=all_images))


def _fleet_table(summary: FleetSummary, console: Console, *, all_images: bool) -> None:
    order = ["critical", "high", "medium", "low", "none", "unknown", "pending-updates", "cannot-assess", "clean",
             "superseded"]
    head = Table(title="exposure (worst fixable severity)", title_justify="left", show_edge=False, pad_edge=False)
    head.add_column("SEVERITY")
    head.add_column("IMAGES", justify="right")
    head.add_column("WORKLOADS", justify="right")
    for name in order:
        if name in summary.images_by_severity:
            head.add_row(_styled(name), str(summary.images_by_severity[name]),
                         str(summary.workloads_by_severity.get(name, 0)))
    console.print(head)
    table = Table(title="images", title_justify="left", show_edge=False, pad_edge=False)
    for column in ("IMAGE", "WORST FIXABLE", "FINDINGS", "PENDING", "AGE", "BASE", "RUNNING"):
        table.add_column(column, overflow="fold")
    shown = 0
    for e in summary.images:
        stale = summary.stale_days is not None and e.age_days is not None and e.age_days > summary.stale_days
        interesting = not e.superseded and bool(
            e.findings or e.pending_updates or e.base_outdated_by or e.image.unknown or stale)
        if not (all_images or interesting):
            continue
        shown += 1
        age = "" if e.age_days is None else f"{e.age_days:.0f}d"
        if summary.stale_days is not None and e.age_days is not None and e.age_days > summary.stale_days:
            age = f"[yellow]{age} stale[/]"
        base = "" if e.base is None else ("[yellow]newer base[/]" if e.base_outdated_by else "current")
        worst = "[red]cannot assess[/]" if e.image.unknown and not (e.worst_fixable or e.pending_updates) else (
            _styled(_severity(e.worst_fixable)))
        if e.superseded:
            worst = "[dim]superseded[/]"
        table.add_row(escape(_image_label(e.image.refs, e.image.config_digest)),
                      worst, f"{e.findings} ({e.fixable} fixable)" if e.findings else "",
                      str(e.pending_updates or ""), age, base, str(e.workloads or ""))
    if shown:
        console.print(table)
    console.print(
        f"\n{len(summary.images)} image(s), {summary.running_workloads} running workload(s) "
        f"({summary.gone_workloads} gone); {summary.pending_updates} pending update(s) in "
        f"{summary.images_with_pending} image(s); {summary.stale_images} older than {summary.stale_days}d; "
        f"{summary.base_outdated} on an outdated base", markup=False)
    cannot = [e for e in summary.images if e.image.unknown and not e.superseded]
    if cannot:
        console.print(f"{len(cannot)} image(s) patchline could not check (unknown, not clean):", style="red")
        for e in cannot[:20]:
            console.print(printable(f"  {_image_label(e.image.refs, e.image.config_digest)}: {e.image.unknown}"),
                          markup=False, soft_wrap=True)
    for kind, name, revision in summary.feeds:
        console.print(f"{kind} {escape(name)} at {escape(revision)}", style="dim")


def advisory(
    advisory_id: Annotated[str, typer.Argument(metavar="ID", help="Advisory ID or alias (DSA-, CVE-, GHSA-...).")],
    db: DbOption = None,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """Every image and workload an advisory touches, and whether a fix is available."""
    with open_db(db) as store:
        report = store.advisory(advisory_id)
    if chosen_format(output_format, json_output) is Format.JSON:
        emit(None, text=dump("patchline/advisory/v1", {"advisory": report}))
    else:
        emit(None, table=lambda console: _advisory_table(report, console))
    if not report.known:
        stderr.print(f"{escape(advisory_id)} is in no refreshed feed (`patchline refresh --osv FEED`)")
        raise typer.Exit(1)


def _advisory_table(report: AdvisoryReport, console: Console) -> None:
    if not report.known:
        return
    aliases = f" ({', '.join(report.aliases)})" if report.aliases else ""
    console.print(f"{escape(report.id)}{escape(aliases)}: {escape(report.summary or '')}", soft_wrap=True)
    table = Table(show_edge=False, pad_edge=False)
    for column in ("IMAGE", "PACKAGE", "VERSION", "SEVERITY", "FIXED IN", "FIX", "RUNNING"):
        table.add_column(column, overflow="fold")
    for h in report.hits:
        table.add_row(escape(_image_label(h.image.refs, h.image.config_digest)), escape(h.package),
                      escape(h.version), _styled(_severity(h.severity)), escape(", ".join(h.fixed_versions)),
                      "yes" if h.fix_available else "[red]no[/]", escape(_workload_names(h.workloads)))
    console.print(table)
    images = len({h.image.config_digest for h in report.hits})
    workloads = len({w.container_id for h in report.hits for w in h.workloads})
    console.print(f"\n{images} image(s), {workloads} running workload(s) affected")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create the store or migrate it to the newest schema (every row is kept)."""
    from patchline.store import current_revision, head_revision, open_store

    with open_store(db_url(db)) as store:
        stderr.print(f"store at schema {current_revision(store.engine)} (newest: {head_revision()})")


@db_app.command("status")
def db_status(db: DbOption = None) -> None:
    """The store's location, schema revision and row counts."""
    from patchline.store import current_revision, head_revision, open_store

    with open_store(db_url(db), migrate=False) as store:
        stderr.print(f"{store.url.split('@')[-1]}: schema {current_revision(store.engine)} "
                     f"(newest {head_revision()})", markup=False)
        for name, count in store.counts().items():
            stderr.print(f"  {name}: {count}", markup=False)
