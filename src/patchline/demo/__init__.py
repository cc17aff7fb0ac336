"""The main job on embedded defaults, end to end on one machine: ``patchline demo`` and ``patchline demo down``.

:func:`demo_up` builds the example fleet (``examples/fleet``) from a debootstrap
``bookworm`` base that misses the security suite's updates, starts a loopback
registry, pushes and signs the fleet, starts its services on podman (phase 1:
"the fleet as it runs today"), then runs one patch run (phase 2: detect, assess,
plan, build, rollout, report) and returns a :class:`DemoReport` of what was found,
rebuilt, rolled out, and the fleet before and after. It is idempotent: phase 1 does
only what is missing, so a second demo goes straight to a run that finds nothing.

Everything lives in one work directory (``$XDG_DATA_HOME/patchline/demo`` by
default): the fleet's copy and its ``patchline.toml``, the store, keys, signatures,
build logs, the registry's storage, pid file and log, and the last report.
:func:`demo_down` stops what the demo started.

One module per job: ``_options`` (what is asked, checked), ``_workdir`` (the work
directory), ``_fleet_config`` (the example fleet and its ``patchline.toml`` for the
demo), ``_registry`` (the loopback registry), ``_base_image`` (debootstrap),
``_fleet_today`` (phase 1: build, push, sign, start), ``_summary`` and ``_report``
(what the report says), ``_up`` and ``_down`` (the two commands).

Typical use::

    report = demo_up(DemoOptions(workdir=default_workdir()), progress=my_progress)
    print(report.run.state, [r.name for r in report.rebuilt])
    demo_down(default_workdir(), purge=False)
"""

from patchline.demo._down import DemoDown, demo_down
from patchline.demo._fleet_config import demo_config_document, example_fleet, to_toml
from patchline.demo._options import DEMO_IMAGE, DemoOptions
from patchline.demo._report import (
    DEMO_SCHEMA,
    DemoReport,
    FleetState,
    ImageState,
    PhaseTiming,
    RebuiltImage,
    RolledOut,
    ServiceState,
)
from patchline.demo._up import DemoProgress, demo_up
from patchline.demo._workdir import MARKER, REPORT_FILE, default_workdir

__all__ = [
    "DEMO_IMAGE",
    "DEMO_SCHEMA",
    "MARKER",
    "REPORT_FILE",
    "DemoDown",
    "DemoOptions",
    "DemoProgress",
    "DemoReport",
    "FleetState",
    "ImageState",
    "PhaseTiming",
    "RebuiltImage",
    "RolledOut",
    "ServiceState",
    "default_workdir",
    "demo_config_document",
    "demo_down",
    "demo_up",
    "example_fleet",
    "to_toml",
]
