"""Read and validate mlbuild.yaml into a `Pipeline`; no hashing, no running.

Everything that can be wrong with the file is found here, before anything runs, and
reported as ``mlbuild.yaml:LINE:COL: what is wrong`` with a "did you mean" where one fits.

The YAML is *composed* (not loaded) so that every key and value keeps its position; values
are then constructed one node at a time, which is also where duplicate keys are caught.

Interpolation (``${...}``) happens here too, because its errors are config errors:

=====================  ==========================================================
``${params.a.b}``      a parameter value (tracked in the key even if not declared)
``${vars.x}``          a plain variable from ``vars:``
``${env.X}``           a declared env value (top level or the target's own)
``${outs}``            all outs, space separated; ``${outs[i]}`` one of them
``${deps}``            all dep paths (target deps expand to their outs); ``${deps[i]}``
``${target}``          the target's name
``${algo}``            a matrix variable
``${raw:EXPR}``        any of the above, not shell-quoted
``$${``                a literal ``${``
=====================  ==========================================================

In a shell ``cmd`` every substituted value is quoted with ``shlex.quote``, which is exactly
right only where the shell reads a plain word: outside any quotes (also inside ``( )`` and
``$( )``, whose content the shell parses afresh). Every other place is refused when the file
is loaded: inside double or single quotes, backticks, a here-document, a ``${...}``
expansion, ``$((...))`` or ``((...))`` arithmetic, a comment, right after a backslash or a
``$``, whatever the value (a config that loads is safe for every value). A small lexer
(`_shell_context_problem`) follows the shell's quoting over the finished command, so a value
from data (params, vars, env, matrix values, deps/outs paths, the target name) can never run
as a command, whatever its bytes. ``${raw:...}`` opts out: its value is pasted as shell text
(and the lexer reads it, so a raw value that opens a quote makes the next value refused).
What the command itself does with an argument (``eval``, ``sh -c``, bash's ``let``) is the
command's business. A NUL byte in a command or an env value is refused (no exec takes one).
In deps, outs and param keys nothing is quoted. Env values are taken literally (no
interpolation): they are part of the key as written.

Names are data, never paths: a target name, or a ``:`` part of it, is never ``.`` or ``..``.
Outs never touch what mlbuild or git keep: ``.mlbuild/``, ``.git/``, the config file, its
lock file, params files and signing keys are refused as outs (`_Loader.check_reserved`).
Every YAML file mlbuild reads (this one, params files, metrics files) goes through
`yaml_graph_problem`: aliases may not add more than `MAX_ALIAS_EXPANSION` values nor nest
deeper than `MAX_YAML_DEPTH`, so a 322-byte "billion laughs" is an error, not 2 GB.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob as globmod
import itertools
import json
import os
import posixpath
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .errors import ConfigError, SourcePos
from .mlspec import (
    CheckSpec,
    GateSpec,
    PromoteSpec,
    SpecError,
    parse_checks,
    parse_gates,
    parse_promote,
)
from .suggest import did_you_mean

__all__ = [
    "CONFIG_NAME",
    "DepKind",
    "DepSpec",
    "Pipeline",
    "TargetSpec",
    "find_config",
    "load_pipeline",
    "yaml_graph_problem",
]

CONFIG_NAME = "mlbuild.yaml"
STATE_DIR = ".mlbuild"  # per-workspace state: cache, memo, logs (see workspace.py)
SCHEMA_VERSION = 1

TOP_KEYS = (
    "version",
    "default",
    "params",
    "vars",
    "env",
    "packages",
    "executor",
    "signing",
    "trusted_keys",
    "remote",
    "remote_options",
    "remote_write",
    "strict_inputs",
    "targets",
)
TARGET_KEYS = (
    "cmd",
    "python",
    "deps",
    "outs",
    "params",
    "env",
    "packages",
    "matrix",
    "resources",
    "always",
    "metrics",
    "checks",
    "promote",
    "gate",
    "retries",
    "strict_inputs",
    "desc",
)
GLOB_CHARS = re.compile(r"[*?\[]")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INTERP = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_INDEXED = re.compile(r"^(outs|deps)\[(\d+)\]$")
# A matrix variable whose values are a list in the params: the whole string, nothing else.
_MATRIX_SOURCE = re.compile(r"^\$\{\s*(params|vars)\.([^}]*?)\s*\}$")
_TARGET_NAME = re.compile(r"[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-{}]+)?")  # used with fullmatch
# What a YAML file may cost: aliases adding at most this many values to what is written
# (a config or params file without aliases is never limited), and at most this nesting.
MAX_ALIAS_EXPANSION = 100_000
MAX_YAML_DEPTH = 100
_MAY_ALIAS = re.compile(r"(?:^|[\s\[{,:])\*")  # an alias token starts with *


class DepKind(Enum):
    """What a dep entry names."""

    TARGET = "target"
    PATH = "path"
    GLOB = "glob"


@dataclass(frozen=True)
class DepSpec:
    """One entry of ``deps:`` after resolution (a path produced by a target becomes TARGET)."""

    kind: DepKind
    value: str  # target name, normalized path, or glob pattern
    paths: tuple[str, ...] = ()  # files a glob matched when the pipeline was loaded


@dataclass(frozen=True)
class TargetSpec:
    """A declared target, parsed, interpolated and validated."""

    name: str
    cmd: tuple[str, ...] | None
    python: str | None
    deps: tuple[DepSpec, ...]
    dep_paths: tuple[str, ...]  # what ${deps} and a callable's ``deps`` list: files, in order
    outs: tuple[str, ...]
    params: Mapping[str, Any]
    env: Mapping[str, str]
    secrets: Mapping[str, str]  # secret env name → the caller's variable it is read from
    packages: tuple[str, ...]
    resources: Mapping[str, int]
    matrix: Mapping[str, Any]
    always: bool
    retries: int
    desc: str
    pos: SourcePos
    metrics: tuple[str, ...] = ()  # metrics files (also outs): JSON or YAML, read after a run
    checks: tuple[CheckSpec, ...] = ()
    gates: tuple[GateSpec, ...] = ()
    promote: PromoteSpec | None = None
    template: str = ""  # the matrix target name it was expanded from ("model:{algo}")
    # A Python read of an undeclared workspace file fails the build instead of warning.
    # Not part of the key: it decides how a run is judged, not what it produces.
    strict_inputs: bool = False

    @property
    def kind(self) -> str:
        """The part before the first ``:`` (empty for a bare name)."""
        return self.name.split(":", 1)[0] if ":" in self.name else ""

    @property
    def dep_targets(self) -> tuple[str, ...]:
        """Names of the targets this one depends on, sorted and unique."""
        return tuple(sorted({d.value for d in self.deps if d.kind is DepKind.TARGET}))


@dataclass(frozen=True)
class Pipeline:
    """All targets of one mlbuild.yaml, in file order, with the workspace root."""

    root: str
    config_path: str
    targets: Mapping[str, TargetSpec]
    default: tuple[str, ...]
    jobs: int | None = None
    param_files: tuple[str, ...] = ()
    out_owner: Mapping[str, str] = field(default_factory=dict)
    signing_key: str | None = None  # workspace-relative path of the Ed25519 private key
    trusted_keys: tuple[str, ...] = ()  # workspace-relative paths of accepted public keys
    remote: str | None = None  # fsspec URL of the shared cache (store/remote.py)
    remote_options: Mapping[str, Any] = field(default_factory=dict)  # given to fsspec
    remote_write: bool = False  # push after every successful build, as --push
    executor: str = "local"  # or "dask" (executors/dask.py)
    executor_address: str | None = None  # the Dask scheduler's address
    executor_mode: str = "shared"  # Dask: "shared" filesystem, or "remote" (via the cache)

    def owner_of(self, path: str) -> str | None:
        """The target whose out is ``path`` or contains it, if any."""
        probe = path
        while probe:
            owner = self.out_owner.get(probe)
            if owner is not None:
                return owner
            probe = posixpath.dirname(probe)
        return None


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


# --------------------------------------------------------------------------- YAML with positions


class _Doc:
    """A YAML document as plain values plus the position of every key and value.

    ``pos[path]`` is where the value at ``path`` starts; ``kpos[path]`` where its key is,
    both as 1-based ``(line, col)``. A path is a tuple of mapping keys and list indexes.

    Composing YAML node by node costs ~0.1 ms per target, so with ``cache_dir`` the result
    is kept (marshal, keyed by the text's xxh3) in ``<cache_dir>/yaml/<file>.marshal``: a
    no-op build of an unchanged file skips the YAML parser entirely.
    """

    _FORMAT = 2  # 2: only files that passed yaml_graph_problem are kept (no alias bombs)

    def __init__(self, file: str, text: str, cache_dir: str | None = None) -> None:
        self.file = file
        self.pos: dict[tuple[Any, ...], tuple[int, int]] = {}
        self.kpos: dict[tuple[Any, ...], tuple[int, int]] = {}
        cache = None
        digest = ""
        if cache_dir is not None:
            from .digest import hash_bytes

            digest = hash_bytes(text.encode())
            cache = os.path.join(cache_dir, "yaml", file.replace("/", "__") + ".marshal")
            if self._load_cache(cache, digest, len(text)):
                return
        self.value: Any = self._compose(text)
        if cache is not None:
            self._save_cache(cache, digest)

    def _load_cache(self, path: str, digest: str, text_size: int) -> bool:
        import marshal

        try:
            with open(path, "rb") as f:
                # A cache far larger than its text is not one this version wrote (an alias
                # bomb cached by an older mlbuild): skip it unread, the text is parsed again.
                if os.fstat(f.fileno()).st_size > 64 * text_size + (1 << 20):
                    return False
                fmt, cached_digest, value, pos, kpos = marshal.loads(f.read())
        except (OSError, ValueError, EOFError, TypeError):
            return False
        if fmt != self._FORMAT or cached_digest != digest:
            return False
        if not (isinstance(value, dict) and isinstance(pos, dict) and isinstance(kpos, dict)):
            return False
        self.value, self.pos, self.kpos = value, pos, kpos
        return True

    def _save_cache(self, path: str, digest: str) -> None:
        import marshal

        from .store.atomic import atomic_write

        try:
            data = marshal.dumps((self._FORMAT, digest, self.value, self.pos, self.kpos))
        except ValueError:
            return  # a value marshal cannot hold (a YAML timestamp): just don't cache
        with contextlib.suppress(OSError):  # a read-only workspace works, only slower
            atomic_write(path, data)

    def _compose(self, text: str) -> Any:
        import yaml

        loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            node = yaml.compose(text, Loader=loader_cls)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            at = SourcePos(self.file, mark.line + 1, mark.column + 1) if mark else self._pos(None)
            raise ConfigError(f"invalid YAML: {exc.problem or exc.context}", pos=at) from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"invalid YAML: {exc}", pos=self._pos(None)) from None
        except RecursionError:  # the pure-Python composer on deep nesting
            raise ConfigError(
                f"invalid YAML: nested more than {MAX_YAML_DEPTH} levels deep",
                pos=self._pos(None),
            ) from None
        if node is None:
            return {}
        # The graph walk costs half a compose, so it runs only when the text may hold an
        # alias (a `*` starting a token); _build's own budget bounds the rest regardless.
        problem = yaml_graph_problem(node) if _MAY_ALIAS.search(text) else None
        if problem is not None:
            message, where = problem
            raise ConfigError(
                message,
                pos=self._pos(where),
                hint="write the values out, or use fewer, smaller aliases",
            )
        self._constructor = yaml.constructor.SafeConstructor()
        self._budget = len(text) + 1 + MAX_ALIAS_EXPANSION  # a written value takes a char
        return self._build(node, ())

    def _pos(self, line_col: tuple[int, int] | None) -> SourcePos:
        return SourcePos(self.file, *(line_col or (1, 1)))

    @staticmethod
    def _mark(node: Any) -> tuple[int, int]:
        return (node.start_mark.line + 1, node.start_mark.column + 1)

    def _build(self, node: Any, path: tuple[Any, ...]) -> Any:
        import yaml

        self._budget -= 1
        if self._budget < 0 or len(path) > MAX_YAML_DEPTH:
            raise ConfigError(
                f"YAML nested more than {MAX_YAML_DEPTH} levels deep"
                if len(path) > MAX_YAML_DEPTH
                else f"YAML aliases expand to more than {MAX_ALIAS_EXPANSION:,} values",
                pos=self._pos(self._mark(node)),
            )
        self.pos[path] = self._mark(node)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for knode, vnode in node.value:
                if knode.tag == "tag:yaml.org,2002:merge":
                    raise ConfigError(
                        "YAML merge keys (<<) are not supported", pos=self._pos(self._mark(knode))
                    )
                if not isinstance(knode, yaml.ScalarNode):
                    raise ConfigError(
                        "mapping keys must be plain strings", pos=self._pos(self._mark(knode))
                    )
                key = self._constructor.construct_object(knode)
                if not isinstance(key, str):
                    key = str(key)
                if key in out:
                    first = self.kpos[path + (key,)]
                    raise ConfigError(
                        f"duplicate key {key!r} (first defined at line {first[0]})",
                        pos=self._pos(self._mark(knode)),
                    )
                self.kpos[path + (key,)] = self._mark(knode)
                out[key] = self._build(vnode, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._build(item, path + (i,)) for i, item in enumerate(node.value)]
        try:
            return self._constructor.construct_object(node)
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"invalid YAML value: {exc}", pos=self._pos(self._mark(node))
            ) from None

    def at(self, path: tuple[Any, ...]) -> SourcePos:
        """Best known position for ``path`` (walking up to a parent if needed)."""
        while path not in self.pos and path:
            path = path[:-1]
        return self._pos(self.pos.get(path))

    def key_at(self, path: tuple[Any, ...]) -> SourcePos:
        found = self.kpos.get(path)
        return self._pos(found) if found is not None else self.at(path)


def yaml_graph_problem(root: Any) -> tuple[str, tuple[int, int]] | None:
    """Why a composed YAML node graph must not be turned into values, and where (1-based
    line, column); None when it is fine.

    PyYAML composes an alias as a second reference to the anchored node, so composing is
    cheap, but anything that walks the result walks every reference: nine anchors of nine
    aliases each (the "billion laughs", 322 bytes) expand to 387 million values. Here each
    node's expanded size and height are computed once (memoized by identity, iteratively),
    so the cost is one pass over the nodes as written. Refused: aliases that add more than
    `MAX_ALIAS_EXPANSION` values to what is written, nesting deeper than `MAX_YAML_DEPTH`,
    and an alias inside the node it refers to (a cycle)."""
    import yaml

    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)
    active: set[int] = set()  # nodes on the current path: meeting one again is a cycle
    written = 0  # distinct nodes seen so far
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if isinstance(node, yaml.MappingNode):
            children = [item for pair in node.value for item in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        where = (node.start_mark.line + 1, node.start_mark.column + 1)
        if done:
            active.discard(key)
            size, height = 1, 1
            for child in children:
                child_size, child_height = sizes[id(child)]
                size += child_size
                height = max(height, child_height + 1)
            sizes[key] = (size, height)
            if size > written + MAX_ALIAS_EXPANSION:
                return (
                    f"YAML aliases expand to more than {MAX_ALIAS_EXPANSION:,} values "
                    "(an alias bomb?)",
                    where,
                )
            if height > MAX_YAML_DEPTH:
                return f"YAML nested more than {MAX_YAML_DEPTH} levels deep", where
            continue
        if key in sizes:
            continue
        if key in active:
            return "a YAML alias refers to a node that contains it (a recursive alias)", where
        active.add(key)
        written += 1
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return None


def _decode(data: bytes, rel: str) -> str:
    """``data`` as UTF-8 text, or a ConfigError at the first byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        col = len(data[line_start : exc.start].decode("utf-8", "replace")) + 1
        raise ConfigError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded",
            pos=SourcePos(rel, line, col),
            hint="save the file as UTF-8",
        ) from None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """The regex of a glob with Python's ``glob(recursive=True)`` meaning: ``*`` and ``?``
    stay within one path segment, ``**/`` spans any number of directories."""
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


