"""What a demo found, rebuilt and rolled out, the fleet before and after: ``patchline/demo/v1``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchline.store import FixableRow, PendingRow, RunRow

DEMO_SCHEMA = "patchline/demo/v1"


@dataclass(frozen=True, slots=True)
class PhaseTiming:
    name: str
    seconds: float
    what: str  # what happened, or why it was skipped


@dataclass(frozen=True, slots=True)
class ImageState:
    """One image of the fleet at one moment: its current build and what it misses."""

    name: str
    repository: str
    config_digest: str | None
    manifest_digest: str | None
    packages: int
    pending: tuple[PendingRow, ...]
    fixable: tuple[FixableRow, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "repository": self.repository, "config_digest": self.config_digest,
                "manifest_digest": self.manifest_digest, "packages": self.packages,
                "pending": [{"package": p.name, "installed": p.installed, "candidate": p.candidate,
                             "suite": p.suite, "cves": list(p.cves)} for p in self.pending],
                "fixable": [{"advisory": f.advisory_id, "package": f.package, "version": f.version,
                             "fixed": list(f.fixed), "severity": f.severity} for f in self.fixable]}


@dataclass(frozen=True, slots=True)
class ServiceState:
    name: str
    repository: str
    image: str | None  # repository@digest most replicas run
    replicas_wanted: int
    running: int
    healthy: int

    @property
    def digest(self) -> str | None:
        return self.image.rpartition("@")[2] if self.image and "@" in self.image else None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "repository": self.repository, "image": self.image, "digest": self.digest,
                "replicas_wanted": self.replicas_wanted, "running": self.running, "healthy": self.healthy}


@dataclass(frozen=True, slots=True)
class FleetState:
    images: tuple[ImageState, ...]
    services: tuple[ServiceState, ...]

    def image(self, name: str) -> ImageState | None:
        return next((i for i in self.images if i.name == name), None)

    def service(self, name: str) -> ServiceState | None:
        return next((s for s in self.services if s.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {"images": [i.as_dict() for i in self.images], "services": [s.as_dict() for s in self.services]}


@dataclass(frozen=True, slots=True)
class RebuiltImage:
    """One build of the patch run, in the order the builds started."""

    name: str
    status: str
    wave: int | None
    reasons: tuple[Mapping[str, Any], ...]  # Reason.as_dict(): code, detail, items
    from_digest: str | None  # manifest digest of the image it replaces
    to_digest: str | None
    fixed: tuple[str, ...]  # pending updates (package names) and advisory IDs the new image no longer has
    pending_after: int | None
    tests_passed: int
    tests_failed: int
    error: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "wave": self.wave, "reasons": [dict(r) for r in self.reasons],
                "from_digest": self.from_digest, "to_digest": self.to_digest, "fixed": list(self.fixed),
                "pending_after": self.pending_after, "tests_passed": self.tests_passed,
                "tests_failed": self.tests_failed, "error": self.error, "seconds": round(self.seconds, 2)}


@dataclass(frozen=True, slots=True)
class RolledOut:
    """What the patch run did to one service."""

    service: str
    state: str  # succeeded, rolled-back, failed, current (nothing to do), refused, skipped, ...
    strategy: str | None
    from_image: str | None
    to_image: str | None
    reason: str
    seconds: float | None

    @property
    def ok(self) -> bool:
        return self.state in ("succeeded", "current")

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "state": self.state, "strategy": self.strategy,
                "from_image": self.from_image, "to_image": self.to_image, "reason": self.reason,
                "seconds": None if self.seconds is None else round(self.seconds, 2)}


@dataclass(frozen=True, slots=True)
class DemoReport:
    workdir: Path
    config_path: Path
    registry: str  # host:port
    registry_started: bool  # False: one already answered there and was used
    base_image: str
    before: FleetState  # as phase 1 left it (pending updates as the run's detect step saw them)
    after: FleetState
    run: RunRow
    rebuilt: tuple[RebuiltImage, ...]
    rolled_out: tuple[RolledOut, ...]
    phases: tuple[PhaseTiming, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        good_builds = ("built", "unchanged", "skipped")
        return (self.run.state == "succeeded" and all(r.status in good_builds for r in self.rebuilt)
                and all(r.ok for r in self.rolled_out))

    def as_dict(self) -> dict[str, Any]:
        run = self.run
        return {
            "ok": self.ok, "workdir": str(self.workdir), "config": str(self.config_path), "registry": self.registry,
            "registry_started": self.registry_started, "base_image": self.base_image,
            "rebuilt": [r.as_dict() for r in self.rebuilt],
            "rolled_out": [r.as_dict() for r in self.rolled_out], "before": self.before.as_dict(),
            "after": self.after.as_dict(),
            "run": {"id": run.id, "trigger": run.trigger, "triggered_by": run.triggered_by, "state": run.state,
                    "error": run.error, "started_at": run.started_at.isoformat(),
                    "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                    "steps": [{"step": s.step, "state": s.state, "attempts": s.attempts,
                               "output": dict(s.output)} for s in run.steps]},
            "phases": [{"name": p.name, "seconds": round(p.seconds, 2), "what": p.what} for p in self.phases],
            "seconds": round(self.seconds, 2),
        }

    def document(self) -> str:
        """The report as ``patchline/demo/v1`` JSON."""
        return json.dumps({"schema": DEMO_SCHEMA, **self.as_dict()}, indent=2, default=str)
