"""Paths in mlbuild.yaml: where the config is, path safety, and the glob dialect of deps.

Every path the config names is workspace-relative and stays inside the workspace
(`normalize_path`; symlinks are followed by `check_inside` and `OutGuard`). Outs never touch
what mlbuild or git keep: ``.mlbuild/``, ``.git/``, the config file, its lock file, params
files and signing keys are refused as outs (`OutGuard.check_reserved`). Names are data, never
paths: a target name, or a ``:`` part of it, is never ``.`` or ``..`` (`name_problem`).

A glob dep has one dialect, Python's ``glob(recursive=True)`` (what make, shell and
Snakemake users expect), with one definition: `glob_regex`. It matches the declared outs of
other targets (which may not exist yet); `expand_glob` walks the disk and keeps the files
the same regex matches. So an out and a file at one path always get the same answer, and a
dep cannot count or not depending on whether it is built or checked in. We do not keep
`glob.glob` for the disk beside a regex imitating it: that was two sources of truth, and
they drifted (``data/*`` matched an out ``data/.h`` but not the file; ``**`` inside a
segment, ``[!x]`` and ``**/`` into hidden directories differed too). The walk only
proposes candidates; the regex decides. The rules: ``*``, ``?`` and ``[...]`` never match
``/``, nor a leading ``.`` unless the segment starts with a literal ``.`` (so ``.mlbuild/``
and ``.git/`` are reached only by a pattern naming a dot); ``**`` as a whole segment is
zero or more directories, never hidden ones; ``**`` inside a segment is ``*``; ``[!x]``
negates, ``[^x]`` is the class of ``^`` and ``x`` (as in `fnmatch`); an unclosed ``[`` is
a literal; matching is case-sensitive.
"""

from __future__ import annotations

import os
import posixpath
import re

from .. import observe
from ..errors import ConfigError, SourcePos
from ..locate import CONFIG_NAME, find_config  # re-exported: defined where the CLI finds them
from ..store.layout import STATE_DIR  # re-exported: defined once, beside the whole tree

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

GLOB_CHARS = re.compile(r"[*?\[]")
_TARGET_NAME = re.compile(r"[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-{}]+)?")  # used with fullmatch


# --------------------------------------------------------------------------- globs


def _class_regex(pattern: str, i: int) -> tuple[str, int] | None:
    """The regex of the ``[...]`` class opening at ``pattern[i]`` and the index after it, or
    None when it is not closed (then ``[`` is a literal).

    A port of `fnmatch.translate`'s class rule, so a class means what it means to `glob`:
    ``[!x]`` negates, ``[^x]`` is the class of ``^`` and ``x``, a ``]`` right after ``[`` or
    ``[!`` is a member, empty ranges (``z-a``) are dropped. One change: a class never
    matches ``/`` (``[!x]`` or the range ``+-0`` would), which on disk it cannot either."""
    n = len(pattern)
    j = i + 1
    if j < n and pattern[j] == "!":
        j += 1
    if j < n and pattern[j] == "]":
        j += 1
    while j < n and pattern[j] != "]":
        j += 1
    if j >= n:
        return None
    start = i + 1
    if "-" not in pattern[start:j]:
        stuff = pattern[start:j].replace("\\", r"\\")
    else:
        chunks: list[str] = []
        k = start + 2 if pattern[start] == "!" else start + 1
        while True:
            k = pattern.find("-", k, j)
            if k < 0:
                break
            chunks.append(pattern[start:k])
            start = k + 1
            k = k + 3
        chunk = pattern[start:j]
        if chunk:
            chunks.append(chunk)
        else:
            chunks[-1] += "-"
        for k in range(len(chunks) - 1, 0, -1):  # drop empty ranges: invalid in a regex
            if chunks[k - 1][-1] > chunks[k][0]:
                chunks[k - 1] = chunks[k - 1][:-1] + chunks[k][1:]
                del chunks[k]
        stuff = "-".join(s.replace("\\", r"\\").replace("-", r"\-") for s in chunks)
    stuff = re.sub(r"([&~|])", r"\\\1", stuff)  # no regex set operations
    if not stuff:
        return "(?!)", j + 1  # an empty class matches nothing
    if stuff == "!":
        return "[^/]", j + 1  # a negated empty class matches any character
    if stuff[0] == "!":
        stuff = "^" + stuff[1:]
    elif stuff[0] in ("^", "["):
        stuff = "\\" + stuff
    return f"(?!/)[{stuff}]", j + 1


def _segment_regex(segment: str) -> str:
    """The regex of one ``/``-free segment other than ``**``: ``*``, ``?`` and a class stay
    inside the segment, and the segment matches a name starting with ``.`` only when it
    starts with a literal ``.`` itself (glob's rule: a hidden name is never a wildcard's)."""
    out = [] if segment.startswith(".") else [r"(?!\.)"]
    i = 0
    while i < len(segment):
        c = segment[i]
        if c == "*":
            while i + 1 < len(segment) and segment[i + 1] == "*":
                i += 1  # ``**`` inside a segment is ``*``
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (cls := _class_regex(segment, i)) is not None:
            out.append(cls[0])
            i = cls[1]
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _segments(pattern: str) -> list[str]:
    """``pattern`` cut at ``/``, as `glob` cuts it, with a run of ``**`` segments as one (the
    same paths, and the walk does not list a tree once per ``**``)."""
    segments: list[str] = []
    for segment in pattern.split("/"):
        if not (segment == "**" and segments and segments[-1] == "**"):
            segments.append(segment)
    return segments


