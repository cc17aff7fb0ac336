"""The house rules of src/patchline, read from the source (every import, lazy and TYPE_CHECKING ones too):

- no module imports another package's private module (``patchline.oci._registry`` from outside ``oci``): each
  package's ``__init__`` is its face; the private modules at the root (``patchline._clock``, ``_config``,
  ``_findings``, ...) are the shared floor and open to all;
- a package imports only from lower layers (below), never from its own layer or a higher one;
- so there is no import circle between packages, and none between the modules of one package either.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "patchline"

# Lowest first. A name is a package under src/patchline or a module at its root.
LAYERS: tuple[frozenset[str], ...] = tuple(frozenset(layer.split()) for layer in (
    "errors",
    "_clock _term _model _findings _eventdata _redact _paths _feedurl _http _host _hostapt _least_privilege _owner",
    "_config",
    "versions oci",
    "catalog sbom policy verify sign _baseimage",
    "inventory",
    "advisories updates",
    "assess",
    "store",
    "fleet events",
    "build",
    "rollout",
    "pipeline",
    "demo",
    "cli",
))
LAYER = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        if "migrations" in rel.parts:  # alembic's revisions are frozen copies, loaded by alembic
            continue
        parts = rel.parts[:-1] if rel.parts[-1] == "__init__" else rel.parts
        yield ".".join(parts), path


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every ``patchline.*`` name an import statement in ``path`` reaches, with its line."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((a.name, node.lineno) for a in node.names if a.name.startswith("patchline"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and (
                node.module == "patchline" or node.module.startswith("patchline.")):
            yield from ((f"{node.module}.{a.name}", node.lineno) for a in node.names)


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


GRAPH = [(module, path, target, line) for module, path in _modules() for target, line in _imports(path)]


def test_every_package_and_root_module_has_a_layer() -> None:
    tops = {_top(m) for m, _ in _modules()} - {""}
    assert tops - set(LAYER) == set(), "give each new package or root module its layer in LAYERS"


def test_no_module_imports_another_packages_private_module() -> None:
    found = []
    for module, path, target, line in GRAPH:
        parts = target.split(".")
        if (len(parts) >= 3 and not parts[1].startswith("_") and parts[2].startswith("_")
                and parts[1] != _top(module)):
            found.append(f"{path.relative_to(SRC.parent)}:{line}: {target}")
    assert found == [], "import it from the package instead (export it in its __init__):\n" + "\n".join(found)


def test_no_package_imports_its_layer_or_a_higher_one() -> None:
    found = []
    for module, path, target, line in GRAPH:
        source, dest = _top(module), _top(target)
        if not source or not dest or source == dest or dest not in LAYER or dest.startswith("__"):
            continue
        if LAYER[dest] >= LAYER[source]:
            found.append(f"{path.relative_to(SRC.parent)}:{line}: {source} (layer {LAYER[source]}) imports "
                         f"{target} (layer {LAYER[dest]})")
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("package", sorted(name for name in LAYER if (SRC / name).is_dir()))
def test_no_import_circle_inside_a_package(package: str) -> None:
    known = {m for m, _ in _modules()}
    edges: dict[str, set[str]] = defaultdict(set)
    for module, _path, target, _line in GRAPH:
        if _top(module) != package or _top(target) != package:
            continue
        dest = target if target in known else target.rpartition(".")[0]
        if dest in known and dest != module and dest != f"patchline.{package}":  # the face re-exports: not a loop
            edges[module].add(dest)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (loop := visit(nxt)):
                return loop
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (loop := visit(start)):
            pytest.fail(" -> ".join(loop))


def test_the_rules_catch_what_they_should(tmp_path: Path) -> None:
    """Not vacuous: an import of a private module across packages and an upward import are both seen."""
    bad = tmp_path / "bad.py"
    bad.write_text("from patchline.oci._registry import RegistrySource\n"
                   "def f():\n    from patchline.cli import app\n")
    reached = [target for target, _ in _imports(bad)]
    assert reached == ["patchline.oci._registry.RegistrySource", "patchline.cli.app"]
    assert LAYER[_top("patchline.cli.app")] > LAYER["oci"]
