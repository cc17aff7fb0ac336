"""Verification of a new image: its integration tests, run in containers of it.

A test is a command in a new container (exit 0 passes) or an HTTP GET against
a container of the image (status, and optionally a body that matches). Each
test's output is kept in a file per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class TestOutcome:
    __test__ = False  # not a pytest class

    name: str
    passed: bool
    detail: str  # "exit 0", "exit 3", "HTTP 500 (wanted 200)", "timed out after 5 s", "body did not match ..."
    seconds: float
    log: Path | None  # the test's output

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail, "seconds": round(self.seconds, 3),
                "log": str(self.log) if self.log else None}


@dataclass(frozen=True, slots=True)
class TestReport:
    __test__ = False

    image: str  # the image ID or reference tested
    outcomes: tuple[TestOutcome, ...]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    @property
    def failed(self) -> tuple[TestOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.passed)
