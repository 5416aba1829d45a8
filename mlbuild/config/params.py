"""Params: the files (YAML, JSON, TOML) or inline mapping behind ``${params.X}``.

Files are merged in order, later keys over earlier ones, mappings merged key by key. A
dotted key (``train.lr``, ``samples.0``) walks mappings and lists (`lookup`).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError, SourcePos
from ..store.layout import Layout
from .access import Reader
from .paths import normalize_path
from .yaml import Doc, decode_utf8

__all__ = ["MISSING", "Params", "flat_keys", "kind_of", "lookup", "parse_params", "render_value"]

MISSING = object()  # what `lookup` returns for a key that is not there


class Params:
    """The merged params of one config, and which file each value came from."""

    def __init__(self, config_rel: str) -> None:
        self.rel = config_rel
        self.values: dict[str, Any] = {}
        self.files: list[str] = []  # as written in the config (params.yaml when implied)
        self.inline = False  # params: is a mapping in this file, not file names
        self.sources: list[tuple[str, Mapping[str, Any]]] = []  # (file, its values)

    def load(self, reader: Reader, root: str, top: dict[str, Any]) -> None:
        """Read ``params:`` of the top level (file names, a mapping, or params.yaml if
        absent and present on disk)."""
        spec = top.get("params")
        files: list[str] = []
        if spec is None:
            if os.path.isfile(os.path.join(root, "params.yaml")):
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

    def origin(self, key: str) -> str:
        """The params file whose value of ``key`` won the merge (the last that has it)."""
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
