"""Roll services out: canary, waves, health gates, automatic rollback; durable and resumable.

Typical use::

    result = rollout_service(config, store, "web", to="sha256:...", progress=print)
    if not result.ok:
        print(result.state, result.reason)   # rolled-back: the digest is now unpromotable
"""

from patchline._owner import owner_id
from patchline.rollout._engine import (
    STALE_SECONDS,
    RolloutPlan,
    RolloutResult,
    check_promotable,
    digest_of,
    majority_image,
    resume,
    resume_all,
    roll_out,
)
from patchline.rollout._podman import PodmanTarget
from patchline.rollout._policy import image_policy
from patchline.rollout._resolve import service_config, service_spec
from patchline.rollout._service import (
    ReplicaStatus,
    ServiceStatus,
    check_rollout_policy,
    image_bases,
    make_target,
    resolve_image,
    resume_service_rollouts,
    rollback_service,
    rollout_decision,
    rollout_plan,
    rollout_service,
    service_status,
)
from patchline.rollout.interface import (
    LABEL_IMAGE,
    LABEL_REPLICA,
    LABEL_ROLLOUT,
    LABEL_SERVICE,
    Probe,
    Replica,
    RolloutState,
    RolloutTarget,
    ServiceSpec,
    Strategy,
    TargetKind,
)
from patchline.rollout.list import TARGET_KINDS, target_kind

__all__ = [
    "LABEL_IMAGE",
    "LABEL_REPLICA",
    "LABEL_ROLLOUT",
    "LABEL_SERVICE",
    "STALE_SECONDS",
    "TARGET_KINDS",
    "PodmanTarget",
    "Probe",
    "Replica",
    "ReplicaStatus",
    "RolloutPlan",
    "RolloutResult",
    "RolloutState",
    "RolloutTarget",
    "ServiceSpec",
    "ServiceStatus",
    "Strategy",
    "TargetKind",
    "check_promotable",
    "check_rollout_policy",
    "digest_of",
    "image_bases",
    "image_policy",
    "majority_image",
    "make_target",
    "owner_id",
    "resolve_image",
    "resume",
    "resume_all",
    "resume_service_rollouts",
    "roll_out",
    "rollback_service",
    "rollout_decision",
    "rollout_plan",
    "rollout_service",
    "service_config",
    "service_spec",
    "service_status",
    "target_kind",
]
