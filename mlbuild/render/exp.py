"""`mlbuild exp show`: the experiments table (experiments.ExperimentTable) as aligned text,
a rich table on a terminal, Markdown (``--md``) or CSV (``--csv``).

Every format has the same columns: ``target``, ``when`` (the build's finish time, UTC, to
the second; CSV the full recorded time), ``id`` (the manifest id's first 12 hex digits,
which `mlbuild diff`, `rollback --to` and `manifest show`-style commands take as a prefix;
CSV the full id), ``status``, then the metrics, then the param columns. Metrics are
formatted as every table formats numbers (`tables.fmt`); params print as their JSON,
exactly as written (inputs, never rounded); an absent value is ``-``. CSV holds exact
values: numbers unrounded, an absent value empty.

On a terminal (rich, imported only there) and in Markdown the best value of each metric
column is bold: the highest, or the lowest for a metric the pipeline declares lower is
better (`experiments.metric_directions`); ties are all bold, and a column whose values are
all equal has no best. Plain text marks nothing, so it diffs and greps as `metrics show`
does.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypeGuard

from .tables import columns, fmt, markdown_table, md_code

if TYPE_CHECKING:
    from ..experiments import Experiment, ExperimentTable

__all__ = ["NO_EXPERIMENTS", "best_cells", "exp_csv", "exp_lines", "exp_markdown", "print_table"]

NO_EXPERIMENTS = "no builds recorded for these targets: build them first (`mlbuild TARGET`)"
_FIXED = ["target", "when", "id", "status"]
_SHORT_ID = 12  # hex digits shown: plenty to be unique, and a valid prefix for `diff`


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def best_cells(table: ExperimentTable) -> set[tuple[int, str]]:
    """(row index, metric) of each metric column's best value (every tie), numbers only;
    a column whose numbers are all equal has none."""
    from ..experiments import Direction

    found: set[tuple[int, str]] = set()
    for metric in table.metrics:
        numbers = [
            (i, v) for i, r in enumerate(table.rows) if _is_number(v := r.metrics.get(metric))
        ]
        if len({v for _, v in numbers}) < 2:
            continue  # one value (or none): nothing to pick out
        pick = min if table.best.get(metric) is Direction.MIN else max
        best = pick(v for _, v in numbers)
        found.update((i, metric) for i, v in numbers if v == best)
    return found


def _when(finished: str | None) -> str:
    """``2026-12-03T16:50:53.341187Z`` as ``2026-12-03T16:50:53Z``."""
    if not finished:
        return "-"
    head, dot, _ = finished.partition(".")
    return f"{head}Z" if dot and finished.endswith("Z") else finished


def _short(mid: str) -> str:
    return mid.split(":", 1)[-1][:_SHORT_ID]


def _param(row: Experiment, key: str) -> str | None:
    """A param cell: its JSON, or None when the row's lineage does not read the key."""
    return json.dumps(row.params[key], ensure_ascii=False) if key in row.params else None


def _header(table: ExperimentTable) -> list[str]:
    return [*_FIXED, *table.metrics, *table.params]


def exp_lines(table: ExperimentTable) -> list[str]:
    """Aligned text, as `metrics show` prints it (for pipes and CI logs)."""
    if not table.rows:
        return [NO_EXPERIMENTS]
    rows = [_header(table)]
    for r in table.rows:
        rows.append(
            [
                r.target,
                _when(r.finished),
                _short(r.manifest),
                r.status,
                *(fmt(r.metrics.get(m)) for m in table.metrics),
                *(_param(r, k) or "-" for k in table.params),
            ]
        )
    return columns(rows)


def exp_markdown(table: ExperimentTable) -> list[str]:
    """GitHub Markdown: names, text and param values as code spans (nothing a record holds
    becomes a link or HTML), numbers plain and right-aligned, the best of each metric bold."""
    if not table.rows:
        return [NO_EXPERIMENTS]
    best = best_cells(table)

    def metric(i: int, m: str) -> str:
        value = table.rows[i].metrics.get(m)
        if value is None or _is_number(value):
            text = fmt(value)
            return f"**{text}**" if (i, m) in best else text
        return md_code(fmt(value))

    rows = [[md_code(h) if h not in _FIXED else h for h in _header(table)]]
    for i, r in enumerate(table.rows):
        rows.append(
            [
                md_code(r.target),
                md_code(_when(r.finished)),
                md_code(_short(r.manifest)),
                md_code(r.status),
                *(metric(i, m) for m in table.metrics),
                *(md_code(_param(r, k) or "") or "-" for k in table.params),
            ]
        )
    right = [False] * len(_FIXED) + [True] * len(table.metrics) + [False] * len(table.params)
    return markdown_table(rows, right)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)  # exact numbers, true/false, lists as JSON


def exp_csv(table: ExperimentTable) -> str:
    """CSV with a header row (``\\n`` line ends), exact values: for a spreadsheet or pandas."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["target", "finished", "manifest", "status", *table.metrics, *table.params])
    for r in table.rows:
        writer.writerow(
            [
                r.target,
                r.finished or "",
                r.manifest,
                r.status,
                *(_csv_value(r.metrics.get(m)) for m in table.metrics),
                *(_csv_value(r.params.get(k)) for k in table.params),
            ]
        )
    return out.getvalue()


def print_table(table: ExperimentTable, *, color: bool, console: Any = None) -> None:
    """The table on a terminal (``console``: a rich Console, stdout's by default): a rich
    table, the best value of each metric bold. Every cell is a `Text`, so nothing a record
    holds is read as rich markup."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    if console is None:
        console = Console(highlight=False, no_color=not color)
    if not table.rows:
        console.print(Text(NO_EXPERIMENTS))
        return
    best = best_cells(table)
    grid = Table(box=None, header_style="bold", pad_edge=False)
    for name in _FIXED:
        grid.add_column(name, no_wrap=True)
    for name in table.metrics:
        grid.add_column(Text(name), justify="right", header_style="bold yellow")
    for name in table.params:
        grid.add_column(Text(name), header_style="bold magenta")
    for i, r in enumerate(table.rows):
        grid.add_row(
            Text(r.target),
            Text(_when(r.finished)),
            Text(_short(r.manifest), style="cyan"),
            Text(r.status),
            *(
                Text(fmt(r.metrics.get(m)), style="bold" if (i, m) in best else "")
                for m in table.metrics
            ),
            *(Text(_param(r, k) or "-") for k in table.params),
        )
    # Never squeezed to the terminal (columns of "…"): a table wider than it is printed
    # whole, and the terminal wraps its lines (`| less -S` scrolls them), as text would.
    natural = console.measure(grid, options=console.options.update_width(10_000)).maximum
    console.width = max(console.width, natural)
    console.print(grid, crop=False)
