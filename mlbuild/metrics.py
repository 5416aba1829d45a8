"""Metrics: read a target's metrics files, compare them, and judge gates and promotions.

A metrics file is JSON or YAML holding a mapping; nested keys flatten to dotted names
(``{"eval": {"acc": 0.9}}`` → ``eval.acc``). Leaves that are numbers, strings or booleans
are metrics; lists are skipped (they belong in an out, not a table). NaN and infinities are
not numbers a build can be judged by: they are recorded as ``null`` with a warning, a gate
on them fails, and promotion passes over that candidate.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .config import GateSpec, PromoteSpec
from .errors import BuildFailed, CheckFailed
from .kinds import PromoteMode

__all__ = [
    "GateResult",
    "MetricChange",
    "diff_metrics",
    "evaluate_gates",
    "flatten",
    "pick_winner",
    "read_metrics",
]

Metrics = dict[str, Any]


def flatten(data: Mapping[str, Any], prefix: str = "") -> Metrics:
    """Nested mappings → dotted names, sorted; lists are skipped (see module doc)."""
    out: Metrics = {}
    for key in sorted(data, key=str):
        value = data[key]
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        elif value is None or isinstance(value, (bool, int, float, str)):
            out[name] = value
    return out


def read_metrics(root: str, paths: Sequence[str]) -> tuple[Metrics, list[str]]:
    """The metrics of ``paths`` merged in order, and warnings (NaN values).

    A file that is missing, not JSON/YAML, or not a mapping fails the target (BuildFailed):
    the command wrote something other than what mlbuild.yaml promises."""
    merged: Metrics = {}
    warnings: list[str] = []
    for rel in paths:
        full = os.path.join(root, rel)
        try:
            with open(full, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            raise BuildFailed(f"metrics file {rel} was not written") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BuildFailed(f"metrics file {rel} is unreadable ({exc})") from None
        try:
            data = _parse(rel, text)
            if not isinstance(data, Mapping):
                raise BuildFailed(
                    f"metrics file {rel} must hold a mapping of names to values, "
                    f"not {type(data).__name__}"
                )
            values = flatten(data)
        except RecursionError:
            raise BuildFailed(f"metrics file {rel} is nested too deeply to read") from None
        for name, value in values.items():
            if isinstance(value, float) and not math.isfinite(value):
                warnings.append(f"metric {name} in {rel} is {value}: recorded as null")
                value = None
            merged[name] = value
    return merged, warnings


def _parse(rel: str, text: str) -> Any:
    """The value of a metrics file. A command wrote it, so it is read like any untrusted
    YAML (see config.yaml.yaml_graph_problem): composed first, and refused before any value is
    built when its aliases would expand past the cap (a bomb), nest too deep or loop."""
    if rel.lower().endswith(".json"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise BuildFailed(f"metrics file {rel} is not valid JSON ({exc})") from None
    from .config.yaml import DataYamlError, load_data_yaml

    try:
        return load_data_yaml(text)
    except DataYamlError as exc:
        raise BuildFailed(f"metrics file {rel} is {exc}") from None


def _shown(value: Any) -> str:
    """How a metric value reads in a message (NaN and infinities are stored as null)."""
    return "null (NaN, infinite or empty)" if value is None else repr(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class GateResult:
    gate: GateSpec
    passed: bool
    value: float | None
    previous: float | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            **self.gate.to_json(),
            "passed": self.passed,
            "value": self.value,
            "previous": self.previous,
            "message": self.message,
        }


def evaluate_gates(
    target: str,
    gates: Sequence[GateSpec],
    metrics: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
) -> list[GateResult]:
    """Judge each gate; ``previous`` is the metrics of the last successful build (or None)."""
    results: list[GateResult] = []
    for gate in gates:
        name = gate.metric
        if name not in metrics:
            have = ", ".join(sorted(metrics)) or "none"
            results.append(
                GateResult(
                    gate, False, None, None, f"{target} has no metric {name!r} (has: {have})"
                )
            )
            continue
        value = _number(metrics[name])
        if value is None:
            results.append(
                GateResult(
                    gate,
                    False,
                    None,
                    None,
                    f"metric {name} is {_shown(metrics[name])}, not a number",
                )
            )
            continue
        if gate.min is not None:
            ok = value >= gate.min
            msg = f"{name} = {value:g}, needs >= {gate.min:g}"
            results.append(GateResult(gate, ok, value, None, msg))
        elif gate.max is not None:
            ok = value <= gate.max
            msg = f"{name} = {value:g}, needs <= {gate.max:g}"
            results.append(GateResult(gate, ok, value, None, msg))
        else:
            old = _number((previous or {}).get(name))
            if old is None:
                msg = f"{name} = {value:g}; no previous build with {name} to compare with"
                results.append(GateResult(gate, True, value, None, msg))
                continue
            if gate.max_rise is not None:
                change, limit, verb = value - old, gate.max_rise, "rose"
            else:
                assert gate.max_drop is not None
                change, limit, verb = old - value, gate.max_drop, "dropped"
            ok = change <= limit + 1e-12
            msg = f"{name} = {value:g}, previous {old:g}: {verb} by {change:g}, allowed {limit:g}"
            results.append(GateResult(gate, ok, value, old, msg))
    return results


def pick_winner(
    target: str, promote: PromoteSpec, scores: Mapping[str, Mapping[str, Any]]
) -> tuple[str, dict[str, float | None]]:
    """The best candidate by ``promote.by`` (ties: the first in file order), and every
    candidate's score (None: missing or NaN). No scorable candidate → CheckFailed."""
    table: dict[str, float | None] = {}
    for cand in promote.candidates:
        table[cand] = _number(scores.get(cand, {}).get(promote.by))
    valid = [(c, v) for c, v in table.items() if v is not None]
    if not valid:
        by = promote.by
        detail = ", ".join(
            f"{c}: {_shown(scores[c][by]) if by in scores.get(c, {}) else 'missing'}" for c in table
        )
        raise CheckFailed(
            f"no candidate of {target} has a numeric {promote.by!r} to promote by ({detail})",
            findings=({"promotion": {**promote.to_json(), "winner": None, "scores": table}},),
        )
    sign = 1.0 if promote.mode == PromoteMode.MAX else -1.0
    best = max(valid, key=lambda cv: sign * (cv[1] or 0.0))  # max keeps the first of ties
    return best[0], table


@dataclass(frozen=True)
class MetricChange:
    target: str
    metric: str
    old: Any
    new: Any

    @property
    def delta(self) -> float | None:
        a, b = _number(self.old), _number(self.new)
        return None if a is None or b is None else b - a

    @property
    def relative(self) -> float | None:
        a, d = _number(self.old), self.delta
        return None if a is None or d is None or a == 0 else d / abs(a)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "metric": self.metric,
            "old": self.old,
            "new": self.new,
            "change": self.delta,
            "relative": self.relative,
        }


def diff_metrics(
    old: Mapping[str, Mapping[str, Any]], new: Mapping[str, Mapping[str, Any]], *, all_: bool
) -> list[MetricChange]:
    """Per target and metric, old vs new (sorted). Without ``all_`` only changed ones."""
    changes: list[MetricChange] = []
    for target in sorted(set(old) | set(new)):
        a, b = old.get(target, {}), new.get(target, {})
        for metric in sorted(set(a) | set(b)):
            va, vb = a.get(metric), b.get(metric)
            if all_ or va != vb or (metric in a) != (metric in b):
                changes.append(MetricChange(target, metric, va, vb))
    return changes
