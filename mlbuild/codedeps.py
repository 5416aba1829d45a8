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
from enum import Enum

from . import observe
from .store.state import StateMemo

__all__ = ["CodeScanner", "EntryKind", "entry_points"]


class EntryKind(str, Enum):
    """The kind of an entry point: a script run by path, or a module run by name.
    Entries are ``(kind, value)`` tuples; rebuild/keys.py builds module entries too."""

    SCRIPT = "script"
    MODULE = "module"


_PYTHONS = {"python", "python3", "python3.10", "python3.11", "python3.12", "python3.13"}
_VALUE_OPTS = {"-W", "-X", "--check-hash-based-pycs"}
_ENV_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_OPERATOR_CHARS = "();<>|&\n"
_SHELLS = {"sh", "bash", "dash", "zsh", "ksh"}
# Launchers run the rest of their arguments as a program: (options that take a value,
# how many leading positional arguments they take before the program).
_LAUNCHERS: dict[str, tuple[frozenset[str], int]] = {
    "time": (frozenset({"-f", "-o"}), 0),
    "nohup": (frozenset(), 0),
    "exec": (frozenset({"-a"}), 0),
    "command": (frozenset(), 0),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "ionice": (frozenset({"-c", "-n", "-p"}), 0),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0),
    "timeout": (frozenset({"-s", "--signal", "-k", "--kill-after"}), 1),
    "xvfb-run": (frozenset({"-n", "--server-num", "-s", "--server-args", "-f", "-e", "-w"}), 0),
    "env": (frozenset({"-u", "--unset", "-C", "--chdir", "-S"}), 0),
}
# `<tool> run [options] PROGRAM …` launchers and their value-taking options.
_RUNNERS: dict[str, frozenset[str]] = {
    "uv": frozenset({"--with", "--python", "-p", "--project", "--directory", "--env-file"}),
    "poetry": frozenset({"--directory", "-C", "-P", "--project"}),
    "conda": frozenset({"-n", "--name", "-p", "--prefix", "--cwd"}),
    "mamba": frozenset({"-n", "--name", "-p", "--prefix", "--cwd"}),
    "micromamba": frozenset({"-n", "--name", "-p", "--prefix", "--cwd"}),
    "pipenv": frozenset(),
    "pdm": frozenset(),
    "hatch": frozenset(),
}


def entry_points(cmds: tuple[str, ...] | None, python: str | None) -> list[tuple[str, str]]:
    """``("script", relpath)`` / ``("module", dotted)`` entries a target runs (a module
    run by ``python -m`` after a ``cd`` is ``("module", "dir/dotted")``: searched from there).

    Each command is tokenized as a shell does (quotes, operators, newlines), split into
    simple commands at ``;``, ``&&``, ``||``, ``|``, ``&``, newlines, subshell parentheses and
    ``{ …; }`` groups; launchers (`_LAUNCHERS`, `_RUNNERS`) are looked through, the string
    of ``sh -c '…'`` is parsed in turn, and ``cd DIR`` moves the directory later scripts are
    found in (until the end of its subshell)."""
    found: list[tuple[str, str]] = []
    if python is not None:
        found.append((EntryKind.MODULE, python.split(":", 1)[0]))
    for cmd in cmds or ():
        if "python" not in cmd and ".py" not in cmd:
            continue  # cheap filter: most commands of a big pipeline are not Python
        _scan(cmd, "", found, depth=0)
    return found


def _tokens(cmd: str) -> list[str]:
    """Shell words and operator tokens of ``cmd`` (an unbalanced quote ends the list)."""
    lexer = shlex.shlex(cmd, posix=True, punctuation_chars=_OPERATOR_CHARS)
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = ""
    words: list[str] = []
    try:
        for token in lexer:
            words.append(token)
    except ValueError:
        pass  # an unbalanced quote: what came before is still seen
    return words


def _scan(cmd: str, cwd: str | None, found: list[tuple[str, str]], *, depth: int) -> None:
    if depth > 4:
        return  # sh -c "sh -c '…'" nested deeper than anyone writes
    # The directory of each open subshell (None: outside the workspace, or not knowable);
    # `cd` changes the innermost.
    dirs: list[str | None] = [cwd]
    argv: list[str] = []
    redirect = False

    def flush() -> None:
        if argv:
            dirs[-1] = _simple(argv, dirs[-1], found, depth)
            argv.clear()

    for token in _tokens(cmd):
        is_operator = bool(token) and all(c in _OPERATOR_CHARS for c in token)
        if is_operator and set(token) <= set("<>&") and ("<" in token or ">" in token):
            redirect = True  # > out, 2>&1, < in: the next word is a file, not an argument
            continue
        if is_operator:
            flush()
            for c in token:
                if c == "(":
                    dirs.append(dirs[-1])
                elif c == ")" and len(dirs) > 1:
                    dirs.pop()
            continue
        if redirect:
            redirect = False
            continue
        if not argv and token in ("{", "}", "!", "then", "do", "else", "elif", "if", "while"):
            continue  # group and compound keywords: the program follows
        argv.append(token)
    flush()


