"""Rebuild what a change touches: the fleet's build graph, the plan, and the builds (buildah, patch in place).

Typical use::

    fleet = plan_fleet(config, store)           # the dirty set, in order, with reasons
    report = rebuild(fleet.plan, fleet.graph, store, rebuild_options(config), hashes=fleet.hashes)
"""

from patchline.build._buildah import clean_leftovers
from patchline.build._containerfile import Containerfile, Stage, parse_containerfile, pin_references
from patchline.build._fleet import input_hash, load_recipes
from patchline.build._graph import BuildGraph, build_graph
from patchline.build._plan import PlanState, is_security, make_plan
from patchline.build._rebuild import RebuildOptions, rebuild
from patchline.build._state import (
    FleetPlan,
    StorePlanState,
    base_facts,
    default_log_dir,
    plan_fleet,
    rebuild_options,
)
from patchline.build.interface import (
    BuildResult,
    BuildStatus,
    CurrentImage,
    PlanItem,
    Reason,
    ReasonCode,
    RebuildPlan,
    RebuildReport,
    Recipe,
    RecipeKind,
    Verification,
)

__all__ = [
    "BuildGraph",
    "BuildResult",
    "BuildStatus",
    "Containerfile",
    "CurrentImage",
    "FleetPlan",
    "PlanItem",
    "PlanState",
    "Reason",
    "ReasonCode",
    "RebuildOptions",
    "RebuildPlan",
    "RebuildReport",
    "Recipe",
    "RecipeKind",
    "Stage",
    "StorePlanState",
    "Verification",
    "base_facts",
    "build_graph",
    "clean_leftovers",
    "default_log_dir",
    "input_hash",
    "is_security",
    "load_recipes",
    "make_plan",
    "parse_containerfile",
    "pin_references",
    "plan_fleet",
    "rebuild",
    "rebuild_options",
]
