"""The ML parts of a target's declaration: data checks, gates and promotion, validated.

Pure functions over the YAML values; each problem raises `SpecError` with the path below
the target (``("checks", 2, "column")``) so the loader can point at the line. The loader
(pipeline.py) owns positions; the checks themselves run in ``mlbuild.checks``.

Tabular outs are recognized by extension (``TABULAR_EXTENSIONS``): a check on any other out
is a config error, found before anything runs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .suggest import did_you_mean

__all__ = [
    "CHECK_KINDS",
    "DTYPES",
    "TABULAR_EXTENSIONS",
    "CheckSpec",
    "GateSpec",
    "PromoteSpec",
    "SpecError",
    "is_tabular",
    "parse_checks",
    "parse_gates",
    "parse_promote",
]

TABULAR_EXTENSIONS = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson")
#: Dtype names a ``columns`` check accepts, and what each admits (see docs/checks.md).
DTYPES = ("int", "float", "str", "bool", "datetime", "any")
_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

#: Keys each check kind takes besides ``check``, ``severity`` and ``out``: required, optional.
CHECK_KINDS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "columns": (("columns",), ("strict",)),
    "not_null": (("columns",), ()),
    "unique": (("columns",), ()),
    "range": (("column",), ("min", "max")),
    "allowed": (("column", "values"), ()),
    "rows": ((), ("min", "max")),
    "drift": ((), ("columns", "max_psi", "max_ks", "bins")),
    "python": (("python",), ("args",)),
}
_COMMON = ("check", "severity", "out")


class SpecError(Exception):
    """A problem in a check, gate or promote entry; ``path`` is below the target."""

    def __init__(
        self, message: str, path: tuple[Any, ...], hint: str | None = None, *, at_key: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.hint = hint
        self.at_key = at_key  # point at the key itself (an unknown key), not its value


def is_tabular(path: str) -> bool:
    return path.lower().endswith(TABULAR_EXTENSIONS)


@dataclass(frozen=True)
class CheckSpec:
    """One data check on one or more tabular outs of a target."""

    check: str
    severity: str  # "error" fails the target (exit 3); "warn" records and prints
    outs: tuple[str, ...]  # the tabular outs it reads
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """As it joins the build key and the manifest (sorted, plain data)."""
        return {
            "check": self.check,
            "severity": self.severity,
            "outs": list(self.outs),
            **{k: self.options[k] for k in sorted(self.options)},
        }

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns this check reads (empty: all of them)."""
        if "column" in self.options:
            return (self.options["column"],)
        cols = self.options.get("columns")
        if isinstance(cols, Mapping):
            return tuple(cols)
        return tuple(cols or ())


@dataclass(frozen=True)
class GateSpec:
    """One condition a target's metrics must meet before its outs replace the previous."""

    metric: str
    min: float | None = None
    max: float | None = None
    max_drop: float | None = None  # vs the previous build: old - new must be <= max_drop
    max_rise: float | None = None  # vs the previous build: new - old must be <= max_rise

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"metric": self.metric}
        for name in _BOUNDS:
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.max_drop is not None or self.max_rise is not None:
            data["vs"] = "previous"
        return data

    def describe(self) -> str:
        if self.min is not None:
            return f"{self.metric} >= {self.min:g}"
        if self.max is not None:
            return f"{self.metric} <= {self.max:g}"
        if self.max_rise is not None:
            return f"{self.metric} rises by at most {self.max_rise:g} vs the previous build"
        return f"{self.metric} drops by at most {self.max_drop:g} vs the previous build"


_BOUNDS = ("min", "max", "max_drop", "max_rise")  # a gate has exactly one


@dataclass(frozen=True)
class PromoteSpec:
    """``promote:``: pick the best of ``candidates`` by a metric and copy its outs."""

    pattern: str
    by: str
    mode: str  # "max" or "min"
    candidates: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"from": self.pattern, "by": self.by, "mode": self.mode}


# --------------------------------------------------------------------------- parsing


def _did_you_mean(word: str, choices: Sequence[str]) -> str | None:
    return did_you_mean(word, choices)  # the one suggester (suggest.py)


def _number(value: Any, path: tuple[Any, ...], what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"{what} must be a number, not {type(value).__name__}", path)
    if not math.isfinite(value):
        raise SpecError(f"{what} must be a finite number", path)
    return float(value) if isinstance(value, float) else value


