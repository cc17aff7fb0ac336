"""The continuous pipeline: one durable, resumable patch run per trigger.

Typical use::

    run = run_once(config, store, progress=print)     # detect -> assess -> plan -> build -> rollout -> report
    print(run.state, step_outputs(run)["build"])
"""

from patchline.pipeline._report import (
    ExposedItem,
    ItemReport,
    PatchReport,
    RecipeExposure,
    RunSummary,
    ServiceReport,
    StepSummary,
    TimeToPatch,
    nearest_rank,
    patch_report,
)
from patchline.pipeline._run import CRASH_AFTER_STEP, RunOptions, approve, run_forever, run_once, step_outputs
from patchline.pipeline.interface import STEPS, Step

__all__ = [
    "CRASH_AFTER_STEP",
    "STEPS",
    "ExposedItem",
    "ItemReport",
    "PatchReport",
    "RecipeExposure",
    "RunOptions",
    "RunSummary",
    "ServiceReport",
    "Step",
    "StepSummary",
    "TimeToPatch",
    "approve",
    "nearest_rank",
    "patch_report",
    "run_forever",
    "run_once",
    "step_outputs",
]
