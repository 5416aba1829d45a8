"""Paths in mlbuild.yaml: where the config is, path safety, and the glob dialect of deps.

Every path the config names is workspace-relative and stays inside the workspace
(`normalize_path`; symlinks are followed by `check_inside` and `OutGuard`). Outs never touch
what mlbuild or git keep: ``.mlbuild/``, ``.git/``, the config file, its lock file, params
files and signing keys are refused as outs (`OutGuard.check_reserved`). Names are data, never
paths: a target name, or a ``:`` part of it, is never ``.`` or ``..`` (`name_problem`).

A glob dep is matched two ways, kept side by side here: `expand_glob` lists the files on
disk (Python's ``glob(recursive=True)``), `glob_regex` matches the declared outs of other
targets (which may not exist yet). The two do not agree on every pattern (``data/*``
matches an out ``data/.h`` but not a file ``data/.h``); see `glob_regex`.
"""

from __future__ import annotations

import glob as globmod
import os
import posixpath
import re

from ..errors import ConfigError, SourcePos

__all__ = [
    "CONFIG_NAME",
    "GLOB_CHARS",
    "STATE_DIR",
    "OutGuard",
    "check_inside",
    "expand_glob",
    "find_config",
    "glob_regex",
    "module_exists",
    "name_problem",
    "normalize_path",
]

CONFIG_NAME = "mlbuild.yaml"
STATE_DIR = ".mlbuild"  # per-workspace state: cache, memo, logs (see workspace.py)
GLOB_CHARS = re.compile(r"[*?\[]")
_TARGET_NAME = re.compile(r"[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-{}]+)?")  # used with fullmatch


def find_config(start: str) -> str:
    """Walk up from ``start`` to the nearest directory holding mlbuild.yaml."""
    here = os.path.abspath(start)
    while True:
        candidate = os.path.join(here, CONFIG_NAME)
        if os.path.isfile(candidate):
            return candidate
        if os.path.lexists(candidate):
            raise ConfigError(
                f"{candidate} is not a file", hint="it must be the YAML file of the workspace"
            )
        parent = os.path.dirname(here)
        if parent == here:
            raise ConfigError(
                f"no {CONFIG_NAME} in {os.path.abspath(start)} or any parent directory",
                hint="run `mlbuild init` to write a starter file, or pass -C DIR / -f FILE",
            )
        here = parent


# --------------------------------------------------------------------------- globs


def glob_regex(pattern: str) -> re.Pattern[str]:
    """The regex of a glob with Python's ``glob(recursive=True)`` meaning: ``*`` and ``?``
    stay within one path segment, ``**/`` spans any number of directories.

    Used on declared outs, not on files: it does not follow `expand_glob` everywhere. A
    leading ``.`` is matched by ``*``, ``?`` and ``[...]``, ``**/`` enters hidden
    directories, ``**`` inside a segment crosses ``/``, and ``[!x]`` can match ``/``."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def expand_glob(root: str, pattern: str) -> list[str]:
    """The files (not directories) under ``root`` that ``pattern`` matches, as
    workspace-relative POSIX paths in the order ``glob`` lists them.

    Python's ``glob(recursive=True)``: unlike `glob_regex`, ``*`` and ``**`` skip names
    starting with ``.``."""
    found: list[str] = []
    for match in globmod.glob(pattern, root_dir=root, recursive=True):
        match = match.replace(os.sep, "/")
        if os.path.isfile(os.path.join(root, match)):
            found.append(match)
    return found


# --------------------------------------------------------------------------- names and paths


def name_problem(name: str) -> tuple[str, str] | None:
    """What is wrong with a (concrete) target name and a hint, or None.

    Names are data, never paths: anything derived from one on disk is encoded, and a name
    that reads as a path step (``.``, ``..``, an empty part) is refused outright."""
    if not _TARGET_NAME.fullmatch(name):
        return (
            "use kind:name (letters, digits, _ . -)",
            "at most one ':'; no spaces, slashes, control characters or empty parts",
        )
    if "." in name and any(part in (".", "..") for part in name.split(":")):
        return (
            "'.' and '..' cannot be a name or a part of one",
            "a name is data, not a path: pick a word (letters, digits, _ . -)",
        )
    return None


def normalize_path(root: str, raw: str, pos: SourcePos, what: str) -> str:
    """Workspace-relative POSIX path; refuses anything that leaves the workspace."""
    if not raw or not raw.strip():
        raise ConfigError(f"empty {what} path", pos=pos)
    if "\x00" in raw:
        raise ConfigError(
            f"{what} path {raw!r} contains a NUL byte",
            pos=pos,
            hint="a file name cannot hold NUL; check the escapes in the string",
        )
    if os.path.isabs(raw) or raw.startswith("~"):
        raise ConfigError(
            f"{what} {raw!r} is outside the workspace (absolute path)",
            pos=pos,
            hint="use a path relative to the directory of mlbuild.yaml",
        )
    norm = posixpath.normpath(raw.replace(os.sep, "/"))
    if norm == ".." or norm.startswith("../"):
        raise ConfigError(f"{what} {raw!r} is outside the workspace (..)", pos=pos)
    if norm == ".":
        raise ConfigError(f"{what} {raw!r} is the workspace itself", pos=pos)
    return norm


def check_inside(root: str, rel: str) -> bool:
    """True when ``rel``'s existing part, with symlinks resolved, stays inside ``root``."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(root, rel))
    return real == real_root or real.startswith(real_root + os.sep)


