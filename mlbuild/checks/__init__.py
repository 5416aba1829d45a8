"""Data checks (SPEC §8) and profiles of tabular outs; pandas is imported here only, lazily.

`inspect_outs` reads each tabular out at most twice, chunk by chunk (tables.py): pass one
builds the profile's running statistics and feeds the checks that need the rows (unique,
range, allowed, datetime columns); pass two, only when there are numeric columns, fills
the histograms and bins the data on the previous profile's edges for drift. Then every
check is judged from what was gathered. ``python:`` checks get the whole table.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import CheckSpec, is_tabular
from ..kinds import CheckKind, Dtype
from ..suggest import suggest
from .profile import (
    ColumnStats,
    categorical_shares,
    equal_edges,
    finish_profile,
    ks_statistic,
    numeric_counts,
    psi,
)
from .tables import CHUNK_ROWS, read_chunks, read_table

__all__ = ["CheckResult", "inspect_outs"]


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check on one out (drift: on one column)."""

    check: str
    out: str
    severity: str
    passed: bool
    message: str
    column: str | None = None
    value: float | None = None  # the measured statistic (PSI, KS) where there is one

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "check": self.check,
            "out": self.out,
            "severity": self.severity,
            "passed": self.passed,
            "message": self.message,
        }
        if self.column is not None:
            data["column"] = self.column
        if self.value is not None:
            data["value"] = round(self.value, 6)
        return data


