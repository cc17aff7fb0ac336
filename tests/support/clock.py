"""`freeze_clock`: patchline's wall clock (`patchline._clock`) pinned to a given instant.

A test that depends on "now" (ages, expiries, default timestamps) freezes it, so it
passes on any day it runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from patchline import _clock


@pytest.fixture
def freeze_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[dt.datetime], None]:
    def freeze(at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("freeze the clock at a timezone-aware instant")
        monkeypatch.setattr(_clock, "now", lambda: at.astimezone(dt.UTC))

    return freeze
