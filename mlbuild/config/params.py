"""Params: the files (YAML, JSON, TOML) or inline mapping behind ``${params.X}``.

Files are merged in order, later keys over earlier ones, mappings merged key by key. A
dotted key (``train.lr``, ``samples.0``) walks mappings and lists (`lookup`).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .. import observe
from ..errors import ConfigError, SourcePos, UsageError
from ..store.layout import Layout
from ..suggest import did_you_mean
from .access import Reader
from .paths import normalize_path
from .yaml import Doc, decode_utf8

__all__ = [
    "MISSING",
    "Params",
    "flat_keys",
    "kind_of",
    "lookup",
    "override_text",
    "overrides_read",
    "parse_overrides",
    "parse_params",
    "render_value",
]

MISSING = object()  # what `lookup` returns for a key that is not there


class Params:
    """The merged params of one config, and which file each value came from."""

    def __init__(self, config_rel: str) -> None:
        self.rel = config_rel
        self.values: dict[str, Any] = {}
        self.files: list[str] = []  # as written in the config (params.yaml when implied)
        self.inline = False  # params: is a mapping in this file, not file names
        self.sources: list[tuple[str, Mapping[str, Any]]] = []  # (file, its values)
        self.overrides: dict[str, Any] = {}  # --set KEY=VALUE of this build (`overlay`)

    def load(self, reader: Reader, root: str, top: dict[str, Any]) -> None:
        """Read ``params:`` of the top level (file names, a mapping, or params.yaml if
        absent and present on disk)."""
        spec = top.get("params")
        files: list[str] = []
        if spec is None:
            if observe.isfile(os.path.join(root, "params.yaml")):
                files = ["params.yaml"]
        elif isinstance(spec, dict):
            self.inline = True
            self.values = spec
            return
        else:
            files = reader.str_list(spec, ("params",), "params")
        for i, rel in enumerate(files):
            pos = reader.doc.at(("params", i) if isinstance(spec, list) else ("params",))
            rel = normalize_path(root, rel, pos, "params file")
            values = _load_params_file(root, rel, pos)
            self.sources.append((rel, values))
            _merge(self.values, values)
        self.files = files

    def overlay(self, overrides: Mapping[str, Any]) -> None:
        """Apply ``--set`` values over the merged params (never over a file): each key must
        name a value that is there and is not a mapping or list, so an override replaces one
        value the file has, as a typo or a whole subtree never can silently."""
        if not overrides:
            return
        self.values = copy.deepcopy(self.values)  # the files' trees stay as read
        for key, value in overrides.items():
            current = lookup(self.values, key)
            if current is MISSING:
                raise UsageError(
                    f"--set: unknown param {key!r} (not in {self.described()})",
                    hint=did_you_mean(key, _leaf_keys(self.values)),
                )
            if isinstance(current, (Mapping, list)):
                kind = "a mapping" if isinstance(current, Mapping) else "a list"
                inner = _leaf_keys({key: current})[:3]
                raise UsageError(
                    f"--set: param {key!r} is {kind}; --set replaces one value",
                    hint=f"set one of its values: {', '.join(inner)}",
                )
            _assign(self.values, key, value)
        self.overrides = dict(overrides)

    def origin(self, key: str) -> str:
        """The params file whose value of ``key`` won the merge (the last that has it)."""
        if key in self.overrides:
            return "--set"
        for source, values in self.sources[::-1]:
            if lookup(values, key) is not MISSING:
                return source
        return f"the params: mapping of {self.rel}"

    def described(self) -> str:
        """Where params come from, for a message about a missing key."""
        return ", ".join(f for f, _ in self.sources) or (
            f"the params: mapping of {self.rel}" if self.inline else "no params file"
        )


def render_value(value: Any) -> str:
    """A value as it is substituted into text (JSON for lists and mappings)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` options as ``{key: value}``, each value a YAML scalar read by the
    parser that reads params files (``1e-3`` is a number, ``'2'`` a string, ``null`` null;
    an empty VALUE is the empty string). A key given twice is refused: which would win?"""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise UsageError(
                f"--set {item!r} is not KEY=VALUE", hint=f"e.g. --set {key or 'train.lr'}=0.01"
            )
        if key in overrides:
            raise UsageError(f"--set: {key!r} is set twice", hint="give each key once")
        overrides[key] = _scalar(key, text)
    return overrides


# A number in YAML 1.2 that PyYAML's YAML 1.1 reads as a string: ``1e-3`` (no dot).
_EXP_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+")


def _scalar(key: str, text: str) -> Any:
    if not text.strip():
        return text
    if _EXP_NUMBER.fullmatch(text.strip()):
        return float(text)  # what anyone typing --set lr=1e-3 means
    try:
        value = Doc("--set", text).value
    except ConfigError as exc:
        raise UsageError(f"--set {key}: {exc.message}", hint="quote a string: 'text'") from None
    if isinstance(value, (Mapping, list)):
        kind = "a mapping" if isinstance(value, Mapping) else "a list"
        raise UsageError(
            f"--set {key}={text}: {kind} is not a scalar",
            hint="--set gives one value (a number, string, boolean or null); edit the "
            "params file for more",
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(
            f"--set {key}={text}: not a finite number",
            hint="params are recorded as JSON, which has no infinity or NaN",
        )
    if not isinstance(value, (str, int, float, bool)) and value is not None:
        raise UsageError(  # a YAML date or timestamp: no params file value is one
            f"--set {key}={text}: a {type(value).__name__} is not a params value",
            hint="quote it to pass it as a string",
        )
    return value


def override_text(key: str, value: Any) -> str:
    """``KEY=VALUE`` as one would type it again: a string that would read back as another
    type (``'2'``, ``'true'``) is quoted, so what is shown round-trips."""
    if isinstance(value, str) and value.strip() and _scalar(key, value) != value:
        return f"{key}={json.dumps(value, ensure_ascii=False)}"
    return f"{key}={render_value(value)}"


def overrides_read(read: Iterable[str], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The overrides among ``overrides`` that a target reading params keys ``read`` sees:
    a key it reads, or one under a subtree it reads (``train`` reads ``train.lr``)."""
    keys = list(read)
    return {k: v for k, v in overrides.items() if any(covers(r, k) for r in keys)}


def covers(read: str, key: str) -> bool:
    """Whether reading params key ``read`` reads the value at ``key``."""
    return key == read or key.startswith(read + ".")


def _assign(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Set the value at ``dotted``, which `lookup` has found (so every step exists)."""
    *parents, last = dotted.split(".")
    node: Any = tree
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def _leaf_keys(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every key of a value that is neither a mapping nor a list (list items as ``k.0``)."""
    keys: list[str] = []
    items: Iterable[tuple[Any, Any]] = tree.items()
    for key, value in items:
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            keys.extend(_leaf_keys(value, full + "."))
        elif isinstance(value, list):
            keys.extend(_leaf_keys({str(i): v for i, v in enumerate(value)}, full + "."))
        else:
            keys.append(full)
    return keys


def _load_params_file(root: str, rel: str, pos: SourcePos) -> dict[str, Any]:
    path = os.path.join(root, rel)
    try:
        with open(path, "rb") as f:
            data = f.read()
        observer = observe.active()
        if observer is not None:
            observer.read(path, data)
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
    return parse_params(root, rel, data)


def parse_params(root: str, rel: str, data: bytes) -> dict[str, Any]:
    """The mapping in params file ``rel`` (workspace ``root``) whose bytes are ``data``: the
    one parser of params files (YAML with its alias and depth limits, JSON, TOML), for the
    pipeline and for anything that reads such a file again (`mlbuild reproduce`)."""
    text = decode_utf8(data, rel)
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
            raise ConfigError(
                "TOML params files need Python 3.11 or newer", pos=SourcePos(rel, 1, 1)
            )
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
        value = Doc(rel, text, Layout(root).parse_cache_dir).value
    if not isinstance(value, dict):
        raise ConfigError("a params file must hold a mapping", pos=SourcePos(rel, 1, 1))
    return value


def kind_of(value: Any) -> str:
    """What a YAML value is, in words, for an error message."""
    if isinstance(value, bool):
        return f"a boolean ({render_value(value)})"
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


def lookup(tree: Mapping[str, Any], dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def flat_keys(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in tree.items():
        full = f"{prefix}{key}"
        keys.append(full)
        if isinstance(value, Mapping):
            keys.extend(flat_keys(value, full + "."))
    return keys
