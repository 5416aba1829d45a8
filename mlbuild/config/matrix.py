"""Matrix targets: one declared target expanded into one concrete target per combination.

``matrix: {algo: [forest, linear]}`` over ``model:{algo}`` makes ``model:forest`` and
``model:linear``; ``include:`` and ``exclude:`` adjust the combinations as CI matrices do. A
variable's values may be a list in the params (``"${params.samples}"``): each target made
from it then reads only its own value (`Matrix.reads`), so adding a sample builds one target.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..errors import ConfigError
from ..suggest import did_you_mean
from .access import Reader
from .params import MISSING, Params, flat_keys, kind_of, lookup, render_value
from .paths import name_problem
from .schema import TARGET_KEYS

__all__ = ["Expanded", "Matrix"]

# A matrix variable whose values are a list in the params: the whole string, nothing else.
_MATRIX_SOURCE = re.compile(r"^\$\{\s*(params|vars)\.([^}]*?)\s*\}$")


class Expanded(NamedTuple):
    """One concrete target: its name, the path of its declaration, the declaration, and its
    matrix values."""

    name: str
    path: tuple[Any, ...]
    body: dict[str, Any]
    combo: dict[str, Any]


class Matrix:
    """Expands the targets of one config; remembers which variables come from params."""

    def __init__(self, reader: Reader, params: Params) -> None:
        self.reader = reader
        self.params = params
        self.sources: dict[str, dict[str, str]] = {}  # template -> var -> params key

    def expand(self, raw_targets: dict[str, Any]) -> list[Expanded]:
        """Every concrete target, in file order; names checked and unique."""
        reader = self.reader
        expanded: list[Expanded] = []
        seen: dict[str, tuple[Any, ...]] = {}
        for name, body in raw_targets.items():
            path = ("targets", name)
            if body is None:
                body = {}
            reader.expect(body, dict, path, f"target {name!r}")
            reader.check_keys(body, TARGET_KEYS, path, f"target {name!r}")
            for combo in self.combos(name, body, path):
                concrete = self._concrete_name(name, combo, path)
                if concrete in seen:
                    raise ConfigError(
                        f"duplicate target {concrete!r}", pos=reader.doc.key_at(path)
                    )
                seen[concrete] = path
                expanded.append(Expanded(concrete, path, body, combo))
        return expanded

    def _concrete_name(self, name: str, combo: dict[str, Any], path: tuple[Any, ...]) -> str:
        """``name`` with each ``{var}`` filled from ``combo``, checked as a target name."""
        concrete = name
        for var, value in combo.items():
            concrete = concrete.replace("{" + var + "}", render_value(value))
        if "{" in concrete or "}" in concrete:
            raise ConfigError(
                f"target name {name!r} has a placeholder that no matrix variable fills",
                pos=self.reader.doc.key_at(path),
            )
        problem = name_problem(concrete)
        if problem is not None:
            message, hint = problem
            raise ConfigError(
                f"invalid target name {concrete!r}: {message}",
                pos=self.reader.doc.key_at(path),
                hint=hint,
            )
        return concrete

    def combos(
        self, name: str, body: dict[str, Any], path: tuple[Any, ...]
    ) -> list[dict[str, Any]]:
        """The variable values of each target ``name``'s matrix makes (one empty combination
        without a matrix)."""
        reader = self.reader
        matrix = body.get("matrix")
        if matrix is None:
            if "{" in name:
                raise ConfigError(
                    f"target name {name!r} has a placeholder but no matrix",
                    pos=reader.doc.key_at(path),
                )
            return [{}]
        reader.expect(matrix, dict, path + ("matrix",), "matrix")
        if not matrix:
            raise reader.fail("matrix is empty", path + ("matrix",))
        extra = {k: matrix[k] for k in ("include", "exclude") if k in matrix}
        axes: list[tuple[str, list[Any]]] = []
        for var, values in matrix.items():
            if var not in extra:
                axes.append((var, self._axis(name, var, values, path + ("matrix", var))))
        combos = [
            dict(zip([a for a, _ in axes], combo, strict=True))
            for combo in itertools.product(*[v for _, v in axes])
        ]
        return self._extra(name, combos, extra, path + ("matrix",))

    def _axis(self, name: str, var: str, values: Any, vpath: tuple[Any, ...]) -> list[Any]:
        """The values of matrix variable ``var`` of target ``name``: written, or from params."""
        reader = self.reader
        if isinstance(values, str):
            key, values = self._from_params(var, values, vpath)
            self.sources.setdefault(name, {})[var] = key
        reader.expect(values, list, vpath, f"matrix.{var}")
        if not values:
            raise reader.fail(f"matrix.{var} is empty", vpath)
        for i, value in enumerate(values):
            if isinstance(value, (dict, list)) or value is None:
                raise reader.fail(f"matrix.{var} values must be plain values", vpath + (i,))
        if "{" + var + "}" not in name:
            raise reader.fail(
                f"matrix variable {var!r} does not appear in the target name {name!r}",
                vpath,
                hint=f"name the target like '{name}-{{{var}}}'",
            )
        checked: list[Any] = values
        return checked

    def _from_params(self, var: str, text: str, path: tuple[Any, ...]) -> tuple[str, list[Any]]:
        """``(key, values)`` of ``matrix: {var: "${params.KEY}"}``: the list at KEY in the
        params (the Snakemake tutorial's sample list), checked as a written list is: it must
        exist, be a list, not be empty, and hold plain values, each once."""
        reader = self.reader
        m = _MATRIX_SOURCE.match(text)
        if m is None or m.group(1) == "vars":
            raise reader.fail(
                f"matrix.{var} must be a list, or the whole string \"${{params.KEY}}\" naming "
                f"a list in the params, not {text!r}",
                path,
                hint="vars hold plain values, not lists: put the list in a params file"
                if m is not None
                else "write [a, b] or \"${params.samples}\"",
            )
        key = m.group(2)
        value = lookup(self.params.values, key) if key else MISSING
        if value is MISSING:
            raise reader.fail(
                f"matrix.{var}: params key {key!r} is not defined ({self.params.described()})",
                path,
                hint=did_you_mean(key, flat_keys(self.params.values))
                or f"add `{key}: [a, b]` to the params",
            )
        return key, list(self._check_list(var, key, value, path))

    def _check_list(self, var: str, key: str, value: Any, path: tuple[Any, ...]) -> list[Any]:
        """A params value used as matrix values must be a non-empty list of distinct plain
        values."""
        reader = self.reader
        where = f"params key {key!r} in {self.params.origin(key)}"
        if not isinstance(value, list):
            raise reader.fail(
                f"matrix.{var}: {where} is {kind_of(value)}, not a list",
                path,
                hint=f"write it as a list: {key.rsplit('.', 1)[-1]}: [a, b]",
            )
        if not value:
            raise reader.fail(
                f"matrix.{var}: {where} is an empty list, so the matrix makes no target",
                path,
                hint="add a value to the list, or remove the target",
            )
        seen: set[tuple[type, Any]] = set()
        for i, item in enumerate(value):
            if isinstance(item, (dict, list)) or item is None:
                raise reader.fail(
                    f"matrix.{var}: {where} holds {kind_of(item)} at index {i}: matrix values "
                    "must be plain values (strings, numbers, booleans)",
                    path,
                )
            if (type(item), item) in seen:
                raise reader.fail(
                    f"matrix.{var}: {where} lists {item!r} twice",
                    path,
                    hint="each value makes one target: list it once",
                )
            seen.add((type(item), item))
        return value

    def reads(self, template: str, combo: Mapping[str, Any]) -> dict[str, Any]:
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
        for var, key in self.sources.get(template, {}).items():
            by_key.setdefault(key, []).append(var)
        for key, variables in by_key.items():
            listed = lookup(self.params.values, key)
            if len(variables) > 1:
                reads[key] = listed
                continue
            value = combo.get(variables[0], MISSING)
            if any(type(item) is type(value) and item == value for item in listed):
                reads[key] = value
        return reads

    def _extra(
        self,
        name: str,
        combos: list[dict[str, Any]],
        extra: dict[str, Any],
        path: tuple[Any, ...],
    ) -> list[dict[str, Any]]:
        """``exclude:`` drops every combination matching an entry on all its keys;
        ``include:`` adds a combination, or, when it matches existing ones on all their
        axes, extends them with its extra variables (the CI-matrix meaning)."""
        reader = self.reader
        axes = set(combos[0]) if combos else set()
        for what in ("exclude", "include"):
            entries = extra.get(what)
            if entries is None:
                continue
            reader.expect(entries, list, path + (what,), f"matrix.{what}")
            for i, entry in enumerate(entries):
                epath = path + (what, i)
                self._check_entry(what, entry, epath, axes)
                if what == "exclude":
                    combos = [c for c in combos if any(c.get(k) != v for k, v in entry.items())]
                else:
                    self._include(combos, entry, epath, axes)
        if not combos:
            raise reader.fail(f"matrix of {name!r} is empty after exclude", path)
        return combos

    def _check_entry(
        self, what: str, entry: Any, epath: tuple[Any, ...], axes: set[str]
    ) -> None:
        """An include/exclude entry is a non-empty mapping of plain values; an exclude
        entry names only matrix variables."""
        reader = self.reader
        reader.expect(entry, dict, epath, f"each entry of matrix.{what}")
        if not entry:
            raise reader.fail(f"an entry of matrix.{what} is empty", epath)
        for var, value in entry.items():
            if isinstance(value, (dict, list)) or value is None:
                raise reader.fail(f"matrix.{what} values must be plain values", epath)
            if what == "exclude" and var not in axes:
                raise reader.fail(
                    f"matrix.exclude names {var!r}, which is not a matrix variable",
                    epath + (var,),
                    hint=did_you_mean(var, sorted(axes)),
                )

    def _include(
        self,
        combos: list[dict[str, Any]],
        entry: dict[str, Any],
        epath: tuple[Any, ...],
        axes: set[str],
    ) -> None:
        """Extend the combinations ``entry`` matches on its axes, or add it as a new one."""
        on_axes = {k: v for k, v in entry.items() if k in axes}
        matching = [c for c in combos if on_axes and all(c[k] == v for k, v in on_axes.items())]
        if matching:
            for c in matching:
                c.update(entry)
            return
        missing = sorted(v for v in axes if v not in entry)
        if missing:
            raise self.reader.fail(
                f"matrix.include entry matches no combination and lacks {', '.join(missing)}",
                epath,
            )
        combos.append(dict(entry))
