"""A small SVG writer for plots: axes with ticks, polylines, points, bars, heatmap cells and a
legend. Pure functions of their arguments, with no dependency (docs/design.md, "Plots:
rendering", says why not matplotlib or Vega-Lite).

The bytes are deterministic (same data, same page: coordinates rounded to 0.01, no ids, no
dates). A plot file is data a build wrote, so every text from it reaches the SVG escaped and
as element content only; attributes carry numbers and fixed class names. A line longer than
`MAX_POINTS` is downsampled (the min and max of each bucket kept, so peaks survive) and the
chart says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

__all__ = [
    "MAX_POINTS",
    "PALETTE",
    "Series",
    "bar_chart",
    "confusion_chart",
    "downsample",
    "nice_ticks",
    "xy_chart",
]

MAX_POINTS = 2000  # per series; more are downsampled to about this many
W, H = 520, 320  # one chart
LEFT, RIGHT, TOP, BOTTOM = 58, 16, 30, 46
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
MAX_LABEL = 40  # characters of a label drawn (the whole text stays in its <title>)


@dataclass(frozen=True)
class Series:
    """One line (or set of points) of an xy chart."""

    label: str
    xs: Sequence[float]
    ys: Sequence[float]


def _e(value: Any) -> str:
    """Escaped text: the only way data reaches the SVG."""
    return escape(str(value), quote=True)


def _clip(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _n(value: float) -> str:
    """A coordinate: two decimals at most, no ``-0``."""
    if not math.isfinite(value):
        return "0"
    text = f"{round(value, 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _tick_text(value: float) -> str:
    return f"{value:.4g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round values covering [lo, hi] (steps of 1, 2 or 5 × 10^k)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:  # one value: a unit around it
        lo, hi = lo - 0.5, hi + 0.5
    if not math.isfinite(hi - lo):  # a span past the largest float: the two ends only
        return [lo, hi]
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks: list[float] = []
    value = start
    while value <= hi + step * 1e-9 and len(ticks) < 50:
        ticks.append(round(value, 12))
        value = start + step * len(ticks)
    if ticks[-1] < hi:
        ticks.append(round(value, 12))
    return ticks


def downsample(
    xs: Sequence[float], ys: Sequence[float], limit: int = MAX_POINTS
) -> tuple[list[float], list[float]]:
    """At most about ``limit`` points of a line, in order: the first and last points, and
    the lowest and highest y of each of ``limit // 2`` equal buckets (so spikes show)."""
    n = len(xs)
    if n <= limit:
        return list(xs), list(ys)
    buckets = max(limit // 2, 1)
    keep: set[int] = {0, n - 1}
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        if lo >= hi:
            continue
        idx = range(lo, hi)
        keep.add(min(idx, key=lambda i: (ys[i], i)))
        keep.add(max(idx, key=lambda i: (ys[i], -i)))
    order = sorted(keep)
    return [xs[i] for i in order], [ys[i] for i in order]


def _stride(values: Sequence[float]) -> int:
    return max(1, math.ceil(len(values) / MAX_POINTS))


class _Scale:
    """Data → pixels along one axis."""

    def __init__(self, lo: float, hi: float, start: float, end: float) -> None:
        self.ticks = nice_ticks(lo, hi)
        self.lo, self.hi = self.ticks[0], self.ticks[-1]
        self.start, self.end = start, end

    def __call__(self, value: float) -> float:
        # Halves: a span wider than the largest float still divides.
        span = self.hi / 2 - self.lo / 2 or 1.0
        return self.start + (value / 2 - self.lo / 2) / span * (self.end - self.start)


def _open(title: str, width: int = W, height: int = H) -> list[str]:
    return [
        f'<svg class="plot" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">',
        f"<title>{_e(title)}</title>",
        # ~6.5 px a character at 11 px bold: the title never runs out of the chart
        f'<text class="ptitle" x="{LEFT}" y="18">'
        f"{_e(_clip(title, int((width - LEFT) / 6.5)))}</text>",
    ]


def _axes(sx: _Scale | None, sy: _Scale, x_label: str, y_label: str) -> list[str]:
    """Frame, grid lines, tick labels and axis titles (no x ticks without ``sx``: bars
    label their own)."""
    x0, x1, y0, y1 = LEFT, W - RIGHT, H - BOTTOM, TOP
    parts = [f'<rect class="frame" x="{x0}" y="{y1}" width="{x1 - x0}" height="{y0 - y1}"/>']
    for t in sx.ticks if sx is not None else ():
        assert sx is not None
        x = _n(sx(t))
        parts.append(
            f'<line class="grid" x1="{x}" y1="{y1}" x2="{x}" y2="{y0}"/>'
            f'<text class="tick" x="{x}" y="{y0 + 14}" text-anchor="middle">'
            f"{_e(_tick_text(t))}</text>"
        )
    for t in sy.ticks:
        y = _n(sy(t))
        parts.append(
            f'<line class="grid" x1="{x0}" y1="{y}" x2="{x1}" y2="{y}"/>'
            f'<text class="tick" x="{x0 - 4}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{_e(_tick_text(t))}</text>'
        )
    parts.append(
        f'<text class="axis" x="{(x0 + x1) // 2}" y="{H - 8}" text-anchor="middle">'
        f"{_e(_clip(x_label))}</text>"
        f'<text class="axis" x="12" y="{(y0 + y1) // 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {(y0 + y1) // 2})">{_e(_clip(y_label))}</text>'
    )
    return parts


def _legend(labels: Sequence[str], x: int, y: int) -> list[str]:
    """A swatch and a label per series, stacked at the top right corner of the area."""
    if len(labels) < 2:
        return []
    parts = []
    for i, label in enumerate(labels):
        color = PALETTE[i % len(PALETTE)]
        ly = y + 14 * i
        parts.append(
            f'<rect x="{x}" y="{ly}" width="10" height="10" fill="{color}"/>'
            f'<text class="legend" x="{x + 14}" y="{ly + 9}">{_e(_clip(label, 30))}</text>'
        )
    return parts


def xy_chart(
    title: str,
    x_label: str,
    y_label: str,
    series: Sequence[Series],
    *,
    points: bool = False,
    unit: bool = False,
    diagonal: bool = False,
) -> str:
    """Lines (or points) of every series over shared axes. ``unit``: both axes span at least
    [0, 1] (roc, pr); ``diagonal``: the chance line of an ROC curve."""
    drawn = [
        (s, *(downsample(s.xs, s.ys) if not points else (list(s.xs), list(s.ys))))
        for s in series
    ]
    if points:  # a scatter of more than MAX_POINTS points keeps every k-th
        drawn = [(s, xs[:: _stride(xs)], ys[:: _stride(ys)]) for s, xs, ys in drawn]
    every_x = [v for _, xs, _ in drawn for v in xs] + ([0.0, 1.0] if unit else [])
    every_y = [v for _, _, ys in drawn for v in ys] + ([0.0, 1.0] if unit else [])
    sx = _Scale(min(every_x, default=0.0), max(every_x, default=1.0), LEFT, W - RIGHT)
    sy = _Scale(min(every_y, default=0.0), max(every_y, default=1.0), H - BOTTOM, TOP)
    parts = _open(title) + _axes(sx, sy, x_label, y_label)
    if diagonal:
        parts.append(
            f'<line class="chance" x1="{_n(sx(0))}" y1="{_n(sy(0))}" '
            f'x2="{_n(sx(1))}" y2="{_n(sy(1))}"/>'
        )
    for i, (s, xs, ys) in enumerate(drawn):
        color = PALETTE[i % len(PALETTE)]
        coords = [(_n(sx(x)), _n(sy(y))) for x, y in zip(xs, ys, strict=True)]
        if points:
            parts.append(f'<g fill="{color}">')
            parts.extend(f'<circle cx="{x}" cy="{y}" r="2.5"/>' for x, y in coords)
            parts.append("</g>")
        elif coords:
            path = " ".join(f"{x},{y}" for x, y in coords)
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{path}">'
                f"<title>{_e(s.label)}</title></polyline>"
            )
    # ROC curves hug the top left: their legend goes to the empty bottom right
    top = H - BOTTOM - 8 - 14 * len(series) if diagonal else TOP + 6
    parts += _legend([s.label for s in series], W - RIGHT - 150, top)
    cut = [s.label for s, xs, _ in drawn if len(xs) < len(s.xs)]
    if cut:
        parts.append(
            f'<text class="note" x="{W - RIGHT}" y="{H - 24}" text-anchor="end">'
            f"downsampled to at most ~{MAX_POINTS} points: {_e(_clip(', '.join(cut)))}</text>"
        )
    return "".join(parts) + "</svg>"


