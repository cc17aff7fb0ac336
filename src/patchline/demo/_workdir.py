"""The demo's work directory: where everything lives, and the marker that makes it the demo's."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from patchline.errors import ConfigError

MARKER = ".patchline-demo"  # a work directory without it is never written to or purged
REPORT_FILE = "report.json"


def default_workdir() -> Path:
    """``$XDG_DATA_HOME/patchline/demo`` (``~/.local/share/patchline/demo``)."""
    data = os.environ.get("XDG_DATA_HOME")
    root = Path(data) if data and Path(data).is_absolute() else Path.home() / ".local" / "share"
    return root / "patchline" / "demo"


@dataclass(frozen=True, slots=True)
class WorkPaths:
    workdir: Path

    @property
    def fleet(self) -> Path:
        return self.workdir / "fleet"

    @property
    def config(self) -> Path:
        return self.fleet / "patchline.toml"

    @property
    def registry(self) -> Path:
        return self.workdir / "registry"

    @property
    def pid_file(self) -> Path:
        return self.registry / "registry.pid"


def claim_workdir(workdir: Path) -> WorkPaths:
    """Create the work directory, or check that an existing one is a demo's."""
    workdir = workdir.expanduser().absolute()
    if workdir.exists() and not (workdir / MARKER).exists() and any(workdir.iterdir()):
        raise ConfigError(f"{workdir} is not empty and holds no patchline demo ({MARKER}); choose another --workdir")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / MARKER).write_text("patchline demo: `patchline demo down --purge` deletes this directory\n")
    except OSError as exc:
        raise ConfigError(f"cannot create the demo's directory {workdir}: {exc.strerror}") from exc
    return WorkPaths(workdir)