def _name_problem(name: str) -> tuple[str, str] | None:
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


# --------------------------------------------------------------------------- params


def _load_params_file(root: str, rel: str, pos: SourcePos) -> dict[str, Any]:
    path = os.path.join(root, rel)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError(f"params file {rel!r} does not exist", pos=pos) from None
    except IsADirectoryError:
        raise ConfigError(
            f"params file {rel!r} is a directory", pos=pos, hint="name a YAML, JSON or TOML file"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"params file {rel!r} cannot be read: {exc.strerror or exc}",
            pos=pos,
            hint="check its permissions",
        ) from None
    text = _decode(data, rel)
    ext = os.path.splitext(rel)[1].lower()
    if ext == ".json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"invalid JSON: {exc.msg}", pos=SourcePos(rel, exc.lineno, exc.colno)
            ) from None
        except (RecursionError, ValueError) as exc:  # nesting; an int of 5,000 digits
            raise ConfigError(f"invalid JSON: {_too_deep(exc)}", pos=SourcePos(rel, 1, 1)) from None
    elif ext == ".toml":
        if sys.version_info < (3, 11):  # pragma: no cover - Python 3.10
            raise ConfigError("TOML params files need Python 3.11 or newer", pos=pos)
        import tomllib

        try:
            value = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            where = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
            at = SourcePos(rel, int(where[1]), int(where[2])) if where else SourcePos(rel, 1, 1)
            raise ConfigError(f"invalid TOML: {exc}", pos=at) from None
        except (RecursionError, ValueError) as exc:
            raise ConfigError(f"invalid TOML: {_too_deep(exc)}", pos=SourcePos(rel, 1, 1)) from None
    else:
        value = _Doc(rel, text, os.path.join(root, STATE_DIR, "cache")).value
    if not isinstance(value, dict):
        raise ConfigError("a params file must hold a mapping", pos=SourcePos(rel, 1, 1))
    return value


