"""Profiles of tabular outs, accumulated chunk by chunk, and drift between two profiles.

Profile format (``mlbuild.profile/v1``, stored in manifests under ``profile.tables[path]``)::

    {"rows": 1000, "columns": {
       "age":  {"dtype": "int", "nulls": 0, "count": 1000, "min": 18, "max": 90,
                "mean": 41.2, "std": 12.9,
                "histogram": {"edges": [18.0, 25.2, …, 90.0], "counts": [97, …]}},
       "city": {"dtype": "str", "nulls": 3, "count": 997, "distinct": 12,
                "top": [{"value": "Oslo", "count": 310}, …]}}}

Numeric columns get ``bins`` equal-width bins between their min and max (a second pass over
the data, since the range is known only after the first). Other columns keep the
``TOP_VALUES`` most frequent values; ``distinct`` is null when there are more than
``MAX_DISTINCT`` (an id column), where frequencies mean nothing.

Drift (docs/checks.md): the new data is binned on the *previous* profile's bins, the outer
bins open to ±infinity, and compared by the Population Stability Index
``PSI = Σ (new% − old%) · ln(new% / old%)`` (each share floored at ``EPSILON``), or for
numeric columns by the Kolmogorov–Smirnov statistic over those bins, max |CDF_old − CDF_new|.
Categorical columns use the previous top values plus one "other" bucket.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..kinds import Dtype

__all__ = [
    "EPSILON",
    "MAX_DISTINCT",
    "TOP_VALUES",
    "ColumnStats",
    "categorical_shares",
    "finish_profile",
    "ks_statistic",
    "numeric_counts",
    "psi",
]

TOP_VALUES = 20
MAX_DISTINCT = 10_000
EPSILON = 1e-4


def _finite(value: Any) -> float | int | None:
    if value is None:
        return None
    f = float(value)
    if not math.isfinite(f):
        return None
    return int(value) if isinstance(value, int) or (f.is_integer() and abs(f) < 2**53) else f


def dtype_label(series: Any) -> str:
    from pandas.api import types as t

    if t.is_bool_dtype(series):
        return "bool"
    if t.is_integer_dtype(series):
        return "int"
    if t.is_float_dtype(series):
        return "float"
    if t.is_datetime64_any_dtype(series):
        return "datetime"
    if t.is_string_dtype(series) or t.is_object_dtype(series):
        return "str"
    return str(series.dtype)


_WIDER = {("int", "float"): "float", ("float", "int"): "float"}


@dataclass
class ColumnStats:
    """Running statistics of one column over the chunks seen so far."""

    dtype: str = ""
    nulls: int = 0
    count: int = 0
    integral: bool = True  # every non-null float value is whole (an int column with nulls)
    min: Any = None
    max: Any = None
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations (Chan et al.'s parallel variance)
    values: dict[str, int] | None = field(default_factory=dict)  # None: over MAX_DISTINCT
    counts: list[int] = field(default_factory=list)  # histogram on `edges` (second pass)
    edges: list[float] = field(default_factory=list)

    @property
    def numeric(self) -> bool:
        return self.dtype in (Dtype.INT, Dtype.FLOAT)

    def conflicts(self, series: Any) -> bool:
        """True when ``series`` (a later chunk) has values of another kind than the chunks
        before it (numbers, then text): the column must be read again as text."""
        if not self.dtype or self.count == 0 or series.notna().sum() == 0:
            return False
        label = dtype_label(series)
        return label != self.dtype and (self.dtype, label) not in _WIDER

    @property
    def label(self) -> str:
        """The dtype as one read of the whole column gives it: an int column with nulls
        reads as float (integral), whichever chunks the nulls fell in."""
        if self.dtype == Dtype.INT and self.nulls:
            return "float"
        return self.dtype or "str"

    def update(self, series: Any) -> None:
        label = dtype_label(series)
        nonnull = series.dropna()
        if len(nonnull) or not self.dtype:
            if not self.dtype or self.dtype == label:
                self.dtype = label
            else:
                self.dtype = _WIDER.get((self.dtype, label), "str")
        self.nulls += int(len(series) - len(nonnull))
        n = len(nonnull)
        if n == 0:
            return
        if label in (Dtype.INT, Dtype.FLOAT):
            values = nonnull.astype("float64")
            if label == Dtype.FLOAT and self.integral:
                self.integral = bool(((values % 1) == 0).all())
            lo, hi = values.min(), values.max()
            self.min = lo if self.min is None else min(self.min, lo)
            self.max = hi if self.max is None else max(self.max, hi)
            mean = float(values.mean())
            m2 = float(((values - mean) ** 2).sum())
            total = self.count + n
            delta = mean - self.mean
            self.m2 += m2 + delta * delta * self.count * n / total
            self.mean += delta * n / total
            self.count = total
        else:
            self.count += n
            if self.values is not None:
                for value, c in nonnull.astype(str).value_counts().items():
                    self.values[str(value)] = self.values.get(str(value), 0) + int(c)
                if len(self.values) > MAX_DISTINCT:
                    self.values = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"dtype": self.label, "nulls": self.nulls}
        data["count"] = self.count
        if self.numeric:
            data["min"] = _finite(self.min)
            data["max"] = _finite(self.max)
            data["mean"] = _finite(self.mean) if self.count else None
            data["std"] = _finite(math.sqrt(self.m2 / self.count)) if self.count else None
            if self.edges:
                data["histogram"] = {"edges": self.edges, "counts": self.counts}
        else:
            if self.values is None:
                data["distinct"] = None
                data["top"] = []
            else:
                data["distinct"] = len(self.values)
                top = sorted(self.values.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_VALUES]
                data["top"] = [{"value": v, "count": c} for v, c in top]
        return data


def equal_edges(lo: float, hi: float, bins: int) -> list[float]:
    """``bins`` equal-width bins over [lo, hi]. A constant column gets three: below, at and
    above its value, so a later build where the value moves shows up as drift."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if lo == hi:
        above = math.nextafter(lo, math.inf)
        return [lo, lo, above, above]
    step = (hi - lo) / bins
    return [lo + i * step for i in range(bins)] + [hi]