_ANY_DIRS = r"(?:(?!\.)[^/]+/)*"  # ``**/``: zero or more directories, none hidden
_ANY_PATH = r"(?!\.)[^/]+(?:/(?!\.)[^/]+)*"  # a final ``**``: one or more names, none hidden


def glob_regex(pattern: str) -> re.Pattern[str]:
    """The regex of a glob dep, matched with ``fullmatch`` against a workspace-relative
    POSIX path: the one definition of the dialect (see the module docstring).

    The pattern is cut at ``/`` first, as `glob` cuts it, so nothing (``*``, ``?``, a class,
    ``**`` inside a segment) crosses ``/``; only a whole ``**`` segment spans directories,
    never entering one whose name starts with ``.``."""
    segments = _segments(pattern)
    out: list[str] = []
    for k, segment in enumerate(segments):
        last = k == len(segments) - 1
        if segment == "**":
            out.append(_ANY_PATH if last else _ANY_DIRS)
        else:
            out.append(_segment_regex(segment) + ("" if last else "/"))
    return re.compile("".join(out))


def expand_glob(root: str, pattern: str) -> list[str]:  # long: one walk closing over its caches
    """The files (not directories) under ``root`` that ``pattern`` matches, as sorted
    workspace-relative POSIX paths: what `glob_regex` matches among the files on disk.

    The walk only proposes candidates, pruned segment by segment with the regexes
    `glob_regex` is made of; `glob_regex` decides. A literal segment is looked up, not
    listed (so ``.github/*.yml`` works without listing the workspace). Symlinks are followed,
    as `glob` follows them, except that ``**`` does not enter a directory it is already
    inside (a link to an ancestor), which `glob` repeats until the OS refuses the path."""
    segments = _segments(pattern)
    matchers = [None if s == "**" else re.compile(_segment_regex(s)) for s in segments]
    found: set[str] = set()
    listed: dict[str, list[os.DirEntry[str]]] = {}  # ``**/x`` lists each directory twice

    def scan(path: str) -> list[os.DirEntry[str]]:
        if path not in listed:
            listed[path] = _scan(path)
        return listed[path]

    def walk(rel: str, k: int, real: str | None, ancestors: frozenset[str]) -> None:
        # rel: a directory ("" is root) whose path matched segments[:k]; real: its real
        # path when known; ancestors: the real paths ``**`` walked down through to reach it.
        here = os.path.join(root, rel)
        last = k == len(segments) - 1
        segment, matcher = segments[k], matchers[k]
        if matcher is None:  # ``**``
            real = real or os.path.realpath(here)
            if real in ancestors:
                return  # a link back up: everything below was or will be listed
            if not last:
                walk(rel, k + 1, real, ancestors)  # zero directories
            for entry in scan(here):
                if entry.name.startswith("."):
                    continue
                child = posixpath.join(rel, entry.name)
                if last and _is_file(entry):
                    found.add(child)
                elif _is_dir(entry):
                    below = (
                        os.path.realpath(entry.path)
                        if entry.is_symlink()
                        else os.path.join(real, entry.name)
                    )
                    walk(child, k, below, ancestors | {real})
            return
        if not GLOB_CHARS.search(segment):
            child = posixpath.join(rel, segment)
            if last:
                if os.path.isfile(os.path.join(root, child)):
                    found.add(child)
            elif os.path.isdir(os.path.join(root, child)):
                walk(child, k + 1, None, ancestors)
            return
        for entry in scan(here):
            if not matcher.fullmatch(entry.name):
                continue
            child = posixpath.join(rel, entry.name)
            if last:
                if _is_file(entry):
                    found.add(child)
            elif _is_dir(entry):
                walk(child, k + 1, None, ancestors)

    walk("", 0, None, frozenset())
    regex = glob_regex(pattern)
    matched = sorted(path for path in found if regex.fullmatch(path))
    observer = observe.active()
    if observer is not None:
        observer.glob(root, pattern, matched)
    return matched


def _scan(path: str) -> list[os.DirEntry[str]]:
    """The entries of directory ``path`` (none when it cannot be read, as `glob` does)."""
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError:
        return []


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


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
    real_root = observe.realpath(root)
    real = observe.realpath(os.path.join(root, rel))
    return real == real_root or real.startswith(real_root + os.sep)


def module_exists(root: str, module: str) -> bool:
    """Whether ``module`` is in the workspace or installed, without importing anything: a
    file lookup, or find_spec of the top package."""
    rel = module.replace(".", "/")
    for candidate in (rel + ".py", rel + "/__init__.py"):
        if observe.isfile(os.path.join(root, candidate)):
            return True
    top = module.split(".", 1)[0]
    if observe.isdir(os.path.join(root, top)):
        return True  # a namespace package in the workspace: leave it to the import
    return observe.installed(top)


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
            real_root = observe.realpath(self.root)
            real = observe.realpath(os.path.join(self.root, parent))
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
