"""The patch run's steps, in order."""

from __future__ import annotations

import enum


class Step(enum.StrEnum):
    DETECT = "detect"  # feeds and update sources refreshed, podman workloads observed
    ASSESS = "assess"  # what every image is exposed to; time-to-patch items opened
    PLAN = "plan"  # what to rebuild, under the policy
    BUILD = "build"  # build, rescan, test, push, sign, attach the SBOM, write image.rebuilt
    ROLLOUT = "rollout"  # services moved to their current builds (canary, waves, rollback)
    REPORT = "report"  # events delivered, what is still exposed and why


STEPS: tuple[Step, ...] = tuple(Step)
