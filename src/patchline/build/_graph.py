"""The build graph: which recipe is built FROM which (local edges) and from which outside images.

A base reference is local when it names another recipe's target (registry,
repository and tag, normalised as docker does); any other image is external.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from patchline.build._fleet import target_key
from patchline.build.interface import Recipe
from patchline.errors import ConfigError, GraphError, ReferenceError_


@dataclass(frozen=True, slots=True)
class BuildGraph:
    recipes: Mapping[str, Recipe]
    local: Mapping[str, tuple[tuple[str, str], ...]]  # name -> ((reference, base recipe), ...)
    external: Mapping[str, tuple[str, ...]]  # name -> references of outside images
    order: tuple[str, ...]  # every base before its dependants; configuration order among peers
    dependants: Mapping[str, tuple[str, ...]]


def build_graph(recipes: Sequence[Recipe]) -> BuildGraph:
    """Edges from every base each recipe uses; a cycle between local images is a :class:`GraphError`."""
    by_target = {target_key(r.target): r.name for r in recipes}
    local: dict[str, list[tuple[str, str]]] = {}
    external: dict[str, list[str]] = {}
    for r in recipes:
        local[r.name] = []
        external[r.name] = []
        for ref in r.bases():
            try:
                key = target_key(ref)
            except ReferenceError_ as exc:
                raise ConfigError(f"image {r.name}: base {ref!r}: {exc}") from exc
            base = by_target.get(key)
            if base == r.name:
                raise GraphError(f"image {r.name} is built FROM its own target {r.target}")
            if base is not None:
                if all(b != base for _, b in local[r.name]):
                    local[r.name].append((ref, base))
            elif ref not in external[r.name]:
                external[r.name].append(ref)
    dependants: dict[str, list[str]] = {r.name: [] for r in recipes}
    for name, bases in local.items():
        for _, base in bases:
            dependants[base].append(name)
    order = _topological([r.name for r in recipes], local)
    return BuildGraph(
        recipes={r.name: r for r in recipes},
        local={k: tuple(v) for k, v in local.items()},
        external={k: tuple(v) for k, v in external.items()},
        order=order,
        dependants={k: tuple(v) for k, v in dependants.items()},
    )


def _topological(names: list[str], local: Mapping[str, list[tuple[str, str]]]) -> tuple[str, ...]:
    # Depth-first, in configuration order: deterministic, and the grey set finds a cycle to name.
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    order: list[str] = []
    for start in names:
        if state.get(start) == 2:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            name, i = stack.pop()
            if i == 0:
                state[name] = 1
                path.append(name)
            bases = local[name]
            if i < len(bases):
                stack.append((name, i + 1))
                base = bases[i][1]
                if state.get(base) == 1:
                    cycle = [*path[path.index(base):], base]
                    raise GraphError("a cycle between local images: " + " -> ".join(cycle)
                                     + " (each is built FROM the next)")
                if state.get(base) != 2:
                    stack.append((base, 0))
                continue
            state[name] = 2
            path.pop()
            order.append(name)
    return tuple(order)
