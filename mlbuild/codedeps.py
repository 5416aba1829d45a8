"""Automatic code deps: the source of a target's script or module and what it imports.

``cmd: python path/script.py …`` (also ``python3``, ``python -m pkg.mod``) and
``python: pkg.mod:function`` depend on that file and on every *workspace-local* module it
imports, transitively. Imports are found by reading the AST, never by running the code, so
a dynamic ``importlib.import_module(name)`` is not seen (declare such files in ``deps``).

Resolution mirrors Python's: a script's own directory comes first on the search path, then
the workspace root; ``a.b.c`` is ``a/b/c.py`` or ``a/b/c/__init__.py`` and pulls in the
package ``__init__.py`` files above it. Names that do not resolve to a file in the
workspace (the standard library, installed packages) are ignored.
"""

from __future__ import annotations

import ast
import os
import posixpath
import re
import shlex

from .store.state import StateMemo

__all__ = ["CodeScanner", "entry_points"]

_PYTHONS = {"python", "python3", "python3.10", "python3.11", "python3.12", "python3.13"}
_VALUE_OPTS = {"-W", "-X", "--check-hash-based-pycs"}
_ENV_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def entry_points(cmds: tuple[str, ...] | None, python: str | None) -> list[tuple[str, str]]:
    """``("script", relpath)`` / ``("module", dotted)`` entries a target runs."""
    found: list[tuple[str, str]] = []
    if python is not None:
        found.append(("module", python.split(":", 1)[0]))
    for cmd in cmds or ():
        if "python" not in cmd:
            continue  # cheap filter: most commands of a big pipeline are not Python
        for segment in _segments(cmd):
            try:
                argv = shlex.split(segment)
            except ValueError:
                continue
            while argv and _ENV_ASSIGN.match(argv[0]):
                argv = argv[1:]  # PYTHONHASHSEED=0 python train.py
            if argv and os.path.basename(argv[0]) == "env":
                argv = [a for a in argv[1:] if not _ENV_ASSIGN.match(a)]
            if not argv or os.path.basename(argv[0]) not in _PYTHONS:
                continue
            args = iter(argv[1:])
            for arg in args:
                if arg in _VALUE_OPTS:
                    next(args, None)  # python -W ignore train.py: skip the option's value
                    continue
                if arg == "-m":
                    module = next(args, None)
                    if module:
                        found.append(("module", module))
                    break
                if arg in ("-c",):
                    break
                if arg.startswith("-"):
                    continue
                if arg.endswith(".py"):
                    found.append(("script", posixpath.normpath(arg)))
                break
    return found


def _segments(cmd: str) -> list[str]:
    """Split a shell line on ``&&``, ``||``, ``;`` and ``|`` well enough to find each program."""
    out = [cmd]
    for sep in ("&&", "||", ";", "|"):
        out = [piece for part in out for piece in part.split(sep)]
    return [s.strip() for s in out if s.strip()]


class CodeScanner:
    """Finds the workspace-local source files behind entry points; memoized per build."""

    def __init__(self, root: str, memo: StateMemo) -> None:
        self.root = root
        self.memo = memo
        self._deps: dict[tuple[str, ...], set[str]] = {}

    def files_for(self, entries: list[tuple[str, str]]) -> list[str]:
        """Sorted workspace-relative paths of every source file the entries need."""
        files: set[str] = set()
        for kind, value in entries:
            if kind == "script":
                if os.path.isfile(os.path.join(self.root, value)):
                    files |= self._closure(value, (posixpath.dirname(value), ""))
            else:
                for rel in self._resolve(value, ("",)):
                    files |= self._closure(rel, ("",))
        return sorted(files)

    def _closure(self, start: str, search: tuple[str, ...]) -> set[str]:
        memo_key = (start, *search)
        if memo_key in self._deps:
            return self._deps[memo_key]
        seen: set[str] = set()
        stack = [start]
        while stack:
            rel = stack.pop()
            if rel in seen:
                continue
            seen.add(rel)
            for name in self._imports(rel):
                if name.startswith("."):
                    stack.extend(self._resolve_relative(rel, name))
                else:
                    stack.extend(self._resolve(name, search))
        self._deps[memo_key] = seen
        return seen

    def _imports(self, rel: str) -> list[str]:
        digest = self.memo.file_digest(rel).xxh
        cached = self.memo.imports.get(digest)
        if isinstance(cached, list) and all(isinstance(n, str) for n in cached):
            return cached  # a damaged memo entry (state.json is only a cache) is re-read
        try:
            with open(os.path.join(self.root, rel), "rb") as f:
                tree = ast.parse(f.read(), filename=rel)
        except (SyntaxError, ValueError, OSError):
            names: list[str] = []
        else:
            names = sorted(_import_names(tree))
        self.memo.imports[digest] = names
        self.memo.dirty = True
        return names

    def _resolve(self, dotted: str, search: tuple[str, ...]) -> list[str]:
        parts = dotted.split(".")
        for base in search:
            found: list[str] = []
            for i in range(1, len(parts) + 1):
                stem = posixpath.join(base, *parts[:i]) if base else posixpath.join(*parts[:i])
                pkg = f"{stem}/__init__.py"
                if os.path.isfile(os.path.join(self.root, pkg)):
                    found.append(pkg)
                elif os.path.isfile(os.path.join(self.root, stem + ".py")):
                    found.append(stem + ".py")
                    break
                elif not os.path.isdir(os.path.join(self.root, stem)):
                    break
            if found:
                return found
        return []

    def _resolve_relative(self, rel: str, name: str) -> list[str]:
        level = len(name) - len(name.lstrip("."))
        package_dir = posixpath.dirname(rel)
        for _ in range(level - 1):
            package_dir = posixpath.dirname(package_dir)
        rest = name[level:]
        if not rest:
            init = posixpath.join(package_dir, "__init__.py") if package_dir else "__init__.py"
            return [init] if os.path.isfile(os.path.join(self.root, init)) else []
        return self._resolve(rest, (package_dir,))


def _import_names(tree: ast.AST) -> set[str]:
    """Module names an AST may import: ``import a.b`` → a.b; ``from a import b`` → a, a.b."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            prefix = "." * node.level + (node.module or "")
            if node.module:
                names.add(prefix)
            for alias in node.names:
                if alias.name != "*":
                    joiner = "." if node.module else ""
                    names.add(f"{prefix}{joiner}{alias.name}")
    return names
