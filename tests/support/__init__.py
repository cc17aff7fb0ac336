"""Test harnesses shared by the unit and integration tests (real processes, real files)."""