_ResultFn = Callable[..., CheckResult]


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (for messages and JSON)."""
    return value.item() if hasattr(value, "item") else value


class _RowChecks:
    """Per-chunk work of the checks that must see rows, not just statistics."""

    def __init__(self, checks: Sequence[CheckSpec]) -> None:
        self.checks = checks
        self.seen: dict[str, set[Any]] = {}
        self.dups: dict[str, tuple[int, Any]] = {}
        self.bad: dict[int, tuple[int, list[Any]]] = {}  # check index → (count, examples)
        self.not_dates: dict[str, int] = {}

    def update(self, chunk: Any) -> None:
        import pandas as pd
        from pandas.api import types as t

        for i, c in enumerate(self.checks):
            cols = [col for col in c.columns if col in chunk.columns]
            if c.check == CheckKind.UNIQUE:
                for col in cols:
                    values = chunk[col].dropna()
                    seen = self.seen.setdefault(col, set())
                    n, example = self.dups.get(col, (0, None))
                    fresh = values[~values.duplicated()]
                    dup = pd.concat([values[values.duplicated()], fresh[fresh.isin(seen)]])
                    if len(dup) and example is None:
                        example = _plain(dup.iloc[0])
                    self.dups[col] = (n + len(dup), example)
                    seen.update(fresh.tolist())
            elif c.check == CheckKind.RANGE and cols:
                s = chunk[cols[0]].dropna()
                if not t.is_numeric_dtype(s) or t.is_bool_dtype(s):
                    continue
                mask = pd.Series(False, index=s.index)
                if "min" in c.options:
                    mask |= s < c.options["min"]
                if "max" in c.options:
                    mask |= s > c.options["max"]
                self._bad(i, s[mask])
            elif c.check == CheckKind.ALLOWED and cols:
                s = chunk[cols[0]].dropna()
                allowed = c.options["values"]
                ok = s.isin(allowed) | s.astype(str).isin([str(v) for v in allowed])
                self._bad(i, s[~ok])
            elif c.check == CheckKind.COLUMNS and isinstance(c.options["columns"], Mapping):
                for col, dtype in c.options["columns"].items():
                    if dtype == Dtype.DATETIME and col in chunk.columns:
                        s = chunk[col].dropna()
                        if t.is_datetime64_any_dtype(s):
                            continue
                        parsed = pd.to_datetime(s.astype(str), errors="coerce", format="mixed")
                        self.not_dates[col] = self.not_dates.get(col, 0) + int(parsed.isna().sum())

    def _bad(self, i: int, values: Any) -> None:
        n, examples = self.bad.get(i, (0, []))
        examples = examples + [_plain(v) for v in values[:3]]
        self.bad[i] = (n + len(values), examples[:3])


def inspect_outs(
    root: str,
    outs: Sequence[str],
    checks: Sequence[CheckSpec],
    previous: Mapping[str, Any],
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[list[CheckResult], dict[str, Any]]:
    """Profile every tabular out in ``outs`` and run ``checks``; ``previous`` maps each out
    to its profile in the last successful build (for drift). Returns (results, profiles)."""
    results: list[CheckResult] = []
    profiles: dict[str, Any] = {}
    for rel in outs:
        if not is_tabular(rel):
            continue
        mine = [c for c in checks if rel in c.outs]
        profile, found = _inspect(root, rel, mine, previous.get(rel), chunk_rows)
        profiles[rel] = profile
        results.extend(found)
    return results, profiles


def _inspect(
    root: str, rel: str, checks: Sequence[CheckSpec], previous: Any, chunk_rows: int
) -> tuple[dict[str, Any], list[CheckResult]]:
    bins = max([c.options["bins"] for c in checks if c.check == CheckKind.DRIFT] or [10])
    text: set[str] = set()
    while True:  # again, with more columns read as text, when a column changes kind
        stats, rows, row_checks, retry = _first_pass(root, rel, checks, chunk_rows, text)
        if not retry:
            break
        text |= retry
    old_cols: Mapping[str, Any] = (previous or {}).get("columns", {})
    numeric = [n for n, s in stats.items() if s.numeric and s.count]
    ref_counts: dict[str, list[int]] = {}
    if numeric:
        for name in numeric:
            s = stats[name]
            s.edges = equal_edges(float(s.min), float(s.max), bins)
            s.counts = [0] * max(len(s.edges) - 1, 1)
        ref_edges = {
            n: old_cols[n]["histogram"]["edges"]
            for n in numeric
            if isinstance(old_cols.get(n), Mapping) and "histogram" in old_cols[n]
        }
        for chunk in read_chunks(root, rel, chunk_rows, text_columns=text):
            for name in numeric:
                values = chunk[name].dropna().astype("float64")
                s = stats[name]
                s.counts = [
                    a + b for a, b in zip(s.counts, numeric_counts(values, s.edges), strict=True)
                ]
                if name in ref_edges:
                    got = numeric_counts(values, ref_edges[name])
                    old = ref_counts.get(name, [0] * len(got))
                    ref_counts[name] = [a + b for a, b in zip(old, got, strict=True)]
    profile = finish_profile(rows, stats)
    found: list[CheckResult] = []
    for i, check in enumerate(checks):
        found.extend(_judge(root, rel, i, check, rows, stats, row_checks, old_cols, ref_counts))
    return profile, found


def _first_pass(
    root: str, rel: str, checks: Sequence[CheckSpec], chunk_rows: int, text: set[str]
) -> tuple[dict[str, ColumnStats], int, _RowChecks, set[str]]:
    """Statistics and row checks over every chunk; stops early with the columns to read
    as text when a chunk's values are of another kind than the earlier chunks'."""
    stats: dict[str, ColumnStats] = {}
    rows = 0
    row_checks = _RowChecks(checks)
    for chunk in read_chunks(root, rel, chunk_rows, text_columns=text):
        changed = {
            str(c) for c in chunk.columns if str(c) in stats and stats[str(c)].conflicts(chunk[c])
        }
        if changed:
            return stats, rows, row_checks, changed
        rows += len(chunk)
        for col in chunk.columns:
            stats.setdefault(str(col), ColumnStats()).update(chunk[col])
        row_checks.update(chunk)
    return stats, rows, row_checks, set()


def _missing(rel: str, col: str, stats: Mapping[str, ColumnStats]) -> str:
    close = suggest(col, stats)
    hint = f"; did you mean {close!r}?" if close else ""
    return f"column {col!r} does not exist in {rel} (columns: {', '.join(stats) or 'none'}){hint}"


def _dtype_ok(want: str, s: ColumnStats, not_dates: int) -> bool:
    if want == Dtype.ANY:
        return True
    if want == Dtype.INT:
        return s.dtype == Dtype.INT or (s.dtype == Dtype.FLOAT and s.integral) or s.count == 0
    if want == Dtype.FLOAT:
        return s.dtype in (Dtype.INT, Dtype.FLOAT) or s.count == 0
    if want == Dtype.BOOL and s.dtype == Dtype.STR and s.values is not None:
        # pandas reads a CSV bool column with a gap as text: True/False and nulls.
        return bool(s.values) and set(s.values) <= {"True", "False", "true", "false"}
    if want == Dtype.DATETIME:
        return s.dtype == Dtype.DATETIME or (s.dtype == Dtype.STR and not_dates == 0)
    return s.dtype == want or s.count == 0


def _judge(  # long: one short branch per check kind, sharing `result`; read top to bottom
    root: str,
    rel: str,
    index: int,
    c: CheckSpec,
    rows: int,
    stats: Mapping[str, ColumnStats],
    row_checks: _RowChecks,
    old_cols: Mapping[str, Any],
    ref_counts: Mapping[str, list[int]],
) -> list[CheckResult]:
    def result(
        passed: bool, message: str, column: str | None = None, value: float | None = None
    ) -> CheckResult:
        return CheckResult(c.check, rel, c.severity, passed, message, column, value)

    missing = [col for col in c.columns if col not in stats]
    if missing:
        return [result(False, _missing(rel, col, stats), col) for col in missing]
    kind, o = c.check, c.options
    if kind == CheckKind.COLUMNS:
        problems: list[str] = []
        wanted = o["columns"]
        if isinstance(wanted, Mapping):
            for col, dtype in wanted.items():
                s = stats[col]
                if not _dtype_ok(dtype, s, row_checks.not_dates.get(col, 0)):
                    problems.append(f"column {col!r} is {s.dtype}, expected {dtype}")
        if o.get("strict"):
            extra = [col for col in stats if col not in wanted]
            if extra:
                problems.append(f"unexpected column(s) {', '.join(extra)}")
        return [result(not problems, "; ".join(problems) or "columns and dtypes as declared")]
    if kind == CheckKind.NOT_NULL:
        out = []
        for col in c.columns:
            n = stats[col].nulls
            out.append(
                result(
                    n == 0,
                    f"column {col!r} has {n} null value(s)" if n else f"column {col!r}: no nulls",
                    col,
                )
            )
        return out
    if kind == CheckKind.UNIQUE:
        out = []
        for col in c.columns:
            n, example = row_checks.dups.get(col, (0, None))
            msg = (
                f"column {col!r} has {n} duplicate value(s), e.g. {example!r}"
                if n
                else f"column {col!r}: all values unique"
            )
            out.append(result(n == 0, msg, col))
        return out
    if kind in (CheckKind.RANGE, CheckKind.ALLOWED):
        col = c.columns[0]
        if kind == CheckKind.RANGE and not stats[col].numeric:
            return [result(False, f"column {col!r} is {stats[col].dtype}, not numeric", col)]
        n, examples = row_checks.bad.get(index, (0, []))
        if kind == CheckKind.RANGE:
            what = f"within [{o.get('min', '-inf')}, {o.get('max', 'inf')}]"
        else:
            what = f"in {o['values']}"
        msg = f"{n} value(s) of {col!r} not {what}, e.g. {examples}" if n else f"all {what}"
        return [result(n == 0, msg, col)]
    if kind == CheckKind.ROWS:
        lo, hi = o.get("min"), o.get("max")
        ok = (lo is None or rows >= lo) and (hi is None or rows <= hi)
        bounds = f"[{lo if lo is not None else 0}, {hi if hi is not None else 'inf'}]"
        return [result(ok, f"{rows} rows, expected {bounds}")]
    if kind == CheckKind.DRIFT:
        return _drift(rel, c, stats, old_cols, ref_counts, result)
    return [_custom(root, rel, c, result)]


def _drift(
    rel: str,
    c: CheckSpec,
    stats: Mapping[str, ColumnStats],
    old_cols: Mapping[str, Any],
    ref_counts: Mapping[str, list[int]],
    result: _ResultFn,
) -> list[CheckResult]:
    if not old_cols:
        return [result(True, "no previous build to compare with")]
    max_psi, max_ks = c.options.get("max_psi"), c.options.get("max_ks")
    out: list[CheckResult] = []
    for col in c.columns or tuple(stats):
        old = old_cols.get(col)
        s = stats[col]
        if not isinstance(old, Mapping):
            out.append(result(True, f"column {col!r} is new: no previous profile", col))
            continue
        if s.count == 0 and int(old.get("count") or 0) > 0:
            msg = f"column {col!r}: every value is null now ({old.get('count')} were not)"
            out.append(result(False, msg, col))
            continue
        if s.numeric and col in ref_counts:
            old_counts = old["histogram"]["counts"]
            new_counts = ref_counts[col]
            if max_ks is not None:
                value = ks_statistic(old_counts, new_counts)
                ok = value <= max_ks
                msg = f"column {col!r}: KS {value:.4f} (max {max_ks:g})"
                out.append(result(ok, msg, col, value))
            if max_psi is not None:
                value = psi(old_counts, new_counts)
                msg = f"column {col!r}: PSI {value:.4f} (max {max_psi:g})"
                out.append(result(value <= max_psi, msg, col, value))
        elif not s.numeric and _too_many_categories(old):
            msg = (
                f"column {col!r}: not comparable: {old.get('distinct')} distinct values in "
                f"{old.get('count')} rows (an id, a date or free text?)"
            )
            out.append(result(True, msg, col))
        elif not s.numeric and "top" in old and s.values is not None and old.get("distinct"):
            a, b, _ = categorical_shares(old["top"], int(old.get("count", 0)), s.values)
            value = psi(a, b)
            limit = max_psi if max_psi is not None else 0.2
            msg = f"column {col!r}: PSI {value:.4f} (max {limit:g})"
            out.append(result(value <= limit, msg, col, value))
        else:
            out.append(result(True, f"column {col!r}: not comparable (type or cardinality)", col))
    return out


def _too_many_categories(old: Mapping[str, Any]) -> bool:
    """Drift over categories means nothing for a column of mostly distinct values (ids,
    dates stored as text) or one whose rows are mostly outside the recorded top values:
    every new value would look like a shift."""
    top = old.get("top") or []
    count = int(old.get("count") or 0)
    distinct = old.get("distinct")
    if not top or not count or distinct is None:
        return False
    covered = sum(int(t["count"]) for t in top)
    return int(distinct) > len(top) and (covered < count / 2 or int(distinct) > count / 2)


def _custom(root: str, rel: str, c: CheckSpec, result: _ResultFn) -> CheckResult:
    spec = c.options["python"]
    module_name, func_name = spec.split(":", 1)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        return result(False, f"cannot load check {spec}: {exc}")
    try:
        verdict = func(read_table(root, rel), **dict(c.options.get("args", {})))
    except Exception as exc:  # the user's check raised: it failed, with its message
        return result(False, f"{spec} raised {type(exc).__name__}: {exc}")
    verdict = _plain(verdict)  # a numpy bool from (df.x > 0).all() is a bool
    if verdict is None or verdict is True:
        return result(True, f"{spec} passed")
    if verdict is False:
        return result(False, f"{spec} returned False")
    return result(False, f"{spec}: {verdict}")
