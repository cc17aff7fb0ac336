"""The continuous pipeline: one durable, resumable patch run per trigger.

Typical use::

    run = run_once(config, store, progress=print)     # detect -> assess -> plan -> build -> rollout -> report
    print(run.state, step_outputs(run)["build"])      # as recorded (JSON), or typed:
    print([r.name for r in output_of(run, BuildOutput).results])
"""

from patchline.pipeline._outputs import (
    OUTPUT_TYPES,
    AssessOutput,
    BuildOutput,
    BuildResult,
    DetectOutput,
    FailedStep,
    FeedRefresh,
    FeedUpdate,
    PlannedItem,
    PlanOutput,
    PolicyRow,
    ReportOutput,
    RolloutOutput,
    ServiceRollout,
    StepOutput,
    StillExposed,
    Unavailable,
    UpdatesRefresh,
    WorkloadsSeen,
    build_failure,
    output_of,
)
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
    "OUTPUT_TYPES",
    "STEPS",
    "AssessOutput",
    "BuildOutput",
    "BuildResult",
    "DetectOutput",
    "ExposedItem",
    "FailedStep",
    "FeedRefresh",
    "FeedUpdate",
    "ItemReport",
    "PatchReport",
    "PlanOutput",
    "PlannedItem",
    "PolicyRow",
    "RecipeExposure",
    "ReportOutput",
    "RolloutOutput",
    "RunOptions",
    "RunSummary",
    "ServiceReport",
    "ServiceRollout",
    "Step",
    "StepOutput",
    "StepSummary",
    "StillExposed",
    "TimeToPatch",
    "Unavailable",
    "UpdatesRefresh",
    "WorkloadsSeen",
    "approve",
    "build_failure",
    "nearest_rank",
    "output_of",
    "patch_report",
    "run_forever",
    "run_once",
    "step_outputs",
]
