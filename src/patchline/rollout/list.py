"""The one explicit list of rollout targets (STYLE.md 4): ``[rollout] target`` names one of them."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from patchline.errors import ConfigError
from patchline.rollout._podman import PodmanTarget
from patchline.rollout.interface import TargetKind

__all__ = ["TARGET_KINDS", "target_kind"]

TARGET_KINDS: Mapping[str, TargetKind] = MappingProxyType({
    "podman": PodmanTarget,
})


def target_kind(name: str) -> TargetKind:
    """The target class ``[rollout] target`` names; raises ``ConfigError`` for an unknown one."""
    try:
        return TARGET_KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown rollout target {name!r}; known: {', '.join(sorted(TARGET_KINDS))}") from None