def _kind(value: Any) -> str:
    """What a YAML value is, in words, for an error message."""
    if isinstance(value, bool):
        return f"a boolean ({_render_value(value)})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})" if len(value) <= 40 else "a string"
    if value is None:
        return "null"
    return "a mapping" if isinstance(value, Mapping) else f"a {type(value).__name__}"


def _too_deep(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply to read"
    return str(exc)


def _merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


_MISSING = object()


def _lookup(tree: Mapping[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _flat_keys(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in tree.items():
        full = f"{prefix}{key}"
        keys.append(full)
        if isinstance(value, Mapping):
            keys.extend(_flat_keys(value, full + "."))
    return keys


# --------------------------------------------------------------------------- paths


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


# --------------------------------------------------------------------------- interpolation


def _render_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass
class _Scope:
    """What ``${...}`` can see while one target is interpolated."""

    name: str
    params: Mapping[str, Any]
    vars: Mapping[str, Any]
    env: Mapping[str, str]
    matrix: Mapping[str, Any]
    secrets: Mapping[str, str] = field(default_factory=dict)
    outs: list[str] | None = None
    deps: list[str] | None = None
    used_params: dict[str, Any] = field(default_factory=dict)
    matrix_reads: dict[str, Any] = field(default_factory=dict)  # see _Loader.matrix_reads


def _resolve(expr: str, scope: _Scope, pos: SourcePos) -> list[str]:
    """Value(s) of one ``${expr}``: a list so ``${outs}`` can quote each path alone."""
    expr = expr.strip()
    if expr == "target":
        return [scope.name]
    if expr in ("outs", "deps"):
        values = scope.outs if expr == "outs" else scope.deps
        if values is None:
            raise ConfigError(f"${{{expr}}} can only be used in cmd", pos=pos)
        return list(values)
    m = _INDEXED.match(expr)
    if m:
        values = scope.outs if m.group(1) == "outs" else scope.deps
        if values is None:
            raise ConfigError(f"${{{expr}}} can only be used in cmd", pos=pos)
        index = int(m.group(2))
        if index >= len(values):
            raise ConfigError(
                f"${{{expr}}}: the target has only {len(values)} {m.group(1)}", pos=pos
            )
        return [values[index]]
    head, _, rest = expr.partition(".")
    if head == "params" and rest:
        value = _lookup(scope.params, rest)
        if value is _MISSING:
            hint = did_you_mean(rest, _flat_keys(scope.params))
            raise ConfigError(f"undefined param ${{params.{rest}}}", pos=pos, hint=hint)
        scope.used_params[rest] = value
        return [_render_value(value)]
    if head == "vars" and rest:
        if rest not in scope.vars:
            raise ConfigError(
                f"undefined variable ${{vars.{rest}}}",
                pos=pos,
                hint=did_you_mean(rest, sorted(scope.vars)),
            )
        return [_render_value(scope.vars[rest])]
    if head == "env" and rest:
        if rest in scope.secrets:
            raise ConfigError(
                f"${{env.{rest}}} is a secret: it cannot be written into a command",
                pos=pos,
                hint=f"let the command read ${rest} from its environment",
            )
        if rest not in scope.env:
            raise ConfigError(
                f"undefined env ${{env.{rest}}} (only declared env values can be used)",
                pos=pos,
                hint=did_you_mean(rest, sorted(scope.env)),
            )
        return [scope.env[rest]]
    if expr in scope.matrix:
        return [_render_value(scope.matrix[expr])]
    choices = ["target", "outs", "deps", *scope.matrix]
    if re.fullmatch(r"[A-Za-z_]\w*", expr):
        # A bare name is how a matrix variable is used: say which target lacks it.
        defined = ", ".join(sorted(scope.matrix)) or "none: it has no matrix"
        raise ConfigError(
            f"undefined matrix variable ${{{expr}}} in target {scope.name!r} "
            f"(its matrix variables: {defined})",
            pos=pos,
            hint=did_you_mean(expr, list(scope.matrix))
            or f"add {expr} to matrix:, or use params.{expr} / vars.{expr}",
        )
    raise ConfigError(
        f"undefined reference ${{{expr}}}",
        pos=pos,
        hint=did_you_mean(expr, choices) or "use params.X, vars.X, env.X, outs, deps or target",
    )


def interpolate(text: str, scope: _Scope, pos: SourcePos, *, shell: bool) -> str:
    """Substitute every ``${...}`` in ``text``; shell-quote values when ``shell``.

    With ``shell``, each quoted value must land where the shell reads a plain word (see
    `_shell_context_problem`); anywhere else the command is refused, whatever the value.
    """
    if "${" not in text:
        if shell and "\x00" in text:
            raise ConfigError(
                "the command has a NUL byte: a command line cannot hold one",
                pos=pos,
                hint="check the escapes in the string",
            )
        return text
    if not shell:

        def repl(m: re.Match[str]) -> str:
            if m.group(0) == "$${":
                return "${"
            expr = m.group(1)
            return " ".join(_resolve(expr[4:] if expr.startswith("raw:") else expr, scope, pos))

        return _INTERP.sub(repl, text)
    pieces: list[str] = []
    literals: list[str] = []  # the command's own text, to decide whether to lex at all
    spans: list[tuple[int, int]] = []  # where each quoted value landed in the result
    labels: list[str] = []
    size = 0
    lex = False  # raw text and $${ are shell syntax from elsewhere: always lex
    last = 0
    for m in _INTERP.finditer(text):
        literal = text[last : m.start()]
        last = m.end()
        literals.append(literal)
        if m.group(0) == "$${":
            literal += "${"  # the shell sees ${: a parameter expansion starts here
            lex = True
        pieces.append(literal)
        size += len(literal)
        if m.group(0) == "$${":
            continue
        expr = m.group(1)
        raw = False
        if expr.startswith("raw:"):
            raw, expr = True, expr[4:]
        values = _resolve(expr, scope, pos)
        if any("\x00" in v for v in values):
            raise ConfigError(
                f"{m.group(0)} has a NUL byte in its value: a command line cannot hold one",
                pos=pos,
            )
        if raw:
            piece = " ".join(values)
            lex = True  # raw text is shell text: it may open a quote
        else:
            piece = " ".join(shlex.quote(v) for v in values)
            if piece:  # an empty ${outs} inserts nothing
                spans.append((size, size + len(piece)))
                labels.append(m.group(0))
        pieces.append(piece)
        size += len(piece)
    literals.append(text[last:])
    pieces.append(text[last:])
    result = "".join(pieces)
    if "\x00" in result:
        raise ConfigError(
            "the command has a NUL byte: a command line cannot hold one",
            pos=pos,
            hint="check the escapes in the string",
        )
    # Without quotes, `$`, `#`, `\\`, `<<` or `((` in the command's own text every value is a
    # plain word; the literals are joined so that `<${outs}<` (empty outs) still reads `<<`.
    if spans and (lex or _SH_SPECIAL.search("".join(literals))):
        problem = _shell_context_problem(result, spans)
        if problem is not None:
            index, where = problem
            label = labels[index]
            inner = label[2:-1].strip()
            raise ConfigError(
                f"{label} is {where} in this command: shell quoting cannot stop a value "
                "there from running as a command",
                pos=pos,
                hint=f"put it outside any quotes, where it is quoted for you: "
                f'--name={label} or "text "{label}" text"; {_raw_hint(inner)}',
            )
    return result


def _raw_hint(inner: str) -> str:
    return f"${{raw:{inner}}} pastes it unquoted, at your own risk"


# --------------------------------------------------------------------------- shell contexts
#
# shlex.quote makes a value one literal word *where the shell reads a plain word*. The lexer
# below follows the shell's quoting over a finished command and names every other place a
# quoted value landed. It follows POSIX sh, and bash where shells differ:
#
#   plain:   the script, ( subshell ), $( command ) — also inside "...": $( ) starts afresh
#   refused: "...", '...', `...`, ${...}, $((...)), ((...)), here-document bodies and
#            delimiters, comments, right after \ or $
#
# Where it cannot follow the shell for sure ($'...' quoting, bash's $[...], a quote inside
# "${...}", a `case` inside parentheses, whose `pattern)` closes nothing) every later value
# is refused: it errs on the side of no. bash is the reference where shells differ: it is
# /bin/sh on many systems, and it is the one that evaluates more (((...)), $[...]).

_SH_SPECIAL = re.compile(r"""[\\'"`$#]|<<|\(\(""")
_SH_PLAIN_NEXT = re.compile(r"""[\\'"`$#()<\n{}]|(?<![^\s;&|()<>])case(?![^\s;&|()<>])""")
_SH_DQ_NEXT = re.compile(r"""[\\"`$]""")
_SH_BT_NEXT = re.compile(r"[\\`]")
_SH_WORD_END = frozenset(" \t\n;&|()<>")


class _Sh(Enum):
    """Where the shell is while it reads a command (the lexer's stack)."""

    TOP = "plain"
    SUBSHELL = "in ( )"
    CMDSUB = "in $( )"
    DQUOTE = "inside double quotes"
    BACKTICK = "inside backticks"
    PARAM = "inside a ${...} shell expansion"
    ARITH = "inside $((...)) or ((...)) arithmetic"


_SH_PLAIN = (_Sh.TOP, _Sh.SUBSHELL, _Sh.CMDSUB)


def _shell_context_problem(text: str, spans: list[tuple[int, int]]) -> tuple[int, str] | None:
    """The first span of ``text`` (index into ``spans``) that is not in a plain context,
    with where it is; None when every span is a plain word. Spans are sorted, disjoint,
    and opaque here (each is one shlex-quoted word)."""
    n = len(text)
    starts = {start: (index, end) for index, (start, end) in enumerate(spans)}
    stack: list[_Sh] = [_Sh.TOP]
    depth: list[int] = [0]  # open ( of an ARITH, open { of a PARAM, per stack entry
    heredocs: list[tuple[str, bool]] = []  # pending: delimiter, strip leading tabs (<<-)
    unsure: str | None = None
    nxt_span = 0  # index of the first span not yet passed

    def first_in(lo: int, hi: int) -> int | None:
        for index, (start, _) in enumerate(spans):
            if lo <= start < hi:
                return index
        return None

    def word_start(k: int) -> bool:
        return k == 0 or text[k - 1] in _SH_WORD_END

    i = 0
    while i < n:
        if nxt_span < len(spans) and spans[nxt_span][0] < i:
            # Skipped without being checked: a case this lexer does not know. Refuse.
            return nxt_span, "somewhere mlbuild cannot follow"
        span_at = spans[nxt_span][0] if nxt_span < len(spans) else n
        ctx = stack[-1]
        pattern = (
            _SH_DQ_NEXT
            if ctx is _Sh.DQUOTE
            else _SH_BT_NEXT
            if ctx is _Sh.BACKTICK
            else _SH_PLAIN_NEXT
        )
        found = pattern.search(text, i, span_at)
        if found is None:
            if span_at >= n:
                return None
            index, end = starts[span_at]
            if unsure is not None:
                return index, unsure
            if ctx not in _SH_PLAIN:
                return index, ctx.value
            nxt_span += 1
            i = end
            continue
        i = found.start()
        c = text[i]
        if c == "\\":
            if i + 1 in starts and ctx is not _Sh.BACKTICK and ctx is not _Sh.DQUOTE:
                return starts[i + 1][0], "right after a backslash"
            i += 1 if i + 1 in starts else 2
            continue
        if ctx is _Sh.BACKTICK:
            if c == "`":
                stack.pop()
                depth.pop()
            i += 1
            continue
        if c == "`":
            stack.append(_Sh.BACKTICK)
            depth.append(0)
            i += 1
            continue
        if c == "$":
            if i + 1 in starts:
                return starts[i + 1][0], "right after a $"
            if text.startswith("$((", i):
                stack.append(_Sh.ARITH)
                depth.append(0)
                i += 3
            elif text.startswith("$(", i):
                stack.append(_Sh.CMDSUB)
                depth.append(0)
                i += 2
            elif text.startswith("${", i):
                stack.append(_Sh.PARAM)
                depth.append(0)
                i += 2
            else:
                if text.startswith("$'", i) and ctx is not _Sh.DQUOTE:
                    unsure = "after $'...' quoting, which mlbuild cannot follow"
                elif text.startswith("$[", i):  # bash's old $[ arithmetic ]
                    unsure = "after $[...] arithmetic, which mlbuild cannot follow"
                i += 1
            continue
        if ctx is _Sh.DQUOTE:
            if c == '"':
                stack.pop()
                depth.pop()
            i += 1
            continue
        if c == "'":
            if ctx is _Sh.PARAM and _Sh.DQUOTE in stack:  # "${x:-'...'}": shells differ
                unsure = 'after a quote inside "${...}", which shells read differently'
            close = text.find("'", i + 1)
            close = n if close < 0 else close
            if span_at < n and span_at <= close:  # the quote found may be the span's own
                return nxt_span, "inside single quotes"
            i = close + 1
            continue
        if c == '"':
            stack.append(_Sh.DQUOTE)
            depth.append(0)
            i += 1
            continue
        if ctx is _Sh.PARAM:
            if c == "{":
                depth[-1] += 1
            elif c == "}":
                if depth[-1] == 0:
                    stack.pop()
                    depth.pop()
                else:
                    depth[-1] -= 1
            i += 1
            continue
        if ctx is _Sh.ARITH:
            if c == "(":
                depth[-1] += 1
            elif c == ")":
                if depth[-1] == 0 and text.startswith("))", i):
                    stack.pop()
                    depth.pop()
                    i += 2
                    continue
                depth[-1] = max(0, depth[-1] - 1)
            i += 1
            continue
        # plain: the script, a ( subshell ) or a $( command substitution )
        if c == "#" and word_start(i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            inside = first_in(i, end)
            if inside is not None:
                return inside, "inside a comment"
            i = end
            continue
        if c == "(" and text.startswith("((", i):  # bash's (( arithmetic )), for ((;;))
            stack.append(_Sh.ARITH)
            depth.append(0)
            i += 2
            continue
        if c == "(":
            stack.append(_Sh.SUBSHELL)
            depth.append(0)
        elif c == ")":
            if len(stack) > 1:
                stack.pop()
                depth.pop()
        elif c == "<" and text.startswith("<<", i) and not text.startswith("<<<", i):
            j = i + 2
            strip = text.startswith("-", j)
            j += strip
            while j < n and text[j] in " \t":
                j += 1
            word: list[str] = []
            while j < n and text[j] not in _SH_WORD_END:
                if j in starts or (text[j] == "\\" and j + 1 in starts):
                    return starts[j + (j not in starts)][0], "used as a here-document delimiter"
                if text[j] in "'\"":
                    close = text.find(text[j], j + 1)
                    close = n if close < 0 else close
                    inside = first_in(j + 1, close + 1)
                    if inside is not None:
                        return inside, "used as a here-document delimiter"
                    word.append(text[j + 1 : close])
                    j = close + 1
                elif text[j] == "\\":
                    word.append(text[j + 1 : j + 2])
                    j += 2
                else:
                    word.append(text[j])
                    j += 1
            heredocs.append(("".join(word), strip))
            i = j
            continue
        elif c == "\n" and heredocs:
            # The bodies start on the next line, one after the other.
            j = i + 1
            for delim, strip in heredocs:
                body = j
                while j < n:
                    line_end = text.find("\n", j)
                    line_end = n if line_end < 0 else line_end
                    line = text[j:line_end]
                    j = line_end + 1
                    if (line.lstrip("\t") if strip else line) == delim:
                        inside = first_in(body, line_end)
                        break
                else:
                    inside = first_in(body, n)
                if inside is not None:
                    return inside, "inside a here-document"
            heredocs.clear()
            i = j
            continue
        elif c == "c" and (_Sh.SUBSHELL in stack or _Sh.CMDSUB in stack):
            unsure = "after a `case` inside ( ) or $( ), which mlbuild cannot follow"
        i += 1
    return None


# --------------------------------------------------------------------------- the loader


class _Loader:
    """Turns the composed document into a validated `Pipeline` (one instance per load)."""

    def __init__(self, config_path: str) -> None:
        self.config_path = os.path.abspath(config_path)
        self.root = os.path.dirname(self.config_path)
        self.rel = os.path.basename(self.config_path)
        self._inside: dict[str, str | None] = {}
        self.reserved: dict[str, str] = {}  # file -> what it is (config, lock, params, keys)
        self.reserved_dirs: set[str] = set()  # every directory holding one of them
        self.outs_of: dict[str, list[str]] = {}
        self.executor_mode = "shared"
        self.params: dict[str, Any] = {}
        self.inline_params = False  # params: is a mapping in this file, not file names
        self.param_sources: list[tuple[str, Mapping[str, Any]]] = []  # (file, its values)
        self.matrix_sources: dict[str, dict[str, str]] = {}  # template -> var -> params key
        try:
            with open(self.config_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise ConfigError(f"{config_path} does not exist") from None
        except IsADirectoryError:
            raise ConfigError(
                f"{config_path} is a directory", hint="pass the YAML file itself with -f"
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"{config_path} cannot be read: {exc.strerror or exc}",
                hint="check its permissions",
            ) from None
        text = _decode(data, self.rel)
        self.doc = _Doc(self.rel, text, os.path.join(self.root, STATE_DIR, "cache"))

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

    def reserved_files(
        self, param_files: list[str], signing_key: str | None, trusted: list[str]
    ) -> dict[str, str]:
        """Files no target may write, with what each is: what mlbuild reads to decide."""
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
        return found

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
            folded = path.casefold()
            if ".git" in folded or STATE_DIR in folded:
                for part in folded.split("/"):
                    if part in (STATE_DIR, ".git"):
                        owner = "mlbuild's own state" if part == STATE_DIR else "the git repository"
                        raise ConfigError(
                            f"{what} {rel!r} is reserved: it is or lies inside {part}/, "
                            f"{owner}{via}",
                            pos=pos,
                            hint="write outs elsewhere in the workspace",
                        )
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

    # -- small typed accessors; each failure names the exact position -----------------
    def fail(self, message: str, path: tuple[Any, ...], hint: str | None = None) -> ConfigError:
        return ConfigError(message, pos=self.doc.at(path), hint=hint)

    def expect(
        self, value: Any, types: type | tuple[type, ...], path: tuple[Any, ...], what: str
    ) -> Any:
        if isinstance(value, bool) and bool not in (
            types if isinstance(types, tuple) else (types,)
        ):
            raise self.fail(f"{what} must be {self._type_name(types)}, not a boolean", path)
        if not isinstance(value, types):
            raise self.fail(
                f"{what} must be {self._type_name(types)}, not {type(value).__name__}", path
            )
        return value

    @staticmethod
    def _type_name(types: type | tuple[type, ...]) -> str:
        names = {
            str: "a string",
            list: "a list",
            dict: "a mapping",
            int: "an integer",
            bool: "true or false",
        }
        ts = types if isinstance(types, tuple) else (types,)
        return " or ".join(names.get(t, t.__name__) for t in ts)

    def str_list(self, value: Any, path: tuple[Any, ...], what: str) -> list[str]:
        if isinstance(value, str):
            return [value]
        self.expect(value, list, path, what)
        for i, item in enumerate(value):
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                value[i] = str(item)
            else:
                self.expect(item, str, path + (i,), f"each entry of {what}")
        return list(value)

    def check_keys(
        self, mapping: dict[str, Any], allowed: tuple[str, ...], path: tuple[Any, ...], where: str
    ) -> None:
        for key in mapping:
            if key in allowed:
                continue
            raise ConfigError(
                f"unknown key {key!r} in {where}",
                pos=self.doc.key_at(path + (key,)),
                hint=did_you_mean(key, allowed) or f"allowed: {', '.join(allowed)}",
            )

    # -- the whole file ----------------------------------------------------------------
    def load(self) -> Pipeline:
        top = self.doc.value
        if not isinstance(top, dict):
            raise self.fail(f"{self.rel} must hold a mapping with a 'targets' key", ())
        self.check_keys(top, TOP_KEYS, (), "the top level")
        version = top.get("version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise self.fail(
                f"unsupported version {version!r}: this mlbuild reads version {SCHEMA_VERSION}",
                ("version",),
            )
        params, param_files = self.load_params(top)
        self.params = params
        strict_inputs = self.expect(
            top.get("strict_inputs", False), bool, ("strict_inputs",), "strict_inputs"
        )
        vars_ = self.expect(top.get("vars", {}) or {}, dict, ("vars",), "vars")
        for key, value in vars_.items():
            if isinstance(value, (dict, list)):
                raise self.fail(f"vars.{key} must be a plain value", ("vars", key))
        env, secrets = self.load_env(top.get("env"), ("env",))
        packages = self.str_list(top.get("packages", []) or [], ("packages",), "packages")
        executor, executor_address, jobs = self.load_executor(top.get("executor"))
        signing_key = None
        signing = top.get("signing")
        if signing is not None:
            self.expect(signing, dict, ("signing",), "signing")
            self.check_keys(signing, ("key",), ("signing",), "signing")
            raw_key = self.expect(signing.get("key"), str, ("signing", "key"), "signing.key")
            signing_key = normalize_path(
                self.root, raw_key, self.doc.at(("signing", "key")), "signing key"
            )
        trusted = [
            normalize_path(self.root, raw, self.doc.at(("trusted_keys", i)), "trusted key")
            for i, raw in enumerate(
                self.str_list(top.get("trusted_keys", []) or [], ("trusted_keys",), "trusted_keys")
            )
        ]
        self.reserved = self.reserved_files(param_files, signing_key, trusted)
        self.reserved_dirs = {f[:i] for f in self.reserved for i, c in enumerate(f) if c == "/"}
        raw_targets = top.get("targets")
        if raw_targets is None:
            raise self.fail("missing required key 'targets'", ())
        self.expect(raw_targets, dict, ("targets",), "targets")

        # Expand matrices first, so that dep resolution sees every concrete target.
        expanded: list[tuple[str, tuple[Any, ...], dict[str, Any], dict[str, Any]]] = []
        seen: dict[str, tuple[Any, ...]] = {}
        for name, body in raw_targets.items():
            path = ("targets", name)
            if body is None:
                body = {}
            self.expect(body, dict, path, f"target {name!r}")
            self.check_keys(body, TARGET_KEYS, path, f"target {name!r}")
            for combo in self.matrix_combos(name, body, path):
                concrete = name
                for var, value in combo.items():
                    concrete = concrete.replace("{" + var + "}", _render_value(value))
                if "{" in concrete or "}" in concrete:
                    raise ConfigError(
                        f"target name {name!r} has a placeholder that no matrix variable fills",
                        pos=self.doc.key_at(path),
                    )
                problem = _name_problem(concrete)
                if problem is not None:
                    message, hint = problem
                    raise ConfigError(
                        f"invalid target name {concrete!r}: {message}",
                        pos=self.doc.key_at(path),
                        hint=hint,
                    )
                if concrete in seen:
                    raise ConfigError(f"duplicate target {concrete!r}", pos=self.doc.key_at(path))
                seen[concrete] = path
                expanded.append((concrete, path, body, combo))
        names = [e[0] for e in expanded]

        # Outs of every target first: deps on a produced path resolve to its producer.
        outs_of: dict[str, list[str]] = {}
        metrics_of: dict[str, list[str]] = {}
        self.outs_of = outs_of
        out_owner: dict[str, str] = {}
        scopes: dict[str, _Scope] = {}
        for name, path, body, combo in expanded:
            t_env, t_secrets = dict(env), dict(secrets)
            own_env, own_secrets = self.load_env(body.get("env"), path + ("env",))
            for key, value in own_env.items():
                t_env[key] = value
                t_secrets.pop(key, None)
            for key, source in own_secrets.items():
                t_secrets[key] = source
                t_env.pop(key, None)
            scope = _Scope(
                name=name,
                params=params,
                vars=vars_,
                env=t_env,
                matrix=combo,
                secrets=t_secrets,
                matrix_reads=self.matrix_reads(path[1], combo),
            )
            scopes[name] = scope
            outs: list[str] = []
            for i, raw in enumerate(
                self.str_list(body.get("outs", []) or [], path + ("outs",), "outs")
            ):
                pos = self.doc.at(path + ("outs", i))
                rel = normalize_path(
                    self.root, interpolate(raw, scope, pos, shell=False), pos, "out"
                )
                full = os.path.join(self.root, rel)
                if not self.parent_inside(rel) or (
                    os.path.islink(full) and not check_inside(self.root, rel)
                ):
                    raise ConfigError(
                        f"out {raw!r} is outside the workspace (through a symlink)", pos=pos
                    )
                self.check_reserved(rel, pos, "out")
                if rel in outs:
                    raise ConfigError(f"out {rel!r} is listed twice", pos=pos)
                outs.append(rel)
            # Metrics files are outs too (cached, restored, promoted); listed after the rest.
            metrics: list[str] = []
            for i, raw in enumerate(
                self.str_list(body.get("metrics", []) or [], path + ("metrics",), "metrics")
            ):
                pos = self.doc.at(path + ("metrics", i))
                rel = normalize_path(
                    self.root, interpolate(raw, scope, pos, shell=False), pos, "metrics file"
                )
                if not rel.lower().endswith((".json", ".yaml", ".yml")):
                    raise ConfigError(f"metrics file {rel!r} must be .json, .yaml or .yml", pos=pos)
                if not self.parent_inside(rel):
                    raise ConfigError(f"metrics file {raw!r} is outside the workspace", pos=pos)
                self.check_reserved(rel, pos, "metrics file")
                if rel in metrics:
                    raise ConfigError(f"metrics file {rel!r} is listed twice", pos=pos)
                metrics.append(rel)
                if rel not in outs:
                    outs.append(rel)
            metrics_of[name] = metrics
            outs_of[name] = outs
        self.check_overlaps(expanded, outs_of, out_owner)

        targets: dict[str, TargetSpec] = {}
        for name, path, body, _ in expanded:
            targets[name] = self.load_target(
                name, path, body, scopes[name], names, outs_of, out_owner, packages, strict_inputs
            )
            targets[name] = self.load_ml(targets[name], path, body, names, metrics_of)
        default = self.load_default(top.get("default"), names)
        remote = top.get("remote")
        if remote is not None:
            self.expect(remote, str, ("remote",), "remote")
            if not remote.strip():
                raise self.fail("remote must be an fsspec URL, not empty", ("remote",))
        remote_options = self.expect(
            top.get("remote_options", {}) or {}, dict, ("remote_options",), "remote_options"
        )
        remote_write = self.expect(
            top.get("remote_write", False), bool, ("remote_write",), "remote_write"
        )
        return Pipeline(
            root=self.root,
            config_path=self.config_path,
            targets=targets,
            default=default,
            jobs=jobs,
            param_files=tuple(param_files),
            out_owner=out_owner,
            signing_key=signing_key,
            trusted_keys=tuple(trusted),
            remote=remote,
            remote_options=remote_options,
            remote_write=remote_write,
            executor=executor,
            executor_address=executor_address,
            executor_mode=self.executor_mode,
        )

    def matrix_combos(
        self, name: str, body: dict[str, Any], path: tuple[Any, ...]
    ) -> list[dict[str, Any]]:
        matrix = body.get("matrix")
        if matrix is None:
            if "{" in name:
                raise ConfigError(
                    f"target name {name!r} has a placeholder but no matrix",
                    pos=self.doc.key_at(path),
                )
            return [{}]
        self.expect(matrix, dict, path + ("matrix",), "matrix")
        if not matrix:
            raise self.fail("matrix is empty", path + ("matrix",))
        extra = {k: matrix[k] for k in ("include", "exclude") if k in matrix}
        axes: list[tuple[str, list[Any]]] = []
        for var, values in matrix.items():
            if var in extra:
                continue
            vpath = path + ("matrix", var)
            if isinstance(values, str):
                key, values = self.matrix_from_params(var, values, vpath)
                self.matrix_sources.setdefault(name, {})[var] = key
            self.expect(values, list, vpath, f"matrix.{var}")
            if not values:
                raise self.fail(f"matrix.{var} is empty", vpath)
            for i, value in enumerate(values):
                if isinstance(value, (dict, list)) or value is None:
                    raise self.fail(f"matrix.{var} values must be plain values", vpath + (i,))
            if "{" + var + "}" not in name:
                raise self.fail(
                    f"matrix variable {var!r} does not appear in the target name {name!r}",
                    vpath,
                    hint=f"name the target like '{name}-{{{var}}}'",
                )
            axes.append((var, values))
        combos = [
            dict(zip([a for a, _ in axes], combo, strict=True))
            for combo in itertools.product(*[v for _, v in axes])
        ]
        return self.matrix_extra(name, combos, extra, path + ("matrix",))

    def matrix_from_params(
        self, var: str, text: str, path: tuple[Any, ...]
    ) -> tuple[str, list[Any]]:
        """``(key, values)`` of ``matrix: {var: "${params.KEY}"}``: the list at KEY in the
        params (the Snakemake tutorial's sample list), checked as a written list is: it must
        exist, be a list, not be empty, and hold plain values, each once."""
        m = _MATRIX_SOURCE.match(text)
        if m is None or m.group(1) == "vars":
            raise self.fail(
                f"matrix.{var} must be a list, or the whole string \"${{params.KEY}}\" naming "
                f"a list in the params, not {text!r}",
                path,
                hint="vars hold plain values, not lists: put the list in a params file"
                if m is not None
                else "write [a, b] or \"${params.samples}\"",
            )
        key = m.group(2)
        value = _lookup(self.params, key) if key else _MISSING
        if value is _MISSING:
            files = ", ".join(f for f, _ in self.param_sources) or (
                f"the params: mapping of {self.rel}" if self.inline_params else "no params file"
            )
            raise self.fail(
                f"matrix.{var}: params key {key!r} is not defined ({files})",
                path,
                hint=did_you_mean(key, _flat_keys(self.params))
                or f"add `{key}: [a, b]` to the params",
            )
        where = f"params key {key!r} in {self.param_origin(key)}"
        if not isinstance(value, list):
            raise self.fail(
                f"matrix.{var}: {where} is {_kind(value)}, not a list",
                path,
                hint=f"write it as a list: {key.rsplit('.', 1)[-1]}: [a, b]",
            )
        if not value:
            raise self.fail(
                f"matrix.{var}: {where} is an empty list, so the matrix makes no target",
                path,
                hint="add a value to the list, or remove the target",
            )
        seen: set[tuple[type, Any]] = set()
        for i, item in enumerate(value):
            if isinstance(item, (dict, list)) or item is None:
                raise self.fail(
                    f"matrix.{var}: {where} holds {_kind(item)} at index {i}: matrix values "
                    "must be plain values (strings, numbers, booleans)",
                    path,
                )
            if (type(item), item) in seen:
                raise self.fail(
                    f"matrix.{var}: {where} lists {item!r} twice",
                    path,
                    hint="each value makes one target: list it once",
                )
            seen.add((type(item), item))
        return key, list(value)

    def param_origin(self, key: str) -> str:
        """The params file whose value of ``key`` won the merge (the last that has it)."""
        for source, values in self.param_sources[::-1]:
            if _lookup(values, key) is not _MISSING:
                return source
        return f"the params: mapping of {self.rel}"

    def matrix_reads(self, template: str, combo: Mapping[str, Any]) -> dict[str, Any]:
        """The params a target made from a params list reads through its matrix: under the
        list's key, the target's own value (not the whole list).

        So adding a sample makes one new target and leaves the others fresh (as Snakemake
        does); a value leaving the list takes its target away; and the key still names the
        list, so `show`, the manifest and `params diff` tell where the value came from. A
        target that reads the whole list (``${params.samples}`` in its command, or
        ``params: [samples]``) records the whole list and rebuilds on any change of it. Two
        variables over one list read the whole list (when in doubt, rebuild); a value that
        only an ``include:`` entry added does not come from the list and reads nothing."""
        reads: dict[str, Any] = {}
        by_key: dict[str, list[str]] = {}
        for var, key in self.matrix_sources.get(template, {}).items():
            by_key.setdefault(key, []).append(var)
        for key, variables in by_key.items():
            listed = _lookup(self.params, key)
            if len(variables) > 1:
                reads[key] = listed
                continue
            value = combo.get(variables[0], _MISSING)
            if any(type(item) is type(value) and item == value for item in listed):
                reads[key] = value
        return reads

    def matrix_extra(
        self,
        name: str,
        combos: list[dict[str, Any]],
        extra: dict[str, Any],
        path: tuple[Any, ...],
    ) -> list[dict[str, Any]]:
        """``exclude:`` drops every combination matching an entry on all its keys;
        ``include:`` adds a combination, or, when it matches existing ones on all their
        axes, extends them with its extra variables (the CI-matrix meaning)."""
        axes = set(combos[0]) if combos else set()
        for what in ("exclude", "include"):
            entries = extra.get(what)
            if entries is None:
                continue
            self.expect(entries, list, path + (what,), f"matrix.{what}")
            for i, entry in enumerate(entries):
                epath = path + (what, i)
                self.expect(entry, dict, epath, f"each entry of matrix.{what}")
                if not entry:
                    raise self.fail(f"an entry of matrix.{what} is empty", epath)
                for var, value in entry.items():
                    if isinstance(value, (dict, list)) or value is None:
                        raise self.fail(f"matrix.{what} values must be plain values", epath)
                    if what == "exclude" and var not in axes:
                        raise self.fail(
                            f"matrix.exclude names {var!r}, which is not a matrix variable",
                            epath + (var,),
                            hint=did_you_mean(var, sorted(axes)),
                        )
                if what == "exclude":
                    combos = [c for c in combos if any(c.get(k) != v for k, v in entry.items())]
                    continue
                on_axes = {k: v for k, v in entry.items() if k in axes}
                matching = [
                    c for c in combos if on_axes and all(c[k] == v for k, v in on_axes.items())
                ]
                if matching:
                    for c in matching:
                        c.update(entry)
                    continue
                missing = sorted(v for v in axes if v not in entry)
                if missing:
                    raise self.fail(
                        f"matrix.include entry matches no combination and lacks "
                        f"{', '.join(missing)}",
                        epath,
                    )
                combos.append(dict(entry))
        if not combos:
            raise self.fail(f"matrix of {name!r} is empty after exclude", path)
        return combos

    def load_params(self, top: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        spec = top.get("params")
        params: dict[str, Any] = {}
        files: list[str] = []
        if spec is None:
            if os.path.isfile(os.path.join(self.root, "params.yaml")):
                files = ["params.yaml"]
        elif isinstance(spec, dict):
            self.inline_params = True
            return spec, []
        else:
            files = self.str_list(spec, ("params",), "params")
        for i, rel in enumerate(files):
            pos = self.doc.at(("params", i) if isinstance(spec, list) else ("params",))
            rel = normalize_path(self.root, rel, pos, "params file")
            values = _load_params_file(self.root, rel, pos)
            self.param_sources.append((rel, values))
            _merge(params, values)
        return params, files

    def load_env(self, raw: Any, path: tuple[Any, ...]) -> tuple[dict[str, str], dict[str, str]]:
        """``(plain, secrets)``: plain values, and secret names → the caller's variable.

        ``NAME: value`` is a plain value (part of the key, in manifests). A secret is
        ``NAME: {from: VAR, secret: true}``: its value comes from the caller's $VAR when a
        command runs and is never written anywhere (see docs/provenance.md)."""
        if raw is None:
            return {}, {}
        self.expect(raw, dict, path, "env")
        env: dict[str, str] = {}
        secrets: dict[str, str] = {}
        for key, value in raw.items():
            if not _ENV_NAME.match(key):
                raise ConfigError(
                    f"invalid env variable name {key!r}", pos=self.doc.key_at(path + (key,))
                )
            if isinstance(value, dict):
                self.check_keys(value, ("from", "secret"), path + (key,), f"env.{key}")
                source = value.get("from")
                if not isinstance(source, str) or not _ENV_NAME.match(source):
                    raise self.fail(
                        f"env.{key}.from must name an environment variable", path + (key,)
                    )
                if value.get("secret") is not True:
                    raise self.fail(
                        f"env.{key}: a value taken from the environment must be marked "
                        "secret: true (a plain value is written in the file)",
                        path + (key,),
                    )
                secrets[key] = source
                continue
            if isinstance(value, list) or value is None:
                raise self.fail(f"env.{key} must be a string", path + (key,))
            env[key] = _render_value(value)
            if "\x00" in env[key]:
                raise self.fail(
                    f"env.{key} has a NUL byte: an environment value cannot hold one",
                    path + (key,),
                )
        return env, secrets

    def load_executor(self, raw: Any) -> tuple[str, str | None, int | None]:
        """``executor: {type: local|dask, address: ADDR, jobs: auto|N}`` → (type, address,
        jobs); None jobs: the CPU count (local) or the cluster's threads (dask)."""
        if raw is None:
            return "local", None, None
        path = ("executor",)
        self.expect(raw, dict, path, "executor")
        self.check_keys(raw, ("type", "jobs", "address", "mode"), path, "executor")
        mode = raw.get("mode", "shared")
        if mode not in ("shared", "remote"):
            raise self.fail(
                "executor.mode must be 'shared' (workers see the workspace) or 'remote' "
                "(inputs and outs move through the remote cache)",
                path + ("mode",),
            )
        if "mode" in raw and raw.get("type") != "dask":
            raise self.fail("executor.mode goes with type: dask", path + ("mode",))
        self.executor_mode = mode
        kind = raw.get("type", "local")
        if kind not in ("local", "dask"):
            raise self.fail(
                f"executor type {kind!r} is unknown",
                path + ("type",),
                hint=did_you_mean(str(kind), ["local", "dask"]) or "use local or dask",
            )
        address = raw.get("address")
        if address is not None:
            self.expect(address, str, path + ("address",), "executor.address")
            if kind != "dask":
                raise self.fail("executor.address goes with type: dask", path + ("address",))
        jobs = raw.get("jobs", "auto")
        if jobs == "auto":
            return kind, address, None
        if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
            raise self.fail("executor.jobs must be a positive integer or 'auto'", path + ("jobs",))
        return kind, address, jobs

    def check_overlaps(
        self,
        expanded: list[tuple[str, tuple[Any, ...], dict[str, Any], dict[str, Any]]],
        outs_of: dict[str, list[str]],
        out_owner: dict[str, str],
    ) -> None:
        where = {name: path for name, path, _, _ in expanded}
        for name, outs in outs_of.items():
            for i, rel in enumerate(outs):
                if rel in out_owner:
                    raise ConfigError(
                        f"out {rel!r} is also declared by target {out_owner[rel]!r}",
                        pos=self.doc.at(where[name] + ("outs", i)),
                    )
                out_owner[rel] = name
        # An out inside another out (data/x inside data/) would make ownership ambiguous.
        for rel, owner in out_owner.items():
            parent = posixpath.dirname(rel)
            while parent:
                other = out_owner.get(parent)
                if other is not None and other != owner:
                    raise ConfigError(
                        f"out {rel!r} of {owner!r} lies inside out {parent!r} of {other!r}",
                        pos=self.doc.at(where[owner] + ("outs",)),
                    )
                if other is not None:
                    raise ConfigError(
                        f"out {rel!r} lies inside another out {parent!r} of the same target",
                        pos=self.doc.at(where[owner] + ("outs",)),
                    )
                parent = posixpath.dirname(parent)

    def owner(self, out_owner: dict[str, str], rel: str) -> str | None:
        probe = rel
        while probe:
            if probe in out_owner:
                return out_owner[probe]
            probe = posixpath.dirname(probe)
        return None

    def load_target(
        self,
        name: str,
        path: tuple[Any, ...],
        body: dict[str, Any],
        scope: _Scope,
        names: list[str],
        outs_of: dict[str, list[str]],
        out_owner: dict[str, str],
        top_packages: list[str],
        top_strict_inputs: bool,
    ) -> TargetSpec:
        # deps
        deps: list[DepSpec] = []
        dep_paths: list[str] = []
        for i, raw in enumerate(
            self.str_list(body.get("deps", []) or [], path + ("deps",), "deps")
        ):
            pos = self.doc.at(path + ("deps", i))
            text = interpolate(raw, scope, pos, shell=False)
            if text in outs_of:
                if text == name:
                    raise ConfigError(f"target {name!r} depends on itself", pos=pos)
                deps.append(DepSpec(DepKind.TARGET, text))
                dep_paths.extend(outs_of[text])
                continue
            if ":" in text and not os.path.exists(os.path.join(self.root, text)):
                raise ConfigError(
                    f"unknown target {text!r} in deps of {name!r}",
                    pos=pos,
                    hint=did_you_mean(text, names),
                )
            rel = normalize_path(self.root, text, pos, "dep")
            if GLOB_CHARS.search(rel):
                # Outs of other targets that the glob matches make those targets deps (even
                # before the outs exist); source files on disk are tracked by content.
                regex = _glob_regex(rel)
                produced = {
                    o for o, owner in out_owner.items() if owner != name and regex.fullmatch(o)
                }
                # A glob reaching into another target's directory out (shards/*.csv, with
                # shards/ an out) depends on it even before the directory exists.
                first_wild = GLOB_CHARS.search(rel)
                fixed = posixpath.dirname(rel[: first_wild.start()]) if first_wild else ""
                container = self.owner(out_owner, fixed) if fixed else None
                if container is not None and container != name:
                    produced.add(fixed)
                sources: list[str] = []
                for found in globmod.glob(rel, root_dir=self.root, recursive=True):
                    found = found.replace(os.sep, "/")
                    if not os.path.isfile(os.path.join(self.root, found)):
                        continue
                    owner = self.owner(out_owner, found)
                    if owner is None:
                        sources.append(found)
                    elif owner != name:
                        produced.add(found)
                producers = {self.owner(out_owner, o) for o in produced}
                for upstream in sorted(p for p in producers if p is not None):
                    deps.append(DepSpec(DepKind.TARGET, upstream))
                deps.append(DepSpec(DepKind.GLOB, rel, tuple(sorted(sources))))
                dep_paths.extend(sorted(produced | set(sources)))
                continue
            producer = self.owner(out_owner, rel)
            if producer is not None:
                if producer == name:
                    raise ConfigError(f"dep {rel!r} is an out of {name!r} itself", pos=pos)
                deps.append(DepSpec(DepKind.TARGET, producer))
                dep_paths.append(rel)
                continue
            if not os.path.exists(os.path.join(self.root, rel)):
                raise ConfigError(
                    f"dep {rel!r} of {name!r} does not exist and no target produces it",
                    pos=pos,
                    hint=did_you_mean(rel, [*names, *sorted(out_owner)]),
                )
            deps.append(DepSpec(DepKind.PATH, rel))
            dep_paths.append(rel)
        # params: declared keys (must exist), plus ones used by ${params.*} below
        declared: dict[str, Any] = {}
        for i, raw_key in enumerate(
            self.str_list(body.get("params", []) or [], path + ("params",), "params")
        ):
            key = interpolate(raw_key, scope, self.doc.at(path + ("params", i)), shell=False)
            value = _lookup(scope.params, key)
            if value is _MISSING:
                raise self.fail(
                    f"param {key!r} of {name!r} is not defined in the params",
                    path + ("params", i),
                    hint=did_you_mean(key, _flat_keys(scope.params)),
                )
            declared[key] = value
        # command or callable
        cmd_raw = body.get("cmd")
        python = body.get("python")
        if cmd_raw is not None and python is not None:
            raise self.fail(
                f"target {name!r} has both 'cmd' and 'python': choose one", path + ("python",)
            )
        cmd: tuple[str, ...] | None = None
        scope.outs = outs_of[name]
        scope.deps = dep_paths
        if cmd_raw is not None:
            cmds = self.str_list(cmd_raw, path + ("cmd",), "cmd")
            if not cmds or any(not c.strip() for c in cmds):
                raise self.fail("cmd must not be empty", path + ("cmd",))
            cmd = tuple(
                interpolate(
                    c,
                    scope,
                    self.doc.at(
                        path + ("cmd", i) if isinstance(cmd_raw, list) else path + ("cmd",)
                    ),
                    shell=True,
                )
                for i, c in enumerate(cmds)
            )
        if python is not None:
            self.expect(python, str, path + ("python",), "python")
            if not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", python):
                raise self.fail(
                    f"python must be 'module:function', not {python!r}", path + ("python",)
                )
            self.check_module(python, path + ("python",))
        declared.update(scope.used_params)
        for key, value in scope.matrix_reads.items():
            declared.setdefault(key, value)  # a read of the whole list wins: it is wider
        # resources, flags
        resources: dict[str, int] = {}
        raw_res = body.get("resources") or {}
        self.expect(raw_res, dict, path + ("resources",), "resources")
        for key, value in raw_res.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise self.fail(
                    f"resources.{key} must be a non-negative integer", path + ("resources", key)
                )
            resources[key] = value
        always = self.expect(body.get("always", False), bool, path + ("always",), "always")
        retries = body.get("retries", 0)
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise self.fail("retries must be a non-negative integer", path + ("retries",))
        desc = self.expect(body.get("desc", "") or "", str, path + ("desc",), "desc")
        strict_inputs = self.expect(
            body.get("strict_inputs", top_strict_inputs),
            bool,
            path + ("strict_inputs",),
            "strict_inputs",
        )
        packages = sorted(
            set(top_packages)
            | set(self.str_list(body.get("packages", []) or [], path + ("packages",), "packages"))
        )
        return TargetSpec(
            name=name,
            cmd=cmd,
            python=python,
            deps=tuple(deps),
            dep_paths=tuple(dep_paths),
            outs=tuple(outs_of[name]),
            params=declared,
            env=scope.env,
            secrets=scope.secrets,
            packages=tuple(packages),
            resources=resources,
            matrix=scope.matrix,
            always=always,
            retries=retries,
            desc=desc,
            pos=self.doc.key_at(path),
            strict_inputs=strict_inputs,
        )

    def load_ml(
        self,
        spec: TargetSpec,
        path: tuple[Any, ...],
        body: dict[str, Any],
        names: list[str],
        metrics_of: dict[str, list[str]],
    ) -> TargetSpec:
        """Metrics, checks, gates and promotion of one target (see mlspec.py)."""
        metrics = tuple(metrics_of[spec.name])
        try:
            checks = parse_checks(body.get("checks"), spec.outs)
            gates = parse_gates(body.get("gate"))
            promote = None
            if "promote" in body:
                try:
                    promote = parse_promote(body["promote"], spec.name, names)
                except SpecError as exc:
                    raise SpecError(
                        exc.message, ("promote", *exc.path), exc.hint, at_key=exc.at_key
                    ) from None
        except SpecError as exc:
            where = path + exc.path
            pos = self.doc.key_at(where) if exc.at_key else self.doc.at(where)
            raise ConfigError(exc.message, pos=pos, hint=exc.hint) from None
        for i, check in enumerate(checks):
            if check.check == "python":
                self.check_module(check.options["python"], path + ("checks", i, "python"))
        deps, dep_paths = list(spec.deps), list(spec.dep_paths)
        if promote is not None:
            if spec.cmd is not None or spec.python is not None:
                raise self.fail(
                    f"target {spec.name!r} has 'promote' and a command: a promoted target "
                    "copies its winner's outs and runs nothing",
                    path + ("promote",),
                )
            plain = [o for o in spec.outs if o not in metrics]
            for cand in promote.candidates:
                if not metrics_of[cand]:
                    raise self.fail(
                        f"promote candidate {cand!r} declares no metrics to rank it by",
                        path + ("promote", "from"),
                    )
                cand_plain = [o for o in self.outs_of[cand] if o not in metrics_of[cand]]
                if len(cand_plain) != len(plain) or (
                    metrics and len(metrics_of[cand]) != len(metrics)
                ):
                    raise self.fail(
                        f"{spec.name!r} has {len(plain)} out(s) and {len(metrics)} metrics "
                        f"file(s), but candidate {cand!r} has {len(cand_plain)} and "
                        f"{len(metrics_of[cand])}: a promoted target mirrors its candidates",
                        path + ("outs",),
                    )
                if cand not in spec.dep_targets:
                    deps.append(DepSpec(DepKind.TARGET, cand))
                    dep_paths.extend(self.outs_of[cand])
        if gates and not metrics and promote is None:
            raise self.fail(
                f"target {spec.name!r} has a gate but no metrics to check it against",
                path + ("gate",),
                hint="add `metrics: [FILE]`, or make it a promote: target",
            )
        return dataclasses.replace(
            spec,
            deps=tuple(deps),
            dep_paths=tuple(dep_paths),
            metrics=metrics,
            checks=checks,
            gates=gates,
            promote=promote,
            template=str(path[1]) if spec.matrix else "",
        )

    def check_module(self, callable_spec: str, path: tuple[Any, ...]) -> None:
        """A ``module:function``'s module must exist in the workspace or be installed, so
        that a typo is a config error before anything runs, not a failure after the
        command. Nothing is imported: a file lookup, or find_spec of the top package."""
        module = callable_spec.split(":", 1)[0]
        rel = module.replace(".", "/")
        for candidate in (rel + ".py", rel + "/__init__.py"):
            if os.path.isfile(os.path.join(self.root, candidate)):
                return
        top = module.split(".", 1)[0]
        if os.path.isdir(os.path.join(self.root, top)):
            return  # a namespace package in the workspace: leave it to the import
        import importlib.util

        try:
            found = importlib.util.find_spec(top) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise self.fail(
                f"module {module!r} of {callable_spec!r} is neither in the workspace "
                f"({rel}.py) nor installed",
                path,
            )

    def load_default(self, raw: Any, names: list[str]) -> tuple[str, ...]:
        if raw is None:
            return ()
        items = self.str_list(raw, ("default",), "default")
        for i, item in enumerate(items):
            if item not in names and not any(ch in item for ch in "*?[") and not item.endswith(":"):
                raise self.fail(
                    f"default names unknown target {item!r}",
                    ("default", i),
                    hint=did_you_mean(item, names),
                )
        return tuple(items)


def load_pipeline(config_path: str) -> Pipeline:
    """Read, validate and interpolate ``config_path``; raises ConfigError on any problem."""
    return _Loader(config_path).load()