def _names(value: Any, path: tuple[Any, ...], what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        raise SpecError(f"{what} must be a column name or a non-empty list of them", path)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise SpecError(f"each entry of {what} must be a column name", path + (i,))
    return list(value)


def parse_checks(raw: Any, outs: Sequence[str]) -> tuple[CheckSpec, ...]:
    """Validate a target's ``checks:`` list against its outs."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SpecError("checks must be a list of {check: KIND, ...} mappings", ("checks",))
    tabular = [o for o in outs if is_tabular(o)]
    return tuple(_parse_check(item, ("checks", i), outs, tabular) for i, item in enumerate(raw))


def _parse_check(
    item: Any, path: tuple[Any, ...], outs: Sequence[str], tabular: Sequence[str]
) -> CheckSpec:
    if not isinstance(item, dict) or "check" not in item:
        raise SpecError("each check must be a mapping with a 'check' key", path)
    kind = item["check"]
    if kind not in CHECK_KINDS:
        raise SpecError(
            f"unknown check {kind!r}",
            path + ("check",),
            _did_you_mean(str(kind), list(CHECK_KINDS)) or f"one of: {', '.join(CHECK_KINDS)}",
        )
    required, optional = CHECK_KINDS[kind]
    allowed = (*_COMMON, *required, *optional)
    for key in item:
        if key not in allowed:
            raise SpecError(
                f"unknown key {key!r} in a {kind} check",
                path + (key,),
                _did_you_mean(key, allowed) or f"allowed: {', '.join(allowed)}",
                at_key=True,
            )
    for key in required:
        if key not in item:
            raise SpecError(f"the {kind} check needs {key!r}", path)
    severity = item.get("severity", "error")
    if severity not in ("error", "warn"):
        raise SpecError("severity must be 'error' or 'warn'", path + ("severity",))
    if "out" in item:
        out = item["out"]
        if out not in outs:
            raise SpecError(
                f"check out {out!r} is not an out of this target",
                path + ("out",),
                _did_you_mean(str(out), list(outs)),
            )
        if not is_tabular(out):
            raise SpecError(
                f"check on a non-tabular out {out!r}",
                path + ("out",),
                f"checks read {', '.join(TABULAR_EXTENSIONS)} files",
            )
        check_outs: tuple[str, ...] = (out,)
    else:
        if not tabular:
            raise SpecError(
                f"a {kind} check needs a tabular out, and this target has none"
                + (f" ({', '.join(outs)})" if outs else ""),
                path,
                f"checks read {', '.join(TABULAR_EXTENSIONS)} files",
            )
        check_outs = tuple(tabular)
    options = {k: v for k, v in item.items() if k not in _COMMON}
    _validate_options(kind, options, path)
    return CheckSpec(kind, severity, check_outs, options)


def _validate_options(kind: str, opts: dict[str, Any], path: tuple[Any, ...]) -> None:
    if kind == "columns":
        cols = opts["columns"]
        if isinstance(cols, dict):
            if not cols:
                raise SpecError("columns must not be empty", path + ("columns",))
            for name, dtype in cols.items():
                if dtype not in DTYPES:
                    raise SpecError(
                        f"unknown dtype {dtype!r} for column {name!r}",
                        path + ("columns", name),
                        _did_you_mean(str(dtype), DTYPES) or f"one of: {', '.join(DTYPES)}",
                    )
        else:
            opts["columns"] = _names(cols, path + ("columns",), "columns")
        if not isinstance(opts.get("strict", False), bool):
            raise SpecError("strict must be true or false", path + ("strict",))
    elif kind in ("not_null", "unique"):
        opts["columns"] = _names(opts["columns"], path + ("columns",), "columns")
    elif kind in ("range", "allowed"):
        if not isinstance(opts["column"], str):
            raise SpecError("column must be a column name", path + ("column",))
        if kind == "range":
            if "min" not in opts and "max" not in opts:
                raise SpecError("a range check needs 'min', 'max' or both", path)
            for bound in ("min", "max"):
                if bound in opts:
                    opts[bound] = _number(opts[bound], path + (bound,), bound)
        elif not isinstance(opts["values"], list) or not opts["values"]:
            raise SpecError("values must be a non-empty list", path + ("values",))
    elif kind == "rows":
        if "min" not in opts and "max" not in opts:
            raise SpecError("a rows check needs 'min', 'max' or both", path)
        for bound in ("min", "max"):
            if bound in opts:
                value = opts[bound]
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise SpecError(f"{bound} must be a non-negative integer", path + (bound,))
    elif kind == "drift":
        if "columns" in opts:
            opts["columns"] = _names(opts["columns"], path + ("columns",), "columns")
        if "max_psi" not in opts and "max_ks" not in opts:
            opts["max_psi"] = 0.2
        for name in ("max_psi", "max_ks"):
            if name in opts and _number(opts[name], path + (name,), name) <= 0:
                raise SpecError(f"{name} must be positive", path + (name,))
        bins = opts.get("bins", 10)
        if isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins <= 100:
            raise SpecError("bins must be an integer from 2 to 100", path + ("bins",))
        opts["bins"] = bins
    elif kind == "python":
        if not isinstance(opts["python"], str) or not _CALLABLE.match(opts["python"]):
            raise SpecError("python must be 'module:function'", path + ("python",))
        if not isinstance(opts.get("args", {}), dict):
            raise SpecError("args must be a mapping", path + ("args",))


def parse_gates(raw: Any) -> tuple[GateSpec, ...]:
    """Validate ``gate:``: a list of ``{metric, min | max | max_drop | max_rise (+ vs:
    previous)}``; max_rise is max_drop for a metric where lower is better (a loss)."""
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    gates: list[GateSpec] = []
    for i, item in enumerate(items):
        path = ("gate", i) if isinstance(raw, list) else ("gate",)
        if not isinstance(item, dict) or not isinstance(item.get("metric"), str):
            raise SpecError("each gate must be a mapping with a 'metric' name", path)
        for key in item:
            if key not in ("metric", *_BOUNDS, "vs"):
                raise SpecError(
                    f"unknown key {key!r} in a gate",
                    path + (key,),
                    _did_you_mean(key, ("metric", *_BOUNDS, "vs")),
                    at_key=True,
                )
        bounds = [k for k in _BOUNDS if k in item]
        if len(bounds) != 1:
            raise SpecError(
                "a gate needs exactly one of 'min', 'max', 'max_drop', 'max_rise'", path
            )
        bound = bounds[0]
        value = _number(item[bound], path + (bound,), bound)
        if bound in ("max_drop", "max_rise"):
            if item.get("vs", "previous") != "previous":
                raise SpecError("vs must be 'previous'", path + ("vs",))
            if value < 0:
                raise SpecError(f"{bound} must not be negative", path + (bound,))
        elif "vs" in item:
            raise SpecError("'vs' goes with 'max_drop' or 'max_rise'", path + ("vs",))
        gates.append(
            GateSpec(
                item["metric"],
                min=value if bound == "min" else None,
                max=value if bound == "max" else None,
                max_drop=value if bound == "max_drop" else None,
                max_rise=value if bound == "max_rise" else None,
            )
        )
    return tuple(gates)


def parse_promote(raw: Any, name: str, names: Sequence[str]) -> PromoteSpec:
    """Validate ``promote: {from, by, mode}`` and find its candidates among ``names``."""
    import fnmatch

    if not isinstance(raw, dict):
        raise SpecError("promote must be a mapping {from: PATTERN, by: METRIC, mode: max|min}", ())
    for key in raw:
        if key not in ("from", "by", "mode"):
            raise SpecError(
                f"unknown key {key!r} in promote",
                (key,),
                _did_you_mean(key, ("from", "by", "mode")),
                at_key=True,
            )
    pattern, by, mode = raw.get("from"), raw.get("by"), raw.get("mode", "max")
    if not isinstance(pattern, str) or not pattern:
        raise SpecError("promote needs 'from': a target name or glob", ())
    if not isinstance(by, str) or not by:
        raise SpecError("promote needs 'by': the metric that ranks candidates", ())
    if mode not in ("max", "min"):
        raise SpecError("mode must be 'max' or 'min'", ("mode",))
    candidates = tuple(n for n in names if n != name and fnmatch.fnmatchcase(n, pattern))
    if not candidates:
        raise SpecError(
            f"promote.from {pattern!r} matches no target", ("from",), _did_you_mean(pattern, names)
        )
    return PromoteSpec(pattern, by, mode, candidates)
