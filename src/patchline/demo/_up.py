"""``patchline demo``: phase 1 (only what is missing), then one patch run (phase 2), timed and reported."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Protocol

from patchline.demo._base_image import ensure_base_image
from patchline.demo._fleet_config import check_unchanged, write_config
from patchline.demo._fleet_today import build_missing, start_services
from patchline.demo._options import DemoOptions, check_options
from patchline.demo._registry import start_registry
from patchline.demo._report import DemoReport, PhaseTiming
from patchline.demo._summary import fleet_state, rebuilt_images, rolled_out, service_states
from patchline.demo._workdir import REPORT_FILE, claim_workdir


class DemoProgress(Protocol):
    """What the demo reports while it works: a phase starts; a line of detail."""

    def phase(self, title: str) -> None: ...

    def say(self, line: str) -> None: ...


class _Quiet:
    def phase(self, title: str) -> None:
        pass

    def say(self, line: str) -> None:
        pass


@contextlib.contextmanager
def _timed(phases: list[PhaseTiming], name: str, progress: DemoProgress) -> Iterator[list[str]]:
    """Time a phase; the block appends what it did to the yielded list."""
    progress.phase(name)
    what: list[str] = []
    t0 = time.monotonic()
    yield what
    phases.append(PhaseTiming(name, time.monotonic() - t0, "; ".join(what)))


def demo_up(options: DemoOptions, *, progress: DemoProgress | None = None) -> DemoReport:
    """Set up the demo fleet (phase 1, only what is missing) and run one patch run (phase 2); see the module."""
    from patchline.pipeline import RunOptions, run_once
    from patchline.store import open_store

    say_to = progress or _Quiet()
    say = say_to.say
    t0 = time.monotonic()
    phases: list[PhaseTiming] = []
    check_options(options)
    with _timed(phases, "set up the work directory and the registry", say_to) as what:
        paths = claim_workdir(options.workdir)
        check_unchanged(options, paths)
        config = write_config(options, paths)
        say(f"fleet: {paths.fleet} (config {paths.config})")
        started = start_registry(paths, options.registry_port, say)
        what.append(("started" if started else "reused") + f" the registry on 127.0.0.1:{options.registry_port}")
    with _timed(phases, "phase 1: the base image (debootstrap bookworm, main only)", say_to) as what:
        what.append(ensure_base_image(options, say))
    assert config.store.url is not None
    with open_store(config.store.url) as store:
        with _timed(phases, "phase 1: build the fleet as it runs today (no security updates)", say_to) as what:
            what.append(build_missing(config, store, say))
        with _timed(phases, "phase 1: start the services", say_to) as what:
            what.append(start_services(config, store, say))
        builds_before = store.current_builds()
        services_before = service_states(config, store)
        with _timed(phases, "phase 2: patchline run --once", say_to) as what:
            run = run_once(config, store, options=RunOptions("demo", options.triggered_by or "patchline demo",
                                                             config.pipeline.lease_seconds), progress=say)
            what.append(f"run {run.id} {run.state}" + (f": {run.error}" if run.error else ""))
        with _timed(phases, "report", say_to):
            before = fleet_state(config, store, builds_before, services_before)
            after = fleet_state(config, store, store.current_builds(), service_states(config, store))
            rebuilt = rebuilt_images(run, store, builds_before)
            rolled = rolled_out(run, store, services_before)
    report = DemoReport(workdir=paths.workdir, config_path=paths.config, registry=f"127.0.0.1:{options.registry_port}",
                        registry_started=started, base_image=options.base_image, before=before, after=after,
                        run=run, rebuilt=rebuilt, rolled_out=rolled, phases=tuple(phases),
                        seconds=time.monotonic() - t0)
    with contextlib.suppress(OSError):
        (paths.workdir / REPORT_FILE).write_text(report.document() + "\n", encoding="utf-8")
    return report
