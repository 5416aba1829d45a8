"""YAML with a position for every key and value, and its parse cache.

The YAML is *composed* (not loaded) so that every key and value keeps its position; values
are then constructed one node at a time, which is also where duplicate keys are caught.
Every YAML file mlbuild reads (the config, params files, metrics files) goes through
`yaml_graph_problem`: aliases may not add more than `MAX_ALIAS_EXPANSION` values nor nest
deeper than `MAX_YAML_DEPTH`, so a 322-byte "billion laughs" is an error, not 2 GB.

PyYAML is imported only when a file must be parsed (not when its cached form is current).
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any

from ..errors import ConfigError, SourcePos

__all__ = [
    "MAX_ALIAS_EXPANSION",
    "MAX_YAML_DEPTH",
    "DataYamlError",
    "Doc",
    "decode_utf8",
    "load_data_yaml",
    "yaml_graph_problem",
]

# What a YAML file may cost: aliases adding at most this many values to what is written
# (a config or params file without aliases is never limited), and at most this nesting.
MAX_ALIAS_EXPANSION = 100_000
MAX_YAML_DEPTH = 100
_MAY_ALIAS = re.compile(r"(?:^|[\s\[{,:])\*")  # an alias token starts with *


class Doc:
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
            from ..digest import hash_bytes

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

        from ..store.atomic import atomic_write

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


class DataYamlError(Exception):
    """A YAML data file that cannot be used; ``str()`` completes "FILE is ...": "not valid
    YAML: PROBLEM at line L, column C" or "not usable: WHY at line L, column C"."""


def load_data_yaml(text: str) -> Any:
    """The value of a YAML file a command wrote (metrics, plots): composed first and refused
    (`yaml_graph_problem`) before any value is built when its aliases would expand past the
    cap, nest too deep or loop. No positions are kept: only the value is wanted."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        refused = yaml_graph_problem(node)
        if refused is not None:
            message, (line, col) = refused
            raise DataYamlError(f"not usable: {message} at line {line}, column {col}")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or type(exc).__name__
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DataYamlError(f"not valid YAML: {problem}{where}") from None
    finally:
        loader.dispose()


def decode_utf8(data: bytes, rel: str) -> str:
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
