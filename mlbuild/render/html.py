"""The HTML report: one self-contained page from ``Workspace.report_data()``.

The page is meant to be mailed, attached to a CI run or opened from a laptop years later, so
it needs nothing at view time: CSS and SVG are inline, there is no script, no font, no image
and no URL of any kind, and a Content-Security-Policy of ``default-src 'none'`` makes the
browser refuse anything that slips in. Sections, top to bottom::

    header       title, generated time, target counts by status
    graph        the DAG as inline SVG (skipped, with a note, above MAX_DAG_TARGETS)
    status       target · kind · status · reason · finished · duration · build · manifest
    metrics      targets × union of metric names ("–" when absent)
    sweeps       per sweep, one bar chart per numeric metric, one bar per member
    plots        every declared ``plots:`` file in the workspace (render/plots.py), a
                 file missing or undrawable named instead
    gates        gates and promotion of the targets that have them (winner highlighted)
    checks       every check: target · out · check · severity · pass/fail · message
    drift        drift findings that name a column: its value and pass/fail
    profiles     per tabular out: rows, and per column dtype, nulls, range or top values,
                 with a tiny histogram

The DAG is drawn in layers, left to right: a target's layer is the longest path from a root
(so every edge points right), and within a layer targets sit near the mean row of their deps
(one barycentre pass, ties kept in build order), which keeps most edges short::

    layer 0      layer 1          layer 2
    data:raw ──> features ──┬──> model:a
                            └──> model:b

User-provided text (names, messages, values) only ever appears as element content, escaped,
never inside an attribute; attributes carry only fixed class names. The output is a pure
function of ``data``: mappings are iterated sorted, lists in their given order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from ..kinds import CheckKind, GateBound, words
from ..plural import counted
from .plots import PLOTS_CSS, plots_section

__all__ = ["MAX_DAG_TARGETS", "render_html"]

MAX_DAG_TARGETS = 200
DASH = "–"
STATUSES = ("fresh", "stale", "restorable", "never-built")  # header order; css class st-<s>
STATUS_HEADS = ["target", "kind", "status", "reason", "finished", "duration", "build", "manifest"]
NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD = 180, 24, 56, 8, 8

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 8px}
th{background:#f4f4f4;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.empty{color:#777;font-style:italic}small{color:#666;display:block}
.st{padding:0 6px;border-radius:3px}.st-fresh{background:#c8e6c9}.st-stale{background:#ffe0b2}
.st-restorable{background:#bbdefb}.st-never-built,.st-unknown{background:#e0e0e0}
.pass{color:#1b5e20;font-weight:bold}.fail{color:#b71c1c;font-weight:bold}
tr.failed{background:#ffebee}tr.winner{background:#fff9c4;font-weight:bold}
svg text{font:11px system-ui,sans-serif}svg .edge{fill:none;stroke:#888;stroke-width:1.2}
svg .node rect{stroke:#555}svg .fresh rect{fill:#c8e6c9}svg .stale rect{fill:#ffe0b2}
svg .restorable rect{fill:#bbdefb}svg .never-built rect,svg .unknown rect{fill:#e0e0e0}
svg .bar{fill:#5c8fd6}svg .bar.neg{fill:#d67b5c}svg .hbar{fill:#90a4ae}
.charts{display:flex;flex-wrap:wrap;gap:1em}.scroll{overflow:auto;max-height:90vh}
"""


def _e(value: Any) -> str:
    """Escaped text of any value; the single way user data reaches the page."""
    return escape(value if isinstance(value, str) else str(value), quote=True)


def _number(value: Any) -> float | None:
    """A finite real number, or None (bools are flags, not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt(value: Any) -> str:
    """Escaped display text: numbers compactly, None and non-finite as a dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return _e(value)


def _status(value: Any) -> str:
    """A css-safe status word: unknown statuses never reach an attribute."""
    return str(value) if value in STATUSES else "unknown"


def _badge(status: Any) -> str:
    return f'<span class="st st-{_status(status)}">{_fmt(status)}</span>'


def _verdict(passed: Any) -> str:
    return '<span class="pass">pass</span>' if passed else '<span class="fail">fail</span>'


