"""``patchline demo`` and ``patchline demo down``: the main job on embedded defaults, on this machine."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.status import Status
from rich.table import Table

from patchline._term import escape
from patchline.cli._options import requested_by
from patchline.cli._output import dump, emit, render_run, stderr
from patchline.demo import DemoDown, DemoOptions, DemoReport, default_workdir, demo_down, demo_up

demo_app = typer.Typer(rich_markup_mode=None,
    add_completion=False,
    pretty_exceptions_enable=False,
)

WorkdirOption = Annotated[Path | None, typer.Option(
    "--workdir", help="The demo's directory (fleet, store, keys, registry storage, logs); "
    "default: $XDG_DATA_HOME/patchline/demo.", show_default=False)]


class _RichProgress:
    """Phases as bold lines with the time so far, details dimmed; a spinner with the latest line on a terminal."""

    def __init__(self, console: Console, status: Status | None) -> None:
        self.console = console
        self.status = status
        self.t0 = time.monotonic()
        self.title = ""

    def phase(self, title: str) -> None:
        self.title = title
        self.console.print(f"[bold]==> {escape(title)}[/] [dim]({time.monotonic() - self.t0:.0f} s)[/]")
        if self.status is not None:
            self.status.update(escape(title))

    def say(self, line: str) -> None:
        self.console.print(escape(line), style="dim", soft_wrap=True)
        if self.status is not None:
            text = f"{self.title}: {line}"
            width = max(20, self.console.width - 4)  # one line under the spinner, never wrapped
            self.status.update(escape(text if len(text) <= width else text[:width - 1] + "…"))


@contextlib.contextmanager
def _progress() -> Iterator[_RichProgress]:
    if not stderr.is_terminal:
        yield _RichProgress(stderr, None)
        return
    with stderr.status("patchline demo") as status:
        yield _RichProgress(stderr, status)


def _short(digest: str | None) -> str:
    if not digest:
        return "-"
    digest = digest.rpartition("@")[2]
    return digest[:19] if digest.startswith("sha256:") else digest


def _cve_list(cves: set[str], most: int = 6) -> str:
    """The first CVE IDs (oldest first) and how many more; the JSON report has them all."""
    ordered = sorted(cves, key=lambda c: tuple(int(x) if x.isdigit() else 0 for x in c.split("-")[1:]))
    more = f" (+{len(ordered) - most} more)" if len(ordered) > most else ""
    return " ".join(ordered[:most]) + more if ordered else "-"


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def render_demo(report: DemoReport, console: Console) -> None:
    before, after = report.before, report.after
    console.print(f"patchline demo: the example fleet in {escape(str(report.workdir))}, registry {report.registry}, "
                  f"base {escape(report.base_image)}", soft_wrap=True)

    found = _table("\n1. What was found: the fleet as it ran before the run (built from bookworm main)",
                   "IMAGE", "BUILD", "PACKAGES", "PENDING UPDATES", "CVES", "FIXABLE ADVISORIES")
    for image in before.images:
        cves = sorted({c for p in image.pending for c in p.cves})
        found.add_row(image.name, _short(image.manifest_digest), str(image.packages), str(len(image.pending)),
                      str(len(cves)), str(len({f.advisory_id for f in image.fixable})))
    console.print(found)
    updates: dict[tuple[str, str, str], tuple[str, set[str], list[str]]] = {}
    for image in before.images:
        for p in image.pending:
            seen = updates.setdefault((p.name, p.installed, p.candidate), (p.suite, set(), []))
            seen[1].update(p.cves)
            seen[2].append(image.name)
    if updates:
        pending = _table("\n   pending security updates, as apt in each image would see them",
                         "PACKAGE", "INSTALLED -> CANDIDATE", "SUITE", "CVES", "IN")
        for (name, installed, candidate), (suite, cve_ids, images) in sorted(updates.items()):
            pending.add_row(escape(name), escape(f"{installed} -> {candidate}"), escape(suite),
                            escape(_cve_list(cve_ids)), escape(", ".join(images)))
        console.print(pending)
    else:
        console.print("\n   no pending updates: nothing to patch")

    if report.rebuilt:
        rebuilt = _table("\n2. What was rebuilt, in order, and why", "#", "IMAGE", "WAVE", "STATUS", "WHY",
                         "DIGEST (OLD -> NEW)", "FIXED", "TESTS", "SECONDS")
        for n, r in enumerate(report.rebuilt, 1):
            why = "; ".join(f"{x.get('code')}: {x.get('detail')}" for x in r.reasons)
            tests = f"{r.tests_passed} passed" + (f", {r.tests_failed} FAILED" if r.tests_failed else "")
            status = r.status if r.status in ("built", "unchanged", "skipped") else f"[bold red]{r.status}[/]"
            rebuilt.add_row(str(n), r.name, "" if r.wave is None else str(r.wave), status,
                            escape(why + (f" ({r.error})" if r.error else "")),
                            f"{_short(r.from_digest)} -> {_short(r.to_digest)}",
                            f"{len(r.fixed)} ({r.pending_after} pending after)" if r.pending_after is not None
                            else str(len(r.fixed)), tests, f"{r.seconds:.0f}")
        console.print(rebuilt)
    else:
        console.print("\n[bold]2. What was rebuilt[/]: nothing; the fleet was up to date")

    if any(r.state != "current" for r in report.rolled_out):
        rolled = _table("\n3. What was rolled out", "SERVICE", "STRATEGY", "DIGEST (FROM -> TO)", "STATE",
                        "SECONDS", "NOTE")
        for out in report.rolled_out:
            state = out.state if out.ok else f"[bold red]{out.state}[/]"
            rolled.add_row(out.service, out.strategy or "-", f"{_short(out.from_image)} -> {_short(out.to_image)}",
                           state, "" if out.seconds is None else f"{out.seconds:.0f}", escape(out.reason))
        console.print(rolled)
    else:
        console.print("\n[bold]3. What was rolled out[/]: nothing; every service runs its current build")

    fleet = _table("\n4. The fleet, before -> after", "IMAGE", "PENDING UPDATES", "BUILD")
    for image in after.images:
        was = before.image(image.name)
        fleet.add_row(image.name, f"{len(was.pending) if was else '-'} -> {len(image.pending)}",
                      f"{_short(was.manifest_digest if was else None)} -> {_short(image.manifest_digest)}")
    console.print(fleet)
    services = _table("", "SERVICE", "DIGEST", "HEALTHY REPLICAS")
    for service in after.services:
        ran = before.service(service.name)
        wanted = service.replicas_wanted
        healthy = f"{ran.healthy if ran else '-'}/{wanted} -> {service.healthy}/{wanted}"
        services.add_row(service.name, f"{_short(ran.image if ran else None)} -> {_short(service.image)}", healthy)
    console.print(services)

    console.print("\n[bold]5. The run[/]")
    render_run(report.run, console)
    timings = _table("\nTimings", "PHASE", "SECONDS", "WHAT HAPPENED")
    for phase in report.phases:
        timings.add_row(escape(phase.name), f"{phase.seconds:.1f}", escape(phase.what))
    timings.add_row("[bold]total[/]", f"[bold]{report.seconds:.1f}[/]", "")
    console.print(timings)
    config = escape(str(report.config_path))
    where = "" if report.workdir == default_workdir() else f" --workdir {escape(str(report.workdir))}"
    console.print(f"\nAgain: `patchline --config {config} run --once` (it finds nothing to do now); "
                  f"`patchline --config {config} status`; stop it all with `patchline demo down{where}`. "
                  f"The report as JSON: {escape(str(report.workdir / 'report.json'))}", soft_wrap=True)


@demo_app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    workdir: WorkdirOption = None,
    registry_port: Annotated[int, typer.Option("--registry-port", help="The loopback registry's port (one already "
                                               "answering there is used).")] = 5000,
    port_base: Annotated[int, typer.Option("--port-base", help="Host port of the web service's first replica "
                                           "(web: PORT..PORT+2, web-admin: PORT+10, all on 127.0.0.1).")] = 18080,
    name_prefix: Annotated[str, typer.Option("--name-prefix", help="Prefix of the service names (containers are "
                                             "patchline-PREFIXweb-N), to run beside another demo.")] = "",
    rebuild_base: Annotated[bool, typer.Option("--rebuild-base", help="debootstrap the base image again even if "
                                               "podman storage has it.")] = False,
    fleet: Annotated[Path | None, typer.Option("--fleet", help="The fleet directory to copy; default: the "
                                               "repository's examples/fleet.", show_default=False)] = None,
    json_output: Annotated[bool, typer.Option("--json", help="The report as patchline/demo/v1 JSON.")] = False,
) -> None:
    """The main job on embedded defaults: build, run and patch the example fleet (`demo down` stops it).

    Builds the example fleet from a debootstrap bookworm base (missing its security updates), pushes and signs it
    to a loopback registry, starts its services on podman, then patches it all with one `patchline run --once`.
    A first demo takes a few minutes (debootstrap about 35 s, once); a second one finds nothing to do. Exits 1
    when the run failed or a build or rollout did not succeed.
    """
    if ctx.invoked_subcommand is not None:
        return
    options = DemoOptions(workdir=workdir or default_workdir(), registry_port=registry_port, port_base=port_base,
                          name_prefix=name_prefix, rebuild_base=rebuild_base, fleet=fleet, triggered_by=requested_by())
    with _progress() as progress:
        report = demo_up(options, progress=progress)
    if json_output:
        emit(None, text=report.document())
    else:
        emit(None, table=lambda console: render_demo(report, console))
    if not report.ok:
        raise typer.Exit(1)


@demo_app.command("down")
def down(
    workdir: WorkdirOption = None,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the work directory and the demo registry's "
                                        "images from podman storage (the debootstrap base image stays).")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="What was stopped, as JSON.")] = False,
) -> None:
    """Stop the demo: its services' containers, the registry it started, its registries.d entries, its gpg agent."""
    with _progress() as progress:
        result: DemoDown = demo_down(workdir or default_workdir(), purge=purge, progress=progress.say)
    if json_output:
        emit(None, text=dump("patchline/demo-down/v1", result.as_dict()))
        return
    if not result.found:
        emit(None, text=f"no demo in {result.workdir}")
        return
    parts = [f"removed {len(result.containers_removed)} container(s)",
             f"stopped the registry (pid {result.registry_stopped})" if result.registry_stopped
             else "no registry of the demo's was running"]
    if result.purged:
        parts.append(f"deleted {result.workdir}")
    emit(None, text="demo down: " + "; ".join(parts))
