"""Aligned text tables: `metrics show`, `metrics diff`, `params diff` and `audit`.

Cells are plain strings; columns are padded to their widest cell, two spaces apart, with
no trailing blanks (so the output diffs cleanly in CI logs). Numbers print with six
significant digits, absent values as ``-``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..kinds import ChangeKind

if TYPE_CHECKING:
    from ..experiments import ParamChange
    from ..metrics import MetricChange
    from ..provenance.findings import AuditReport

__all__ = [
    "audit_lines",
    "columns",
    "fmt",
    "metrics_diff_lines",
    "metrics_lines",
    "params_diff_lines",
]


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def columns(rows: list[list[str]]) -> list[str]:
    """Rows of cells as aligned text lines (first row: the header)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def metrics_lines(table: Mapping[str, Mapping[str, Any]], stale: Sequence[str]) -> list[str]:
    """Targets × the union of their metric names; a target that is not fresh is marked
    ``(stale)`` and named again below, since its metrics are not those of its inputs now."""
    if not table:
        return ["no metrics recorded: declare metrics: [FILE] on a target and build it"]
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


def metrics_diff_lines(changes: Sequence[MetricChange], base: str) -> list[str]:
    if not changes:
        return [f"no metric changed since {base}"]
    rows = [["target", "metric", base, "now", "change", "%"]]
    for c in changes:
        rel = c.relative
        rows.append(
            [
                c.target,
                c.metric,
                fmt(c.old),
                fmt(c.new),
                "-" if c.delta is None else f"{c.delta:+.6g}",
                "-" if rel is None else f"{rel * 100:+.2f}%",
            ]
        )
    return columns(rows)


def params_diff_lines(changes: Sequence[ParamChange], base: str) -> list[str]:
    if not changes:
        return [f"no param changed since {base}"]
    rows = [["param", base, "now", "stale"]]
    for c in changes:
        old = "(absent)" if c.change == ChangeKind.ADDED else json.dumps(c.old)
        new = "(absent)" if c.change == ChangeKind.REMOVED else json.dumps(c.new)
        rows.append([c.key, old, new, ", ".join(c.stale)])
    return columns(rows)


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
    verdict = "ok" if report.ok else f"{len(report.findings)} violation(s)"
    suffix = "" if style == "table" else "\n"
    lines.append(f"{suffix}audit: {len(report.targets)} target(s): {verdict}")
    return lines