def module_exists(root: str, module: str) -> bool:
    """Whether ``module`` is in the workspace or installed, without importing anything: a
    file lookup, or find_spec of the top package."""
    rel = module.replace(".", "/")
    for candidate in (rel + ".py", rel + "/__init__.py"):
        if os.path.isfile(os.path.join(root, candidate)):
            return True
    top = module.split(".", 1)[0]
    if os.path.isdir(os.path.join(root, top)):
        return True  # a namespace package in the workspace: leave it to the import
    import importlib.util

    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


# --------------------------------------------------------------------------- outs


class OutGuard:
    """Where a target may write: inside the workspace, away from what mlbuild reads to decide
    (config, lock file, params files, keys) and from ``.mlbuild/`` and ``.git/``.

    One instance per load: the real path of each out's directory is memoized, since outs
    share directories."""

    def __init__(self, root: str, config_rel: str) -> None:
        self.root = root
        self.rel = config_rel
        self._inside: dict[str, str | None] = {}
        self.reserved: dict[str, str] = {}  # file -> what it is (config, lock, params, keys)
        self.reserved_dirs: set[str] = set()  # every directory holding one of them

    def parent_inside(self, rel: str) -> bool:
        """check_inside for an out's parent directory, memoized: outs share directories.

        The out itself is checked again at write time (rebuilder.ensure_inside)."""
        parent = posixpath.dirname(rel)
        if not parent:
            return True
        return self.real_parent(parent) is not None

    def real_parent(self, parent: str) -> str | None:
        """Workspace-relative path of directory ``parent`` with symlinks resolved (None when
        it leads outside), memoized: outs share directories."""
        if parent not in self._inside:
            real_root = os.path.realpath(self.root)
            real = os.path.realpath(os.path.join(self.root, parent))
            inside = real == real_root or real.startswith(real_root + os.sep)
            self._inside[parent] = (
                os.path.relpath(real, real_root).replace(os.sep, "/") if inside else None
            )
        return self._inside[parent]

    def reserve(self, param_files: list[str], signing_key: str | None, trusted: list[str]) -> None:
        """Record the files no target may write, with what each is: what mlbuild reads to
        decide."""
        stem = os.path.splitext(self.rel)[0]
        found = {
            CONFIG_NAME: "a config file",
            "mlbuild.lock": "a lock file",
            self.rel: "the config file",
            stem + ".lock": "the lock file",
        }
        for rel in param_files:
            found[posixpath.normpath(rel)] = "a params file"
        if signing_key is not None:
            found[signing_key] = "the signing key"
        for rel in trusted:
            found[rel] = "a trusted key"
        self.reserved = found
        self.reserved_dirs = {f[:i] for f in found for i, c in enumerate(f) if c == "/"}

    def check_reserved(self, rel: str, pos: SourcePos, what: str) -> None:
        """Refuse an out that is (or holds, or leads through a symlink into) what mlbuild or
        git keep: a build moves outs aside and replaces them, so such an out would move the
        cache away (.mlbuild/), never settle (the lock file), rewrite its own inputs (the
        config, params, keys) or plant a hook that runs at the next commit (.git/)."""
        candidates = [rel]
        parent = posixpath.dirname(rel)
        real = self.real_parent(parent) if parent else ""
        if real is not None and real != parent:
            candidates.append(posixpath.normpath(posixpath.join(real, posixpath.basename(rel))))
        for path in candidates:
            via = "" if path == rel else f" (through a symlink: {path})"
            self._check_state_dirs(rel, path, via, pos, what)
            if path not in self.reserved and path not in self.reserved_dirs:
                continue
            if path in self.reserved:
                why = f"it is {self.reserved[path]}"
            else:
                held = min(f for f in self.reserved if f.startswith(path + "/"))
                why = f"it holds {held!r}, {self.reserved[held]}"
            raise ConfigError(
                f"{what} {rel!r} is reserved: {why}{via}",
                pos=pos,
                hint="a build moves its outs aside and rewrites them: write elsewhere",
            )

    @staticmethod
    def _check_state_dirs(rel: str, path: str, via: str, pos: SourcePos, what: str) -> None:
        """Refuse ``path`` (``rel`` as written) inside .mlbuild/ or .git/, in any case."""
        folded = path.casefold()
        if ".git" not in folded and STATE_DIR not in folded:
            return
        for part in folded.split("/"):
            if part in (STATE_DIR, ".git"):
                owner = "mlbuild's own state" if part == STATE_DIR else "the git repository"
                raise ConfigError(
                    f"{what} {rel!r} is reserved: it is or lies inside {part}/, {owner}{via}",
                    pos=pos,
                    hint="write outs elsewhere in the workspace",
                )
