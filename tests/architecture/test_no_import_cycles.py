"""No import cycles inside `apex_ai_proxy`: the layering is a tree you can read from the top.

The graph has an edge A → B for every `import apex_ai_proxy.B`, `from apex_ai_proxy.B import x`
and relative import in module A, wherever it stands: at the top or inside a function (a deferred
import is still a dependency). `from package import name` is an edge to `package.name` when that
is a module, else to the package. Importing a module adds no edges to its parent packages:
Python initialises a parent before its child, so a package `__init__` re-exporting its own
submodules is no cycle.

Imports under `if TYPE_CHECKING:` are counted too, with one allowance: a cycle that needs a
type-only edge may stay inside one subpackage folder (`http/` : a connection annotating its pool,
a protocol its server: an owner and its parts, read together). Across folders, or among the
top-level modules (each a layer of its own), it is a layering fault like any other: the
`pipeline.py` → `server.py` back-reference the request-path issue removed was one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import apex_ai_proxy

ROOT = Path(apex_ai_proxy.__file__).parent
PACKAGE = "apex_ai_proxy"


def module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str, path: Path, known: set[str]) -> tuple[set[str], set[str]]:
    """The modules of this package that `name` (at `path`) imports: (at run time, type-only)."""
    is_package = path.name == "__init__.py"
    runtime: set[str] = set()
    type_only: set[str] = set()

    def targets(node: ast.Import | ast.ImportFrom) -> set[str]:
        if isinstance(node, ast.Import):
            return {alias.name for alias in node.names}
        if node.level:
            base = name.split(".")
            base = base[: len(base) - node.level + (1 if is_package else 0)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        return {
            f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
            for alias in node.names
        }

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            (type_only if typing_only else runtime).update(targets(node))
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing_only)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only)

    visit(ast.parse(path.read_text(), str(path)), False)
    keep = known - {name}
    return runtime & keep, (type_only - runtime) & keep


def import_graphs() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(run-time edges, run-time and type-only edges) of every module of the package."""
    found = modules()
    known = set(found)
    runtime: dict[str, set[str]] = {}
    every: dict[str, set[str]] = {}
    for name, path in found.items():
        at_run_time, type_only = imports_of(name, path, known)
        runtime[name] = at_run_time
        every[name] = at_run_time | type_only
    return runtime, every


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def folder(module: str) -> str:
    return module.rpartition(".")[0]


def test_the_package_has_no_import_cycle():
    runtime, _ = import_graphs()
    cycle = find_cycle(runtime)
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_type_only_imports_close_no_cycle_across_folders():
    _, every = import_graphs()
    # Leave out only the edges inside one subpackage: any cycle left crosses a folder boundary
    # or runs among the top-level modules.
    across = {
        name: {d for d in deps if folder(d) != folder(name) or folder(name) == PACKAGE}
        for name, deps in every.items()
    }
    cycle = find_cycle(across)
    assert cycle is None, "import cycle (type-only edge included): " + " → ".join(cycle or [])


def test_the_checker_sees_a_planted_cycle(tmp_path):
    """A cycle through a relative, a deferred and a type-only import is found, and gone once
    one edge is removed (a check that cannot fail is worse than none)."""
    known = {"apex_ai_proxy.a", "apex_ai_proxy.b", "apex_ai_proxy.c"}
    sources = {
        "a": "from .b import thing\n",
        "b": "def f():\n    from apex_ai_proxy import c\n",
        "c": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import apex_ai_proxy.a\n",
    }
    graph = {}
    for short, text in sources.items():
        path = tmp_path / f"{short}.py"
        path.write_text(text)
        runtime, type_only = imports_of(f"apex_ai_proxy.{short}", path, known)
        graph[f"apex_ai_proxy.{short}"] = runtime | type_only
    cycle = ["apex_ai_proxy.a", "apex_ai_proxy.b", "apex_ai_proxy.c", "apex_ai_proxy.a"]
    assert find_cycle(graph) == cycle
    graph["apex_ai_proxy.c"] = set()
    assert find_cycle(graph) is None


def test_nothing_below_the_composition_root_imports_it():
    _, every = import_graphs()
    importers = sorted(name for name, deps in every.items() if "apex_ai_proxy.app" in deps)
    assert importers == ["apex_ai_proxy.cli.serve"]
