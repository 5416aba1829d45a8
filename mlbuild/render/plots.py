"""Plots as HTML: the page `mlbuild plots show|diff` writes, and the section `mlbuild report`
includes, from the plain data of mlbuild/plots/ (`collect`). Charts are inline SVG from
render/svg.py; the page, as the report, needs nothing at view time (no script, no URL, a
Content-Security-Policy of ``default-src 'none'``) and is a pure function of its data.

Overlays, as ``dvc plots diff`` draws them: line, scatter, roc and pr plots draw every source
(the workspace, a build, a git revision) as one more series over shared axes, with a legend;
bar and confusion plots draw one chart per source, side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .svg import Series, bar_chart, confusion_chart, xy_chart

__all__ = ["PLOTS_CSS", "plot_figure", "plots_page", "plots_section"]

PLOTS_CSS = """
svg.plot{background:#fff;border:1px solid #e4e4e4;margin:0 .5em .5em 0}
svg.plot text{font:11px system-ui,sans-serif;fill:#333}svg.plot .ptitle{font-weight:bold}
svg.plot .frame{fill:none;stroke:#999}svg.plot .grid{stroke:#eee}
svg.plot .chance{stroke:#bbb;stroke-dasharray:4 3}svg.plot .note{fill:#a15c00}
svg.plot .pbar{fill:#1f77b4}svg.plot .cell{fill:#1f77b4}svg.plot .count.dark{fill:#fff}
.plotbox{display:inline-block;vertical-align:top;margin-right:1em}
.figs{display:flex;flex-wrap:wrap}.skipped{color:#777;font-style:italic;margin:.2em 0}
"""

_PAGE_CSS = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1200px}"
_UNIT = {"roc", "pr"}


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _title(plot: Mapping[str, Any], rev: str | None = None) -> str:
    base = str(plot.get("title") or f"{plot.get('target', '')}: {plot.get('path', '')}")
    return base if rev is None else f"{rev}: {base}"  # the source first: titles get clipped


def _xy(plot: Mapping[str, Any], revs: Sequence[Mapping[str, Any]]) -> str:
    kind = plot.get("kind")
    ys = [str(y) for y in plot.get("y") or []]
    series = []
    for rev in revs:
        for s in rev.get("series") or []:
            if len(revs) == 1:
                label = str(s.get("y", ""))
            else:
                label = str(rev.get("rev")) if len(ys) < 2 else f"{rev.get('rev')}: {s.get('y')}"
            series.append(Series(label, s.get("x") or [], s.get("values") or []))
    return xy_chart(
        _title(plot),
        str(plot.get("x") or ""),
        ", ".join(ys),
        series,
        points=kind == "scatter",
        unit=kind in _UNIT,
        diagonal=kind == "roc",
    )


def _side_by_side(plot: Mapping[str, Any], revs: Sequence[Mapping[str, Any]]) -> str:
    charts = []
    x, ys = str(plot.get("x") or ""), [str(y) for y in plot.get("y") or []]
    for rev in revs:
        title = _title(plot, str(rev.get("rev")) if len(revs) > 1 else None)
        if plot.get("kind") == "confusion":
            charts.append(
                confusion_chart(
                    title,
                    x,
                    ", ".join(ys),
                    [str(v) for v in rev.get("labels") or []],
                    rev.get("counts") or [],
                )
            )
            continue
        for s in rev.get("series") or []:
            labels = [str(v) for v in s.get("x") or []]
            charts.append(bar_chart(title, x, str(s.get("y", "")), labels, s.get("values") or []))
    return "".join(charts)


def plot_figure(plot: Mapping[str, Any]) -> str:
    """One declared plot: a heading, its chart(s), and a line per source left out."""
    revs = [r for r in plot.get("revs") or [] if isinstance(r, Mapping)]
    head = (
        f"<h3>{_e(plot.get('target', ''))} · {_e(plot.get('path', ''))} "
        f"<small>{_e(plot.get('kind', ''))}</small></h3>"
    )
    if not revs:
        body = ""
    elif plot.get("kind") in ("bar", "confusion"):
        body = _side_by_side(plot, revs)
    else:
        body = _xy(plot, revs)
    notes = "".join(
        f'<p class="skipped">{_e(s.get("rev", ""))}: {_e(s.get("why", ""))}</p>'
        for s in plot.get("skipped") or []
        if isinstance(s, Mapping)
    )
    return f'<div class="plotbox">{head}<div class="figs">{body}</div>{notes}</div>'


def plots_section(plots: Sequence[Mapping[str, Any]]) -> str:
    """Every plot, or a note that none is declared."""
    if not plots:
        return '<p class="empty">No plots declared (`plots:` in mlbuild.yaml).</p>'
    return "".join(plot_figure(p) for p in plots)


def plots_page(plots: Sequence[Mapping[str, Any]], title: str) -> str:
    """The self-contained page of `mlbuild plots show|diff`."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{_e(title)}</title><style>{_PAGE_CSS}{PLOTS_CSS}</style></head>"
        f"<body><h1>{_e(title)}</h1>{plots_section(plots)}</body></html>\n"
    )
