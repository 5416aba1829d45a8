"""Plots without a process: reading plot files (mlbuild/plots/data.py) and drawing them
(render/svg.py, render/plots.py) — every kind renders, hostile labels stay text, the bytes
are deterministic, long lines are downsampled, and bad data is one line naming the file."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from mlbuild.config.specs import PlotSpec
from mlbuild.plots.data import PlotDataError, plot_data, read_table
from mlbuild.render import svg
from mlbuild.render.plots import plot_figure, plots_page

HOSTILE = '<script>alert("x")</script>&<img src=x onerror=y>'


def _plot(spec: PlotSpec, *revs: tuple[str, bytes]) -> dict[str, Any]:
    """What plots/sources.py `collect` makes of ``spec`` over the given (label, bytes)."""
    entries, axes = [], {}
    for label, raw in revs:
        drawn = plot_data(spec, read_table(spec.path, raw))
        axes = {"x": drawn.pop("x"), "y": drawn.pop("y")}
        entries.append({"rev": label, **drawn})
    return {"target": "t", **spec.to_json(), **axes, "revs": entries, "skipped": []}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [name for name, _ in attrs]


# Billion laughs: 10^6 values from six lines, refused before any is built.
BOMB = b"a: &a [x,x,x,x,x,x,x,x,x,x]\n" + b"".join(
    f"{n}: &{n} [{','.join(['*' + p] * 10)}]\n".encode()
    for p, n in zip("abcde", "bcdef", strict=True)
)
CSV = b"step,loss,acc\n0,1.0,0.5\n1,0.5,0.7\n2,0.25,0.9\n"


@pytest.mark.parametrize(
    ("spec", "raw", "mark"),
    [
        (PlotSpec("l.csv"), CSV, "<polyline"),
        (PlotSpec("s.tsv", "scatter", y=("loss", "acc")), CSV.replace(b",", b"\t"), "<circle"),
        (PlotSpec("b.json", "bar", x="k", y=("v",)), b'[{"k": "a", "v": 2}, {"k": "b", "v": -1}]',
         'class="pbar"'),
        (PlotSpec("c.yaml", "confusion"), b"actual: [0, 1, 1]\npredicted: [0, 1, 0]\n",
         'class="cell"'),
        (PlotSpec("r.csv", "roc"), b"fpr,tpr\n0,0\n0.2,0.8\n1,1\n", 'class="chance"'),
        (PlotSpec("p.json", "pr"), b'{"pr": [{"recall": 0, "precision": 1}, '
         b'{"recall": 1, "precision": 0.5}]}', "<polyline"),
    ],
)
def test_each_kind_renders_an_inline_svg_from_each_format(
    spec: PlotSpec, raw: bytes, mark: str
) -> None:
    html = plot_figure(_plot(spec, ("workspace", raw)))
    assert html.count("<svg") == 1 and mark in html


def test_a_line_plot_defaults_to_the_last_column_against_step() -> None:
    drawn = plot_data(PlotSpec("l.csv"), read_table("l.csv", CSV))
    assert drawn["x"] == "step" and drawn["y"] == ["acc"]
    assert drawn["series"][0]["values"] == [0.5, 0.7, 0.9]
    no_step = plot_data(PlotSpec("l.csv"), read_table("l.csv", b"a,b\n5,1\n6,2\n"))
    assert no_step["series"][0]["x"] == [0, 1]  # the row number


def test_confusion_counts_actual_by_predicted_with_numeric_labels_in_order() -> None:
    raw = b'[{"actual": 10, "predicted": 2}, {"actual": 2, "predicted": 2}]'
    drawn = plot_data(PlotSpec("c.json", "confusion"), read_table("c.json", raw))
    assert drawn["labels"] == ["2", "10"] and drawn["counts"] == [[1, 0], [1, 0]]


def test_revisions_overlay_as_series_with_a_legend_and_bars_side_by_side() -> None:
    other = b"step,loss,acc\n0,2,0.1\n1,1,0.2\n"
    line = plot_figure(_plot(PlotSpec("l.csv"), ("HEAD", other), ("workspace", CSV)))
    assert line.count("<polyline") == 2 and ">HEAD</text>" in line and ">workspace</text>" in line
    bars = plot_figure(
        _plot(PlotSpec("b.csv", "bar"), ("HEAD", b"k,v\na,1\n"), ("workspace", b"k,v\na,2\n"))
    )
    assert bars.count("<svg") == 2 and "HEAD: t: b.csv" in bars


def test_hostile_labels_stay_escaped_text_never_markup() -> None:
    raw = ("actual,predicted\n" + f'"{HOSTILE}",1\n1,"{HOSTILE}"\n').encode()
    spec = PlotSpec("c.csv", "confusion", title=HOSTILE)
    page = plots_page([{**_plot(spec, (HOSTILE, raw)), "target": HOSTILE}], HOSTILE)
    bar_raw = f'k,v\n"{HOSTILE}",1\n'.encode()
    bars = plot_figure(_plot(PlotSpec("b.csv", "bar", x="k"), (HOSTILE, bar_raw)))
    for html in (page, bars):
        parser = _Tags()
        parser.feed(html)
        assert "script" not in parser.tags and "img" not in parser.tags
        assert not any(a.startswith("on") for a in parser.attrs)
        assert "&lt;script&gt;" in html


def test_the_same_data_gives_the_same_bytes() -> None:
    spec = PlotSpec("r.csv", "roc", title="t")
    raw = b"fpr,tpr\n0,0\n0.1,0.6\n0.33333333,0.9\n1,1\n"
    first = plots_page([_plot(spec, ("a", raw), ("b", raw))], "p")
    assert first == plots_page([_plot(spec, ("a", raw), ("b", raw))], "p")
    assert not re.search(r"\d\.\d{3,}", first)  # coordinates rounded


def test_a_long_line_is_downsampled_keeping_its_spikes_and_says_so() -> None:
    n = 50_000
    ys = [0.0] * n
    ys[12_345] = 100.0  # one spike
    xs, kept = svg.downsample(list(range(n)), ys)
    assert len(xs) <= svg.MAX_POINTS + 2 and 100.0 in kept and xs[0] == 0 and xs[-1] == n - 1
    chart = svg.xy_chart("t", "x", "y", [svg.Series("s", list(range(n)), ys)])
    points = re.search(r'points="([^"]*)"', chart)
    assert points is not None and len(points.group(1).split()) <= svg.MAX_POINTS + 2
    assert "downsampled to at most ~2000 points" in chart


@pytest.mark.parametrize(
    ("lo", "hi"), [(0.0, 0.0), (5.0, 1.0), (-1e308, 1e308), (1e-9, 2e-9), (3.0, 3.0)]
)
def test_ticks_cover_any_finite_range(lo: float, hi: float) -> None:
    ticks = svg.nice_ticks(lo, hi)
    assert ticks[0] <= min(lo, hi) and ticks[-1] >= max(lo, hi) and len(ticks) <= 50
    chart = svg.xy_chart("t", "x", "y", [svg.Series("s", [0.0, 1.0], [lo, hi])])
    assert not re.search(r'="[^"]*(nan|inf)', chart)  # no coordinate lost on the way


@pytest.mark.parametrize(
    ("spec", "raw", "message"),
    [
        (PlotSpec("l.csv", y=("los",)), CSV, "plot file l.csv has no y column 'los'"),
        (PlotSpec("l.csv"), b"step,loss\n0,abc\n", "column 'loss', row 1 is 'abc'"),
        (PlotSpec("l.csv"), b"a,b\n1\n", "plot file l.csv: line 2 has 1 fields, the header 2"),
        (PlotSpec("l.csv"), b"", "plot file l.csv is empty"),
        (PlotSpec("l.csv"), b"\xff\xfe", "plot file l.csv is not UTF-8 text"),
        (PlotSpec("l.json"), b"{nope", "plot file l.json is not valid JSON"),
        (PlotSpec("l.json"), b'"text"', "must hold a list of records or {column: [values]}"),
        (PlotSpec("l.json"), b'{"a": [1, 2], "b": [1]}', "its columns have different lengths"),
        (PlotSpec("l.yaml"), BOMB, "plot file l.yaml is not usable: YAML aliases expand"),
        (PlotSpec("l.yaml"), b"a: [1, 2\n", "plot file l.yaml is not valid YAML"),
        (PlotSpec("c.csv", "confusion"), b"actual,predicted\n" + b"".join(
            f"{i},0\n".encode() for i in range(60)), "60 classes: more than 50 to draw"),
    ],
)
def test_bad_data_is_one_line_naming_the_file(spec: PlotSpec, raw: bytes, message: str) -> None:
    with pytest.raises(PlotDataError) as err:
        plot_data(spec, read_table(spec.path, raw))
    text = str(err.value)
    assert message in text and "\n" not in text
