"""Tables: `metrics show`, `metrics diff`, `params diff` and `audit`, as aligned text or,
with ``--md``, GitHub-flavoured Markdown for a pull-request comment.

Text cells are plain strings; columns are padded to their widest cell, two spaces apart,
with no trailing blanks (so the output diffs cleanly in CI logs). Absent values print as
``-``; booleans as in JSON (``true``).

Every number mlbuild prints in a table (and in `history`) goes through `fmt`: integers in
full; floats with ``DIGITS`` significant digits in positional notation (``0.0000003``, not
``3e-07``), integer digits never rounded away (``1234568``), trailing zeros dropped
(``0.25``), the exponent form only from 1e16 or below 1e-15 (``1e+20``, where positional
would print 15 zeros). A change (``signed=True``) has its sign. One rule for every row and
column, so ``+0.0000003`` and ``+0.0025`` read alike; ``--json`` has the exact values.

Markdown tables escape what a value could smuggle in: names and text values are code spans
(no emphasis, link, HTML or @mention can come out of a metrics file or a param key) with
``|`` escaped, and line breaks become spaces, so one value is always one cell.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..kinds import ChangeKind
from ..plural import counted

if TYPE_CHECKING:
    from ..experiments import ParamChange
    from ..metrics import MetricChange
    from ..provenance.findings import AuditReport

__all__ = [
    "DIGITS",
    "audit_lines",
    "columns",
    "fmt",
    "markdown_table",
    "md_code",
    "metrics_diff_lines",
    "metrics_diff_markdown",
    "metrics_lines",
    "metrics_markdown",
    "params_diff_lines",
    "params_diff_markdown",
]

DIGITS = 6  # significant digits of a float in every table


def fmt(value: Any, *, signed: bool = False) -> str:
    """A value as a table shows it (see the module doc); ``signed`` for a change."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:+d}" if signed else str(value)
    if isinstance(value, float):
        return _float(value, signed)
    return str(value)


def _float(value: float, signed: bool) -> str:
    sign = "+" if signed else ""
    if value == 0:
        value = 0.0  # no "-0"
    if not math.isfinite(value):
        return str(value)  # not a metric value (those are null), but never a crash
    # The exponent after rounding to DIGITS (0.9999996 → 1.00000e+00): no log10 edge.
    exponent = int(f"{value:.{DIGITS - 1}e}".rsplit("e", 1)[1])
    if not -16 < exponent < 16:
        # Positional would print 15+ zeros (or a float's noise digits): nobody's metric.
        return f"{value:{sign}.{DIGITS}g}"
    text = f"{value:{sign}.{max(0, DIGITS - 1 - exponent)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def columns(rows: list[list[str]]) -> list[str]:
    """Rows of cells as aligned text lines (first row: the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def md_code(text: str) -> str:
    """``text`` as an inert Markdown code span inside a table cell (CommonMark: a fence
    longer than any backtick run in it, padded when it starts or ends with one; GFM: ``|``
    escaped even in code)."""
    if not text:
        return ""
    text = text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    edge = text[0] == "`" or text[-1] == "`"
    pad = edge or (text[0] == text[-1] == " " and text.strip() != "")
    inner = f" {text} " if pad else text
    return f"{fence}{inner}{fence}".replace("|", "\\|")


def markdown_table(rows: list[list[str]], right: Sequence[bool]) -> list[str]:
    """Rows of Markdown cells (first row: the header) as a GitHub-flavoured table, padded
    so the source reads as a table too; ``right`` aligns those columns right (numbers)."""
    widths = [max(3, *(len(r[i]) for r in rows)) for i in range(len(rows[0]))]

    def line(cells: Sequence[str]) -> str:
        padded = (
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        )
        return "| " + " | ".join(padded) + " |"

    rule = "|".join("-" * (w + 1) + (":" if r else "-") for w, r in zip(widths, right, strict=True))
    rule = f"|{rule}|"
    return [line(rows[0]), rule, *(line(r) for r in rows[1:])]


def _md_value(value: Any, *, signed: bool = False) -> str:
    """A metric value in a Markdown cell: numbers and ``-`` plain, anything else a code span
    (a string metric is data from a file the build wrote)."""
    if value is None or _is_number(value):
        return fmt(value, signed=signed)
    return md_code(fmt(value))


def metrics_lines(table: Mapping[str, Mapping[str, Any]], stale: Sequence[str]) -> list[str]:
    """Targets × the union of their metric names; a target that is not fresh is marked
    ``(stale)`` and named again below, since its metrics are not those of its inputs now."""
    if not table:
        return [_NO_METRICS]
    names = sorted({m for values in table.values() for m in values})
    rows = [["target", *names]]
    for t in table:
        label = f"{t} (stale)" if t in stale else t
        rows.append([label, *(fmt(table[t].get(m)) for m in names)])
    lines = columns(rows)
    if stale:
        lines.append(
            f"stale: {', '.join(stale)}: metrics of a build whose inputs have changed since; "
            "`mlbuild status` says why"
        )
    return lines


_NO_METRICS = "no metrics recorded: declare metrics: [FILE] on a target and build it"


def metrics_markdown(table: Mapping[str, Mapping[str, Any]], stale: Sequence[str]) -> list[str]:
    """`metrics show --md`: the same table, a stale target marked *(stale)*."""
    if not table:
        return [_NO_METRICS]
    names = sorted({m for values in table.values() for m in values})
    rows = [["target", *(md_code(m) for m in names)]]
    for t in table:
        label = md_code(t) + (" *(stale)*" if t in stale else "")
        rows.append([label, *(_md_value(table[t].get(m)) for m in names)])
    return markdown_table(rows, [False] + [True] * len(names))


def _relative(change: MetricChange) -> str:
    rel = change.relative
    return "-" if rel is None else f"{rel * 100:+.2f}%"


def metrics_diff_lines(changes: Sequence[MetricChange], base: str) -> list[str]:
    if not changes:
        return [f"no metric changed since {base}"]
    rows = [["target", "metric", base, "now", "change", "%"]]
    for c in changes:
        rows.append(
            [
                c.target,
                c.metric,
                fmt(c.old),
                fmt(c.new),
                fmt(c.delta, signed=True),
                _relative(c),
            ]
        )
    return columns(rows)


def metrics_diff_markdown(changes: Sequence[MetricChange], base: str) -> list[str]:
    """`metrics diff --md`: the table of `metrics_diff_lines` in Markdown, for a pull-request
    comment; the base (a git revision) as code."""
    label = base if base == "previous build" else md_code(base)
    if not changes:
        return [f"no metric changed since {label}"]
    rows = [["target", "metric", label, "now", "change", "%"]]
    for c in changes:
        rows.append(
            [
                md_code(c.target),
                md_code(c.metric),
                _md_value(c.old),
                _md_value(c.new),
                fmt(c.delta, signed=True),
                _relative(c),
            ]
        )
    return markdown_table(rows, [False, False, True, True, True, True])


def _param_value(change: ParamChange, which: str) -> str | None:
    """The JSON of a param's old or new value; None when the key was absent then."""
    absent = ChangeKind.ADDED if which == "old" else ChangeKind.REMOVED
    return None if change.change == absent else json.dumps(getattr(change, which))


