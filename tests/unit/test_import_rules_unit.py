"""Who may import whom: the layers of docs/architecture.md ("Layers and import rules"),
checked on the source with `ast`, so a new edge that breaks them fails here, naming it.

Three kinds of import are told apart:

- module level (run when the module is imported, ``try:`` and class bodies included): must
  go to the module's own layer or a lower one, with no exception;
- inside a function (lazy: run when called): the same rule, except for the few upward
  edges in `LAZY_UPWARD`, each with its reason;
- under ``if TYPE_CHECKING:``: never run (annotations are strings), not checked.

Third-party packages are imported at module level only by their home (`MODULE_LEVEL_HOMES`);
everything else, the heavy dependencies above all, is imported lazily where it is used, so
that ``mlbuild --help`` and a no-op build stay fast (architecture.md, "The no-op path").
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mlbuild"

# Bottom to top: a module may import its own layer and the layers below it. A module
# belongs to the layer of its longest listed prefix ("" is the package's __init__.py).
# Keep this table and the one in docs/architecture.md the same.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "base",
        (
            "",
            "errors",
            "kinds",
            "suggest",
            "plural",
            "digest",
            "results",
            "options",
            "events",
            "interrupts",
            "readhook",
            "observe",
            "locate",
        ),
    ),
    ("store", ("store",)),
    ("config", ("config", "graph", "codedeps", "metrics", "checks", "stamp")),
    ("records", ("provenance", "transfer", "maintenance", "protection", "experiments", "plots")),
    ("execution", ("jobs", "executors", "staging", "reads")),
    ("rebuild", ("rebuild",)),
    ("scheduling", ("runner", "scheduler")),
    (
        "operations",
        (
            "wiring",
            "noop",
            "queries",
            "provenance.reproduce",
            "provenance.reproduce_stage",
            "provenance.reproduce_run",
            "provenance.reproduce_compare",
        ),
    ),
    ("api", ("workspace",)),
    ("render", ("render",)),
    ("cli", ("cli", "__main__")),
)

# Lazy imports that go up a layer, each for a reason. (importer, imported), full names.
LAZY_UPWARD: dict[tuple[str, str], str] = {
    ("mlbuild", "mlbuild.workspace"): (
        "the public API: `from mlbuild import Workspace` resolves on first use (__getattr__), "
        "so `import mlbuild` (for __version__ or the errors) loads no build machinery"
    ),
}

# The only third-party packages imported at module level, and the modules that may.
MODULE_LEVEL_HOMES: dict[str, tuple[str, ...]] = {
    "click": ("cli",),  # every command module; `mlbuild --help` needs it anyway
    "xxhash": ("digest",),  # every build hashes; a small C extension
}

# Never imported at module level by what a no-op build loads (measured import costs in
# docs/architecture.md): each is imported inside the function that needs it.
HEAVY = (
    "cryptography",
    "dask",
    "distributed",
    "fsspec",
    "joblib",
    "loky",
    "networkx",
    "numpy",
    "pandas",
    "psutil",
    "pyarrow",
    "rich",
    "sklearn",
    "yaml",
)

# What `mlbuild` (no arguments, everything fresh) imports: the console entry point
# (pyproject: mlbuild.cli:main) and the lazy imports on its path (cli/context.py:
# workspace; cli/build.py: options, results, render.reporters).
NOOP_ENTRIES = (
    "mlbuild.cli",
    "mlbuild.noop",
    "mlbuild.locate",
    "mlbuild.workspace",
    "mlbuild.options",
    "mlbuild.results",
    "mlbuild.render.reporters",
)


@dataclass
class Imports:
    """What one module imports: mlbuild modules and third-party top-level packages."""

    top: set[str] = field(default_factory=set)
    lazy: set[str] = field(default_factory=set)
    third_party_top: set[str] = field(default_factory=set)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _sources() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, lazy: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import below ``node``, with whether it runs lazily (inside a function);
    imports under ``if TYPE_CHECKING:`` are skipped (its ``else:`` is not)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for stmt in child.orelse:
                yield from _walk_stmt(stmt, lazy)
            continue
        yield from _walk_stmt(child, lazy)


def _walk_stmt(node: ast.AST, lazy: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node, lazy
        return
    inner = lazy or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
    yield from _walk(node, inner)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The mlbuild module a dotted name imports (its longest module prefix)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


@cache
def _imports() -> dict[str, Imports]:
    modules = _sources()
    result: dict[str, Imports] = {}
    for module, path in modules.items():
        found = Imports()
        is_package = path.name == "__init__.py"
        for node, lazy in _walk(ast.parse(path.read_text(encoding="utf-8")), False):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [target] + [f"{target}.{alias.name}" for alias in node.names]
            else:
                target = node.module or ""
                names = [target] + [f"{target}.{alias.name}" for alias in node.names]
            for name in names:
                if name == "mlbuild" or name.startswith("mlbuild."):
                    resolved = _resolve(name, modules)
                    if resolved is not None and resolved != module:
                        (found.lazy if lazy else found.top).add(resolved)
                    continue
                top = name.split(".")[0]
                if not lazy and top not in sys.stdlib_module_names and top != "__future__":
                    found.third_party_top.add(top)
        result[module] = found
    return result


def _matches(module: str, prefix: str) -> bool:
    full = "mlbuild" + (f".{prefix}" if prefix else "")
    return module == full or (prefix != "" and module.startswith(full + "."))


def layer_of(module: str) -> tuple[int, str]:
    """(rank, name) of the layer of the longest listed prefix of ``module``."""
    best: tuple[int, int, str] | None = None  # (prefix length, rank, name)
    for rank, (name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if _matches(module, prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), rank, name)
    assert best is not None, f"{module} is in no layer: add it to LAYERS (and the doc's table)"
    return best[1], best[2]


def _violations(lazy: bool) -> list[str]:
    found = []
    for module, imports in sorted(_imports().items()):
        rank, name = layer_of(module)
        for imported in sorted(imports.lazy if lazy else imports.top):
            up_rank, up_name = layer_of(imported)
            if up_rank > rank and not (lazy and (module, imported) in LAZY_UPWARD):
                how = "inside a function" if lazy else "at module level"
                found.append(f"{module} ({name}) imports {imported} ({up_name}) {how}")
    return found


def _fail_if(found: list[str], hint: str) -> None:
    """Fail naming every offending edge, one per line, then what to do."""
    if found:
        pytest.fail("\n".join([*found, hint]), pytrace=False)


def test_every_module_sits_in_one_layer() -> None:
    for module in _sources():
        layer_of(module)  # fails naming the module that no prefix covers
    assert "mlbuild.rebuild.decide" in _sources()  # the walk found the package


def test_no_module_imports_a_higher_layer_at_module_level() -> None:
    _fail_if(
        _violations(lazy=False),
        "a lower layer imports a higher one (docs/architecture.md, 'Layers and import "
        "rules'): move the code down, or pass it in from above",
    )


def test_lazy_imports_go_up_only_where_listed() -> None:
    _fail_if(
        _violations(lazy=True),
        "a lazy import goes up a layer: move the code, or add the edge to LAZY_UPWARD "
        "with its reason (and to the doc)",
    )
    for importer, imported in LAZY_UPWARD:  # the list stays true
        assert imported in _imports()[importer].lazy, f"stale LAZY_UPWARD {importer} -> {imported}"


def test_no_module_level_import_cycle() -> None:
    graph = {m: sorted(i.top) for m, i in _imports().items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for nxt in graph.get(module, []):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                pytest.fail(f"import cycle at module level: {' -> '.join(cycle)}", pytrace=False)
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_third_party_packages_are_imported_at_module_level_only_by_their_home() -> None:
    found = []
    for module, imports in sorted(_imports().items()):
        for package in sorted(imports.third_party_top):
            homes = MODULE_LEVEL_HOMES.get(package, ())
            if not any(_matches(module, home) for home in homes):
                found.append(f"{module} imports {package} at module level")
    _fail_if(found, "import it inside the function that needs it (lazily)")


def _noop_closure() -> set[str]:
    """The mlbuild modules a no-op build imports: `NOOP_ENTRIES` and what they import at
    module level, transitively (importing a.b.c runs a and a.b first)."""
    imports, seen = _imports(), set()
    todo = list(NOOP_ENTRIES)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        todo.extend(".".join(parts[:end]) for end in range(1, len(parts)))
        todo.extend(imports[module].top)
    return seen


def test_a_noop_build_imports_no_heavy_dependency() -> None:
    loaded = _noop_closure()
    # the closure is the real one: the whole decide path is in it, no executor of Dask's
    assert {"mlbuild.scheduler", "mlbuild.rebuild.decide", "mlbuild.config.loader"} <= loaded
    assert "mlbuild.executors.dask" not in loaded and "mlbuild.checks.tables" not in loaded
    heavy = [
        f"{module} imports {package} at module level"
        for module in sorted(loaded)
        for package in sorted(_imports()[module].third_party_top)
        if package in HEAVY
    ]
    _fail_if(heavy, "a no-op build would pay for it: import it lazily")
