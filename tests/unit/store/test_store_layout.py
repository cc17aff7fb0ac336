"""The store is split by aggregate and composed: no import circle inside it, and no mixins."""

from __future__ import annotations

import ast
from pathlib import Path

import patchline.store
from patchline.store import Store, open_store
from patchline.store._store import _Delegated

PACKAGE = "patchline.store"
ROOT = Path(patchline.store.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE, *parts))


def _resolve(name: str, modules: set[str]) -> str | None:
    """The store module ``name`` is, or the nearest package above it that is one (None: outside the store)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """module -> the store modules it imports, anywhere in it (inside functions and TYPE_CHECKING too)."""
    files = {_module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                # ``from patchline.store import _engine`` imports a module; ``import Store`` the package.
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                found = _resolve(target, modules)
                if found is not None and found != module:
                    graph[module].add(found)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_circle_inside_the_store() -> None:
    graph = import_graph()
    assert {"patchline.store._store", "patchline.store.model", "patchline.store._findings"} <= set(graph)
    assert "patchline.store._engine" in graph["patchline.store._database"], "the graph must see imports"
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_store_is_composed_not_mixed_in(tmp_path: Path) -> None:
    assert Store.__mro__ == (Store, object)
    delegated = {name: d for name, d in vars(Store).items() if isinstance(d, _Delegated)}
    assert len(delegated) > 50
    with open_store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        for name, d in delegated.items():
            aggregate = getattr(store, d.aggregate)
            assert getattr(type(aggregate), name) is d.method, f"Store.{name} must reach {d.method.__qualname__}"
