"""A plot file's bytes → the plain data one plot draws, per `PlotSpec`.

Formats, by extension, as DVC reads them: CSV and TSV (a header row), JSON and YAML (a list of
records, ``{column: [values]}``, or one key holding a list of records, as
``{"train": [{...}]}``). A build wrote the file, so it is read as untrusted: YAML is composed
and refused before its values are built when aliases would blow it up (config.yaml's guard,
as for metrics files), sizes are capped, and every problem is `PlotDataError`, one line
naming the file (and the column or row).

Defaults, as DVC's templates: line, scatter and bar plot y = the last column against x =
``step`` if the data has it, else the row number; confusion counts (actual, predicted)
pairs; roc draws tpr against fpr, pr precision against recall.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..config.schema import PLOT_DEFAULTS
from ..config.specs import PlotSpec
from ..errors import UsageError
from ..suggest import did_you_mean

__all__ = ["MAX_BYTES", "MAX_LABELS", "PlotDataError", "Table", "plot_data", "read_table"]

MAX_BYTES = 64 * 1024 * 1024  # a larger plot file is refused, not read
MAX_LABELS = 50  # categories of a bar plot or classes of a confusion matrix
STEP = "step"  # DVC's name for the row number, and the x it prefers
XY_KINDS = ("line", "scatter", "roc", "pr")

Table = dict[str, list[Any]]  # column -> values, in the file's column order


class PlotDataError(UsageError):
    """A plot file that cannot be drawn as declared (exit 2): one line naming it."""


# --------------------------------------------------------------------------- reading


def read_table(rel: str, raw: bytes, shown: str | None = None) -> Table:
    """The columns of plot file ``rel`` (its bytes ``raw``; its extension picks the format),
    named ``shown`` in messages (``plots/loss.csv@HEAD``)."""
    low = rel.lower()
    rel = shown or rel
    if len(raw) > MAX_BYTES:
        raise PlotDataError(
            f"plot file {rel} is {len(raw)} bytes: larger than {MAX_BYTES} bytes",
            hint="write a summary (every Nth step) for plotting",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlotDataError(f"plot file {rel} is not UTF-8 text ({exc.reason})") from None
    try:
        if low.endswith((".csv", ".tsv")):
            return _delimited(rel, text, "\t" if low.endswith(".tsv") else ",")
        return _records(rel, _json(rel, text) if low.endswith(".json") else _yaml(rel, text))
    except RecursionError:
        raise PlotDataError(f"plot file {rel} is nested too deeply to read") from None


def _scalar(text: str) -> Any:
    """A CSV cell as a number when it reads as one (empty: None)."""
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _delimited(rel: str, text: str, sep: str) -> Table:
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))
    except csv.Error as exc:
        raise PlotDataError(f"plot file {rel} is not valid CSV ({exc})") from None
    rows = [r for r in rows if r]
    if not rows:
        raise PlotDataError(f"plot file {rel} is empty", hint="a header row, then the data")
    head = rows[0]
    if len(set(head)) != len(head):
        raise PlotDataError(f"plot file {rel} names a column twice in its header")
    table: Table = {name: [] for name in head}
    for n, row in enumerate(rows[1:], 2):
        if len(row) != len(head):
            raise PlotDataError(
                f"plot file {rel}: line {n} has {len(row)} fields, the header {len(head)}"
            )
        for name, cell in zip(head, row, strict=True):
            table[name].append(_scalar(cell))
    return table


def _json(rel: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise PlotDataError(f"plot file {rel} is not valid JSON ({exc})") from None


def _yaml(rel: str, text: str) -> Any:
    from ..config.yaml import DataYamlError, load_data_yaml

    try:
        return load_data_yaml(text)
    except DataYamlError as exc:
        raise PlotDataError(f"plot file {rel} is {exc}") from None


def _records(rel: str, data: Any) -> Table:
    """A list of records, ``{column: [values]}``, or ``{key: [records]}``, as columns."""
    if isinstance(data, Mapping) and len(data) == 1:
        (only,) = data.values()
        if isinstance(only, list) and all(isinstance(r, Mapping) for r in only):
            data = only
    if isinstance(data, list):
        if not all(isinstance(r, Mapping) for r in data):
            raise PlotDataError(f"plot file {rel}: every entry of the list must be a record")
        names = list(dict.fromkeys(str(k) for r in data for k in r))
        return {n: [r.get(n) for r in data] for n in names}
    if isinstance(data, Mapping) and data and all(isinstance(v, list) for v in data.values()):
        lengths = {len(v) for v in data.values()}
        if len(lengths) > 1:
            raise PlotDataError(f"plot file {rel}: its columns have different lengths")
        return {str(k): list(v) for k, v in data.items()}
    raise PlotDataError(
        f"plot file {rel} must hold a list of records or {{column: [values]}}, "
        f"not {type(data).__name__}",
    )


# --------------------------------------------------------------------------- one plot


def _column(rel: str, table: Table, name: str, role: str) -> list[Any]:
    if name not in table:
        known = list(table)
        raise PlotDataError(
            f"plot file {rel} has no {role} column {name!r}",
            hint=did_you_mean(name, known) or f"its columns: {', '.join(known) or 'none'}",
        )
    return table[name]


def _numbers(rel: str, name: str, values: Sequence[Any]) -> list[float]:
    out: list[float] = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise PlotDataError(
                f"plot file {rel}: column {name!r}, row {i + 1} is {str(v)[:40]!r}, "
                "not a finite number"
            )
        out.append(float(v) if isinstance(v, float) else v)
    return out


def _axes(spec: PlotSpec, table: Table) -> tuple[str | None, list[str]]:
    """The x column (None: the row number) and the y columns, defaults applied."""
    dx, dy = PLOT_DEFAULTS[spec.kind]
    x = spec.x or dx or (STEP if STEP in table else None)
    if spec.y:
        return x, list(spec.y)
    if dy is not None:
        return x, [dy]
    rest = [c for c in table if c != x]
    if not rest:
        raise PlotDataError(f"plot file {spec.path} has no column to plot against {x}")
    return x, [rest[-1]]


def _label(value: Any) -> str:
    return "null" if value is None else str(value)


def _sorted_labels(values: Sequence[Any]) -> list[str]:
    """Distinct class labels: numerically when all are numbers, else as text."""
    unique = list(dict.fromkeys(values))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in unique):
        unique.sort()
        return [_label(v) for v in unique]
    return sorted({_label(v) for v in unique})


def plot_data(spec: PlotSpec, table: Table) -> dict[str, Any]:
    """One revision of one plot, as plain data: ``series`` ([{y, x, values}]) for the xy
    kinds and bar, ``labels`` and ``counts`` (rows actual, columns predicted) for confusion."""
    rel = spec.path
    x, ys = _axes(spec, table)
    if spec.kind == "confusion":
        assert x is not None
        actual = _column(rel, table, x, "x")
        predicted = _column(rel, table, ys[0], "y")
        labels = _sorted_labels([*actual, *predicted])
        if len(labels) > MAX_LABELS:
            raise PlotDataError(
                f"plot file {rel} has {len(labels)} classes: more than {MAX_LABELS} to draw"
            )
        index = {lab: i for i, lab in enumerate(labels)}
        counts = [[0] * len(labels) for _ in labels]
        for a, p in zip(actual, predicted, strict=True):
            counts[index[_label(a)]][index[_label(p)]] += 1
        return {"x": x, "y": ys, "labels": labels, "counts": counts}
    series = []
    for y in ys:
        values = _numbers(rel, y, _column(rel, table, y, "y"))
        if spec.kind == "bar":
            xs: list[Any] = (
                [_label(v) for v in _column(rel, table, x, "x")]
                if x
                else [str(i) for i in range(len(values))]
            )
            if len(xs) > MAX_LABELS:
                raise PlotDataError(
                    f"plot file {rel} has {len(xs)} bars: more than {MAX_LABELS} to draw",
                    hint="a line plot draws many points",
                )
        else:
            xs = _numbers(rel, x, _column(rel, table, x, "x")) if x else list(range(len(values)))
        series.append({"y": y, "x": xs, "values": values})
    return {"x": x or STEP, "y": ys, "series": series}