def _table(heads: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]], empty: str) -> str:
    """A table of already-escaped cells; each row is (row class, cells). ``empty`` if none."""
    body = "".join(
        (f'<tr class="{cls}">' if cls else "<tr>")
        + "".join(f"<td>{c}</td>" for c in cells)
        + "</tr>"
        for cls, cells in rows
    )
    if not body:
        return f'<p class="empty">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in heads)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _short(digest: Any) -> str:
    """``sha256:0123456789ab`` from a full digest: enough to find it, short enough to read."""
    if not isinstance(digest, str):
        return DASH
    algo, _, hexpart = digest.partition(":")
    return _e(f"{algo}:{hexpart[:12]}" if hexpart else digest[:19])


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the graph --------------------------------------------------------------------------


def _layers(targets: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Longest path from a root, per target; relaxation bounded by the target count so a
    cycle (which a valid pipeline never has) cannot loop forever."""
    layer = {t["name"]: 0 for t in targets}
    for _ in range(len(targets)):
        changed = False
        for t in targets:
            for dep in t.get("deps") or []:
                if dep in layer and dep != t["name"] and layer[dep] + 1 > layer[t["name"]]:
                    layer[t["name"]] = layer[dep] + 1
                    changed = True
        if not changed:
            break
    return layer


def _dag_svg(targets: Sequence[Mapping[str, Any]]) -> str:
    if not targets:
        return '<p class="empty">No targets.</p>'
    if len(targets) > MAX_DAG_TARGETS:
        return (
            f'<p class="empty">{len(targets)} targets: the graph is drawn only up to '
            f"{MAX_DAG_TARGETS}; see the status table.</p>"
        )
    layer = _layers(targets)
    order = {t["name"]: i for i, t in enumerate(targets)}
    row: dict[str, int] = {}  # position within the layer, filled layer by layer

    def barycentre(t: Mapping[str, Any]) -> tuple[float, int]:
        rows = [row[d] for d in t.get("deps") or [] if d in row]
        return (sum(rows) / len(rows) if rows else -1.0, order[t["name"]])

    for depth in range(max(layer.values()) + 1):
        members = [t for t in targets if layer[t["name"]] == depth]
        for i, t in enumerate(sorted(members, key=barycentre)):
            row[t["name"]] = i

    def xy(name: str) -> tuple[int, int]:
        """Top-left corner of a node's box."""
        return (PAD + layer[name] * (NODE_W + COL_GAP), PAD + row[name] * (NODE_H + ROW_GAP))

    width = PAD * 2 + (max(layer.values()) + 1) * (NODE_W + COL_GAP) - COL_GAP
    height = PAD * 2 + (max(row.values()) + 1) * (NODE_H + ROW_GAP) - ROW_GAP
    parts = [
        f'<div class="scroll"><svg class="dag" width="{width}" height="{height}">',
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#888"/></marker></defs>',
    ]
    for t in targets:  # edges first, so the boxes are drawn over their ends
        x2, y = xy(t["name"])
        y2 = y + NODE_H // 2
        for dep in t.get("deps") or []:
            if dep not in row or dep == t["name"]:
                continue
            x, y = xy(dep)
            x1, y1 = x + NODE_W, y + NODE_H // 2
            mid = (x1 + x2) // 2
            parts.append(
                f'<path class="edge" marker-end="url(#arrow)" '
                f'd="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}">'
                f"<title>{_e(dep)} → {_e(t['name'])}</title></path>"
            )
    for t in targets:
        x, y = xy(t["name"])
        parts.append(
            f'<g class="node {_status(t.get("status"))}"><title>{_e(t["name"])} '
            f"({_fmt(t.get('status'))})</title>"
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="4"/>'
            f'<text x="{x + 6}" y="{y + 16}">{_e(_clip(t["name"], 28))}</text></g>'
        )
    return "".join(parts) + "</svg></div>"


# --- charts -----------------------------------------------------------------------------


def _bar_chart(metric: str, members: Sequence[Mapping[str, Any]]) -> str:
    """Horizontal bars, one per member in the given order, scaled to the largest |value|."""
    label_w, bar_w, row_h = 170, 200, 18
    values = [_number((m.get("metrics") or {}).get(metric)) for m in members]
    scale = max((abs(v) for v in values if v is not None), default=0.0) or 1.0
    height = 20 + row_h * len(members)
    parts = [
        f'<svg class="chart" width="{label_w + bar_w + 70}" height="{height}">',
        f'<text x="0" y="12">{_e(metric)}</text>',
    ]
    for i, (m, v) in enumerate(zip(members, values, strict=True)):
        y = 18 + i * row_h
        w = 0 if v is None else round(abs(v) / scale * bar_w, 1)
        neg = " neg" if v is not None and v < 0 else ""
        parts.append(
            f'<text x="0" y="{y + 12}">{_e(_clip(str(m.get("target", "")), 26))}</text>'
            f'<rect class="bar{neg}" x="{label_w}" y="{y + 2}" width="{w}" height="{row_h - 4}"/>'
            f'<text x="{label_w + w + 4}" y="{y + 12}">{_fmt(v)}</text>'
        )
    return "".join(parts) + "</svg>"


def _histogram(hist: Any) -> str:
    """A 120×28 sparkline of bin counts; empty when the profile has no histogram."""
    counts = hist.get("counts") if isinstance(hist, Mapping) else None
    if not counts:
        return ""
    top = max((_number(c) or 0.0 for c in counts), default=0.0) or 1.0
    w = 120 / len(counts)
    bars = []
    for i, c in enumerate(counts):
        h = round((_number(c) or 0.0) / top * 28, 2)
        bars.append(
            f'<rect class="hbar" x="{round(i * w, 2)}" y="{round(28 - h, 2)}" '
            f'width="{round(max(w - 1, 0.5), 2)}" height="{h}"><title>{_fmt(c)}</title></rect>'
        )
    return f'<svg class="hist" width="120" height="28">{"".join(bars)}</svg>'


# --- sections ---------------------------------------------------------------------------


def _header(data: Mapping[str, Any], targets: Sequence[Mapping[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for t in targets:
        counts[str(t.get("status"))] = counts.get(str(t.get("status")), 0) + 1
    known = [s for s in STATUSES if s in counts] + sorted(set(counts) - set(STATUSES))
    summary = ", ".join(f"{_badge(s)} {counts[s]}" for s in known) or "no targets"
    return (
        f"<h1>mlbuild report: {_e(data.get('title', ''))}</h1>"
        f"<p>Generated {_fmt(data.get('generated'))} · {counted(len(targets), 'target')}: "
        f"{summary}</p>"
    )


def _status_rows(targets: Sequence[Mapping[str, Any]]) -> Iterable[tuple[str, list[str]]]:
    for t in targets:
        desc = f"<small>{_e(t['desc'])}</small>" if t.get("desc") else ""
        secs = _number(t.get("seconds"))
        yield (
            "",
            [
                f"{_e(t['name'])}{desc}",
                _fmt(t.get("kind")),
                _badge(t.get("status")),
                _e(t.get("reason") or ""),
                _fmt(t.get("finished")),
                DASH if secs is None else f"{secs:.2f} s",
                _fmt(t.get("build_status")),
                _short(t.get("manifest")),
            ],
        )


def _metrics(targets: Sequence[Mapping[str, Any]]) -> str:
    scored = [t for t in targets if t.get("metrics")]
    names = sorted({k for t in scored for k in t["metrics"]})
    rows = (("", [_e(t["name"]), *(_fmt(t["metrics"].get(k)) for k in names)]) for t in scored)
    return _table(["target", *names], rows, "No metrics recorded.")


def _sweeps(sweeps: Sequence[Mapping[str, Any]]) -> str:
    if not sweeps:
        return '<p class="empty">No sweeps.</p>'
    parts = []
    for s in sweeps:
        members = s.get("members") or []
        pairs = ((k, v) for m in members for k, v in (m.get("metrics") or {}).items())
        names = sorted({k for k, v in pairs if _number(v) is not None})
        charts = "".join(_bar_chart(k, members) for k in names)
        parts.append(
            f"<h3>{_e(s.get('template', ''))} <small>over "
            f"{_e(', '.join(map(str, s.get('vars') or [])))}, {len(members)} members</small></h3>"
            + (
                f'<div class="charts">{charts}</div>'
                if charts
                else '<p class="empty">No numeric metrics in this sweep.</p>'
            )
        )
    return "".join(parts)


def _row(passed: Any, cells: list[str]) -> tuple[str, list[str]]:
    """A row marked ``failed`` when its check or gate did not pass, so failures stand out."""
    return ("" if passed else "failed", cells)


def _gates(targets: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for t in targets:
        gates, promo = t.get("gates") or [], t.get("promotion")
        if not gates and not promo:
            continue
        parts.append(f"<h3>{_e(t['name'])}</h3>")
        rows = [
            _row(
                g.get("passed"),
                [
                    _e(g.get("metric", "")),
                    " ".join(
                        f"{k} {_fmt(g[k])}"
                        for k in words(GateBound)
                        if k in g
                    ),
                    *(_fmt(g.get(k)) for k in ("value", "previous")),
                    _verdict(g.get("passed")),
                    _e(g.get("message", "")),
                ],
            )
            for g in gates
        ]
        heads = ["metric", "bound", "value", "previous", "result", "message"]
        parts.append(_table(heads, rows, "No gates.") if rows else "")
        if isinstance(promo, Mapping):
            winner, scores = promo.get("winner"), promo.get("scores") or {}
            parts.append(
                f"<p>Promotion from {_e(promo.get('from', ''))} by {_e(promo.get('by', ''))} "
                f"({_e(promo.get('mode', ''))}): winner <b>{_fmt(winner)}</b></p>"
            )
            ranked = (
                (
                    "winner" if n == winner else "",
                    [_e(n), _fmt(scores[n]), "★ winner" if n == winner else ""],
                )
                for n in sorted(scores)
            )
            parts.append(_table(["candidate", "score", ""], ranked, "No candidates scored."))
    return "".join(parts) or '<p class="empty">No gates or promotions.</p>'


def _checks(targets: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """The checks table and the drift table (drift findings that name a column)."""
    found = [(t["name"], c) for t in targets for c in t.get("checks") or []]
    checks = (
        _row(
            c.get("passed"),
            [
                _e(n),
                *(_e(c.get(k, "")) for k in ("out", "check", "severity")),
                _verdict(c.get("passed")),
                _e(c.get("message", "")),
            ],
        )
        for n, c in found
    )
    drift = (
        _row(
            c.get("passed"),
            [
                *(_e(v) for v in (n, c.get("out", ""), c["column"])),
                _fmt(c.get("value")),
                _verdict(c.get("passed")),
                _e(c.get("message", "")),
            ],
        )
        for n, c in found
        if c.get("check") == CheckKind.DRIFT and "column" in c
    )
    return (
        _table(
            ["target", "out", "check", "severity", "result", "message"],
            checks,
            "No checks recorded.",
        ),
        _table(
            ["target", "out", "column", "value", "result", "message"], drift, "No drift findings."
        ),
    )


def _profiles(targets: Sequence[Mapping[str, Any]]) -> str:
    heads = ["column", "dtype", "nulls", "min", "max", "mean", "top values", "histogram"]
    parts = []
    for t in targets:
        for out, prof in sorted((t.get("profile") or {}).items()):
            columns = prof.get("columns") or {}
            rows = []
            for name in sorted(columns):
                c = columns[name]
                top = ", ".join(
                    f"{_e(v.get('value'))} ({_fmt(v.get('count'))})"
                    for v in (c.get("top") or [])[:5]
                )
                stats = (_fmt(c.get(k)) for k in ("dtype", "nulls", "min", "max", "mean"))
                rows.append(("", [_e(name), *stats, top or DASH, _histogram(c.get("histogram"))]))
            parts.append(
                f"<h3>{_e(t['name'])} · {_e(out)} <small>{_fmt(prof.get('rows'))} rows</small></h3>"
                + _table(heads, rows, "No columns profiled.")
            )
    return "".join(parts) or '<p class="empty">No profiles recorded.</p>'


def render_html(data: Mapping[str, Any]) -> str:
    """The whole report page for ``data`` (the shape of ``Workspace.report_data()``)."""
    targets = [t for t in data.get("targets") or [] if isinstance(t, Mapping) and "name" in t]
    checks, drift = _checks(targets)
    sections = [
        ("Graph", _dag_svg(targets)),
        ("Status", _table(STATUS_HEADS, _status_rows(targets), "No targets.")),
        ("Metrics", _metrics(targets)),
        ("Sweeps", _sweeps(data.get("sweeps") or [])),
        ("Plots", plots_section([p for p in data.get("plots") or [] if isinstance(p, Mapping)])),
        ("Gates and promotion", _gates(targets)),
        ("Checks", checks),
        ("Drift", drift),
        ("Profiles", _profiles(targets)),
    ]
    body = "".join(f"<section><h2>{title}</h2>{html}</section>" for title, html in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>mlbuild report: {_e(data.get('title', ''))}</title>"
        f"<style>{CSS}{PLOTS_CSS}</style></head>"
        f"<body>{_header(data, targets)}{body}</body></html>\n"
    )
