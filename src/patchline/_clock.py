"""The one place patchline reads the wall clock.

Every default "now" goes through :func:`now` (and :func:`today`), so a test can
freeze time for the whole process with one ``monkeypatch.setattr`` on this module
instead of depending on the day it runs.
"""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def today() -> dt.date:
    """Today's date in UTC."""
    return now().date()
