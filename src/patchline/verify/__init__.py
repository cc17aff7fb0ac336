"""Verify a new image before it is pushed: its integration tests, in containers of it.

Typical use::

    report = run_image_tests(image_id, recipe.tests, log_dir=logs, run_id="web")
    if not report.passed:
        print([o.detail for o in report.failed])
"""

from patchline.verify._runner import run_image_tests
from patchline.verify.interface import TestOutcome, TestReport

__all__ = ["TestOutcome", "TestReport", "run_image_tests"]