def params_diff_lines(changes: Sequence[ParamChange], base: str) -> list[str]:
    if not changes:
        return [f"no param changed since {base}"]
    rows = [["param", base, "now", "stale"]]
    for c in changes:
        old, new = _param_value(c, "old"), _param_value(c, "new")
        rows.append([c.key, old or "(absent)", new or "(absent)", ", ".join(c.stale)])
    return columns(rows)


def params_diff_markdown(changes: Sequence[ParamChange], base: str) -> list[str]:
    """`params diff --md`: values as their JSON in code spans, exactly as recorded (params
    are what a user wrote, not measurements: never rounded)."""
    label = base if base == "last build" else md_code(base)
    if not changes:
        return [f"no param changed since {label}"]
    rows = [["param", label, "now", "stale"]]
    for c in changes:
        old, new = _param_value(c, "old"), _param_value(c, "new")
        cells = [md_code(v) if v is not None else "*(absent)*" for v in (old, new)]
        rows.append([md_code(c.key), *cells, ", ".join(md_code(t) for t in c.stale)])
    return markdown_table(rows, [False, False, False, False])


def audit_lines(report: AuditReport, style: str) -> list[str]:
    """`audit --format table|md`: the findings, then a verdict line. Markdown also lists
    each audited target with its manifest, for a CI job summary."""
    header = ("target", "check", "subject", "expected", "found")
    rows = [(f.target, f.check.value, f.subject, f.expected, f.found) for f in report.findings]
    lines = []
    if style == "md":
        lines.append("| target | manifest |\n|---|---|")
        lines.extend(f"| {name} | {report.manifests.get(name) or '-'} |" for name in report.targets)
        lines.append("")
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        lines.extend("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows)
    else:
        lines.extend("  ".join(row) for row in rows)
    verdict = "ok" if report.ok else counted(len(report.findings), "violation")
    suffix = "" if style == "table" else "\n"
    lines.append(f"{suffix}audit: {counted(len(report.targets), 'target')}: {verdict}")
    return lines