def numeric_counts(values: Any, edges: Sequence[float]) -> list[int]:
    """Counts of ``values`` (non-null floats) in the bins of ``edges``; the outer bins are
    open, so values outside the range land in the first or last bin."""
    import numpy as np

    if len(edges) < 2:
        return [int(len(values))]
    inner = np.asarray(edges[1:-1], dtype="float64")
    idx = np.searchsorted(inner, np.asarray(values, dtype="float64"), side="right")
    return [int(c) for c in np.bincount(idx, minlength=len(edges) - 1)]


def finish_profile(rows: int, stats: Mapping[str, ColumnStats]) -> dict[str, Any]:
    return {"rows": rows, "columns": {name: s.to_json() for name, s in stats.items()}}


def _shares(counts: Sequence[float]) -> list[float]:
    total = float(sum(counts))
    if total <= 0:
        return [1.0 / len(counts)] * len(counts) if counts else []
    return [max(c / total, EPSILON) for c in counts]


def psi(old: Sequence[float], new: Sequence[float]) -> float:
    """Population Stability Index of two histograms on the same bins."""
    a, b = _shares(old), _shares(new)
    return float(sum((q - p) * math.log(q / p) for p, q in zip(a, b, strict=True)))


def ks_statistic(old: Sequence[float], new: Sequence[float]) -> float:
    """Max distance between the two binned CDFs (a lower bound of the exact KS D)."""
    total_a, total_b = float(sum(old)) or 1.0, float(sum(new)) or 1.0
    ca = cb = 0.0
    worst = 0.0
    for x, y in zip(old, new, strict=True):
        ca += x / total_a
        cb += y / total_b
        worst = max(worst, abs(ca - cb))
    return worst


def categorical_shares(
    old_top: Sequence[Mapping[str, Any]], old_count: int, new_values: Mapping[str, int]
) -> tuple[list[float], list[float], list[str]]:
    """Old and new counts over the previous top values plus "other"; and the bucket names."""
    names = [str(item["value"]) for item in old_top]
    old = [float(item["count"]) for item in old_top]
    old.append(max(float(old_count) - sum(old), 0.0))
    new_total = float(sum(new_values.values()))
    new = [float(new_values.get(n, 0)) for n in names]
    new.append(max(new_total - sum(new), 0.0))
    return old, new, [*names, "(other)"]
