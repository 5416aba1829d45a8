"""The ML parts of a target's declaration: data checks, gates and promotion, validated.

The parsers are pure functions over the YAML values; each problem raises `SpecError` with
the path below the target (``("checks", 2, "column")``), and `load_ml` turns it into a
ConfigError at that line. The checks themselves run in ``mlbuild.checks``.

A check on an out that is not tabular (`specs.TABULAR_EXTENSIONS`) is a config error, found
before anything runs.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from ..kinds import CheckKind, Dtype, GateBound, PromoteMode, Severity, words
from ..suggest import did_you_mean
from .access import Reader
from .paths import module_exists
from .schema import CHECK_COMMON_KEYS, CHECK_KINDS, GATE_BOUNDS, GATE_KEYS, PROMOTE_KEYS
from .specs import (
    TABULAR_EXTENSIONS,
    CheckSpec,
    DepKind,
    DepSpec,
    GateSpec,
    PlotSpec,
    PromoteSpec,
    TargetSpec,
    is_tabular,
)

__all__ = [
    "DTYPES",
    "SpecError",
    "check_module",
    "load_ml",
    "parse_checks",
    "parse_gates",
    "parse_promote",
]

#: Dtype names a ``columns`` check accepts, and what each admits (see docs/checks.md).
DTYPES = words(Dtype)
_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_COMMON = CHECK_COMMON_KEYS
_BOUNDS = GATE_BOUNDS


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
    severity = item.get("severity", Severity.ERROR.value)
    if severity not in words(Severity):
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
    if kind == CheckKind.COLUMNS:
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
    elif kind in (CheckKind.NOT_NULL, CheckKind.UNIQUE):
        opts["columns"] = _names(opts["columns"], path + ("columns",), "columns")
    elif kind in (CheckKind.RANGE, CheckKind.ALLOWED):
        if not isinstance(opts["column"], str):
            raise SpecError("column must be a column name", path + ("column",))
        if kind == CheckKind.RANGE:
            if "min" not in opts and "max" not in opts:
                raise SpecError("a range check needs 'min', 'max' or both", path)
            for bound in ("min", "max"):
                if bound in opts:
                    opts[bound] = _number(opts[bound], path + (bound,), bound)
        elif not isinstance(opts["values"], list) or not opts["values"]:
            raise SpecError("values must be a non-empty list", path + ("values",))
    elif kind == CheckKind.ROWS:
        if "min" not in opts and "max" not in opts:
            raise SpecError("a rows check needs 'min', 'max' or both", path)
        for bound in ("min", "max"):
            if bound in opts:
                value = opts[bound]
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise SpecError(f"{bound} must be a non-negative integer", path + (bound,))
    elif kind == CheckKind.DRIFT:
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
    elif kind == CheckKind.PYTHON:
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
            if key not in GATE_KEYS:
                raise SpecError(
                    f"unknown key {key!r} in a gate",
                    path + (key,),
                    _did_you_mean(key, GATE_KEYS),
                    at_key=True,
                )
        bounds = [k for k in _BOUNDS if k in item]
        if len(bounds) != 1:
            raise SpecError(
                "a gate needs exactly one of 'min', 'max', 'max_drop', 'max_rise'", path
            )
        bound = bounds[0]
        value = _number(item[bound], path + (bound,), bound)
        if GateBound(bound).vs_previous:
            if item.get("vs", "previous") != "previous":
                raise SpecError("vs must be 'previous'", path + ("vs",))
            if value < 0:
                raise SpecError(f"{bound} must not be negative", path + (bound,))
        elif "vs" in item:
            raise SpecError("'vs' goes with 'max_drop' or 'max_rise'", path + ("vs",))
        gates.append(
            GateSpec(
                item["metric"],
                min=value if bound == GateBound.MIN else None,
                max=value if bound == GateBound.MAX else None,
                max_drop=value if bound == GateBound.MAX_DROP else None,
                max_rise=value if bound == GateBound.MAX_RISE else None,
            )
        )
    return tuple(gates)


def parse_promote(raw: Any, name: str, names: Sequence[str]) -> PromoteSpec:
    """Validate ``promote: {from, by, mode}`` and find its candidates among ``names``."""
    import fnmatch

    if not isinstance(raw, dict):
        raise SpecError("promote must be a mapping {from: PATTERN, by: METRIC, mode: max|min}", ())
    for key in raw:
        if key not in PROMOTE_KEYS:
            raise SpecError(
                f"unknown key {key!r} in promote",
                (key,),
                _did_you_mean(key, PROMOTE_KEYS),
                at_key=True,
            )
    pattern, by, mode = raw.get("from"), raw.get("by"), raw.get("mode", PromoteMode.MAX.value)
    if not isinstance(pattern, str) or not pattern:
        raise SpecError("promote needs 'from': a target name or glob", ())
    if not isinstance(by, str) or not by:
        raise SpecError("promote needs 'by': the metric that ranks candidates", ())
    if mode not in words(PromoteMode):
        raise SpecError("mode must be 'max' or 'min'", ("mode",))
    candidates = tuple(n for n in names if n != name and fnmatch.fnmatchcase(n, pattern))
    if not candidates:
        raise SpecError(
            f"promote.from {pattern!r} matches no target", ("from",), _did_you_mean(pattern, names)
        )
    return PromoteSpec(pattern, by, mode, candidates)


# --------------------------------------------------------------------------- in a target


def load_ml(
    reader: Reader,
    root: str,
    spec: TargetSpec,
    path: tuple[Any, ...],
    body: dict[str, Any],
    names: list[str],
    outs_of: dict[str, list[str]],
    metrics_of: dict[str, list[str]],
    plots_of: Mapping[str, tuple[PlotSpec, ...]] | None = None,
) -> TargetSpec:
    """``spec`` with its metrics, plots (config/plots.py, read with the outs), checks, gates
    and promotion; a promoted target also depends on every candidate."""
    metrics = tuple(metrics_of[spec.name])
    checks, gates, promote = _parse_ml(reader, spec, path, body, names)
    for i, check in enumerate(checks):
        if check.check == CheckKind.PYTHON:
            check_module(reader, root, check.options["python"], path + ("checks", i, "python"))
    deps, dep_paths = list(spec.deps), list(spec.dep_paths)
    if promote is not None:
        for cand in _candidates(reader, spec, path, promote, metrics, outs_of, metrics_of):
            deps.append(DepSpec(DepKind.TARGET, cand))
            dep_paths.extend(outs_of[cand])
    if gates and not metrics and promote is None:
        raise reader.fail(
            f"target {spec.name!r} has a gate but no metrics to check it against",
            path + ("gate",),
            hint="add `metrics: [FILE]`, or make it a promote: target",
        )
    return dataclasses.replace(
        spec,
        deps=tuple(deps),
        dep_paths=tuple(dep_paths),
        metrics=metrics,
        plots=(plots_of or {}).get(spec.name, ()),
        checks=checks,
        gates=gates,
        promote=promote,
        template=str(path[1]) if spec.matrix else "",
    )


def _parse_ml(
    reader: Reader,
    spec: TargetSpec,
    path: tuple[Any, ...],
    body: dict[str, Any],
    names: list[str],
) -> tuple[tuple[CheckSpec, ...], tuple[GateSpec, ...], PromoteSpec | None]:
    """checks, gate and promote of one target; a SpecError becomes a ConfigError at its
    line."""
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
        pos = reader.doc.key_at(where) if exc.at_key else reader.doc.at(where)
        raise ConfigError(exc.message, pos=pos, hint=exc.hint) from None
    return checks, gates, promote


def _candidates(
    reader: Reader,
    spec: TargetSpec,
    path: tuple[Any, ...],
    promote: PromoteSpec,
    metrics: tuple[str, ...],
    outs_of: dict[str, list[str]],
    metrics_of: dict[str, list[str]],
) -> list[str]:
    """The candidates a promoted target is not yet a dependent of, once each is checked to
    mirror it (as many outs and metrics files) and the target is checked to run nothing."""
    if spec.cmd is not None or spec.python is not None:
        raise reader.fail(
            f"target {spec.name!r} has 'promote' and a command: a promoted target "
            "copies its winner's outs and runs nothing",
            path + ("promote",),
        )
    plain = [o for o in spec.outs if o not in metrics]
    added: list[str] = []
    for cand in promote.candidates:
        if not metrics_of[cand]:
            raise reader.fail(
                f"promote candidate {cand!r} declares no metrics to rank it by",
                path + ("promote", "from"),
            )
        cand_plain = [o for o in outs_of[cand] if o not in metrics_of[cand]]
        if len(cand_plain) != len(plain) or (metrics and len(metrics_of[cand]) != len(metrics)):
            raise reader.fail(
                f"{spec.name!r} has {len(plain)} out(s) and {len(metrics)} metrics "
                f"file(s), but candidate {cand!r} has {len(cand_plain)} and "
                f"{len(metrics_of[cand])}: a promoted target mirrors its candidates",
                path + ("outs",),
            )
        if cand not in spec.dep_targets:
            added.append(cand)
    return added


def check_module(reader: Reader, root: str, callable_spec: str, path: tuple[Any, ...]) -> None:
    """A ``module:function``'s module must exist in the workspace or be installed, so
    that a typo is a config error before anything runs, not a failure after the
    command. Nothing is imported: a file lookup, or find_spec of the top package."""
    module = callable_spec.split(":", 1)[0]
    if not module_exists(root, module):
        rel = module.replace(".", "/")
        raise reader.fail(
            f"module {module!r} of {callable_spec!r} is neither in the workspace "
            f"({rel}.py) nor installed",
            path,
        )