def _simple(
    argv: list[str], cwd: str | None, found: list[tuple[str, str]], depth: int
) -> str | None:
    """Record the Python entry point of one simple command; returns the directory later
    commands run in (changed by ``cd``; None once it is outside the workspace or unknown:
    a script found there is not a workspace file)."""
    argv = _unwrap(argv)
    if not argv:
        return cwd
    program = os.path.basename(argv[0])
    if program == "cd":
        target = argv[1] if len(argv) > 1 else ""
        if cwd is None or not target or target.startswith(("/", "~", "-", "$")):
            return None
        moved = posixpath.normpath(posixpath.join(cwd, target))
        if moved == "..":
            return None
        return None if moved.startswith("../") else ("" if moved == "." else moved)
    if program in _SHELLS and "-c" in argv[1:]:
        i = argv.index("-c", 1)
        if i + 1 < len(argv):
            _scan(argv[i + 1], cwd, found, depth=depth + 1)
        return cwd
    if program.endswith(".py") and cwd is not None:  # uv run train.py, ./train.py
        found.append((EntryKind.SCRIPT, posixpath.normpath(posixpath.join(cwd, argv[0]))))
        return cwd
    if program not in _PYTHONS:
        return cwd
    args = iter(argv[1:])
    for arg in args:
        if arg in _VALUE_OPTS:
            next(args, None)  # python -W ignore train.py: skip the option's value
            continue
        if arg == "-m":
            module = next(args, None)
            if module and cwd is not None:  # searched from where it runs: ``sub/pkg.mod``
                found.append((EntryKind.MODULE, posixpath.join(cwd, module)))
            break
        if arg in ("-c",):
            break
        if arg.startswith("-"):
            continue
        if arg.endswith(".py") and cwd is not None:
            found.append((EntryKind.SCRIPT, posixpath.normpath(posixpath.join(cwd, arg))))
        break
    return cwd


def _unwrap(argv: list[str]) -> list[str]:
    """The program a simple command really runs: leading ``VAR=value`` assignments and
    launchers (``time``, ``nice -n 5``, ``timeout 60``, ``env -i``, ``uv run``,
    ``conda run -n x`` …) removed."""
    for _ in range(8):  # launchers nest: time nice timeout 60 python …
        while argv and _ENV_ASSIGN.match(argv[0]):
            argv = argv[1:]  # PYTHONHASHSEED=0 python train.py
        if not argv:
            return argv
        program = os.path.basename(argv[0])
        if program in _LAUNCHERS:
            takes_value, positional = _LAUNCHERS[program]
            argv = _skip_options(argv[1:], takes_value)
            argv = argv[positional:]
            continue
        if program in _RUNNERS and len(argv) > 1 and argv[1] == "run":
            argv = _skip_options(argv[2:], _RUNNERS[program])
            continue
        return argv
    return argv


def _skip_options(argv: list[str], takes_value: frozenset[str]) -> list[str]:
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return argv[i + 1 :]
        if _ENV_ASSIGN.match(arg):
            i += 1  # env -i A=1 python …
            continue
        if not arg.startswith("-") or arg == "-":
            return argv[i:]
        i += 2 if arg in takes_value else 1
    return []


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
            if kind == EntryKind.SCRIPT:
                if observe.isfile(os.path.join(self.root, value)):
                    files |= self._closure(value, (posixpath.dirname(value), ""))
            else:
                base, _, dotted = value.rpartition("/")  # ``python -m`` after a ``cd``
                for rel in self._resolve(dotted, (base,)):
                    files |= self._closure(rel, (base,))
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
                if observe.isfile(os.path.join(self.root, pkg)):
                    found.append(pkg)
                elif observe.isfile(os.path.join(self.root, stem + ".py")):
                    found.append(stem + ".py")
                    break
                elif not observe.isdir(os.path.join(self.root, stem)):
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
            return [init] if observe.isfile(os.path.join(self.root, init)) else []
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