def bar_chart(
    title: str, x_label: str, y_label: str, labels: Sequence[str], values: Sequence[float]
) -> str:
    """Vertical bars, one per label in the given order, from zero."""
    sy = _Scale(min([0.0, *values]), max([0.0, *values]), H - BOTTOM, TOP)
    parts = _open(title)
    x0, x1 = LEFT, W - RIGHT
    parts += _axes(None, sy, x_label, y_label)
    slot = (x1 - x0) / max(len(labels), 1)
    zero = sy(0.0)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        top, bottom = sorted((sy(value), zero))
        x = x0 + i * slot + slot * 0.15
        parts.append(
            f'<rect class="pbar" x="{_n(x)}" y="{_n(top)}" width="{_n(slot * 0.7)}" '
            f'height="{_n(bottom - top)}"><title>{_e(label)}: {_e(_tick_text(value))}</title>'
            f'</rect><text class="tick" x="{_n(x + slot * 0.35)}" y="{H - BOTTOM + 14}" '
            f'text-anchor="middle">{_e(_clip(label, max(3, int(slot // 7))))}</text>'
        )
    return "".join(parts) + "</svg>"


def confusion_chart(
    title: str, x_label: str, y_label: str, labels: Sequence[str], counts: Sequence[Sequence[int]]
) -> str:
    """A heatmap: a row per actual class (``x_label``), a column per predicted class
    (``y_label``), each cell shaded by its share of the row and labelled with its count."""
    n = max(len(labels), 1)
    cell = max(16, min(72, (min(W, H) - TOP - BOTTOM) // n))
    size = max(LEFT + 40 + cell * n + RIGHT, 320)  # room for the title
    height = TOP + 30 + cell * n + BOTTOM
    parts = _open(title, size, height)
    gx, gy = LEFT + 40, TOP + 30
    for j, label in enumerate(labels):
        parts.append(
            f'<text class="tick" x="{gx + j * cell + cell // 2}" y="{gy - 6}" '
            f'text-anchor="middle">{_e(_clip(label, 10))}</text>'
        )
    for i, (label, row) in enumerate(zip(labels, counts, strict=True)):
        total = sum(row) or 1
        y = gy + i * cell
        parts.append(
            f'<text class="tick" x="{gx - 4}" y="{y + cell // 2}" text-anchor="end" '
            f'dominant-baseline="middle">{_e(_clip(label, 10))}</text>'
        )
        for j, count in enumerate(row):
            share = count / total
            dark = " dark" if share > 0.5 else ""
            parts.append(
                f'<rect class="cell" x="{gx + j * cell}" y="{y}" width="{cell}" '
                f'height="{cell}" fill-opacity="{_n(0.08 + 0.92 * share)}">'
                f"<title>actual {_e(label)}, predicted {_e(labels[j])}: {count}</title></rect>"
                f'<text class="count{dark}" x="{gx + j * cell + cell // 2}" '
                f'y="{y + cell // 2}" text-anchor="middle" dominant-baseline="middle">'
                f"{count}</text>"
            )
    parts.append(
        f'<text class="axis" x="{gx + cell * n // 2}" y="{TOP + 10}" text-anchor="middle">'
        f"{_e(_clip(y_label))}</text>"
        f'<text class="axis" x="12" y="{gy + cell * n // 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {gy + cell * n // 2})">{_e(_clip(x_label))}</text>'
    )
    return "".join(parts) + "</svg>"
