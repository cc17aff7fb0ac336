"""Test-suite plugins: the shared fixtures live in tests/support and are registered here."""

from __future__ import annotations

import sys
from pathlib import Path

# `tests.support` must be importable however pytest is started (`pytest`, not only
# `python -m pytest` from the repository root).
_REPO = str(Path(__file__).resolve().parent.parent)
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

pytest_plugins = [
    "tests.support.images",
    "tests.support.registry",
    "tests.support.aptrepo",
    "tests.support.postgres",
    "tests.support.rabbitmq",
    "tests.support.clock",
]
