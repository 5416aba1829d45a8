"""The HTML report page (mlbuild.render.html): what a reader of the page relies on.

The page is parsed back with the standard library's HTMLParser into a tiny tree, so the
assertions are about elements and their text (the browser's view), not about substrings of
the markup.
"""

from __future__ import annotations

import copy
import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from mlbuild.render.html import MAX_DAG_TARGETS, render_html

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "source", "area", "base"}
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "firefox")


class Node:
    """One element of the parsed page."""

    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag, self.attrs = tag, attrs
        self.children: list[Node | str] = []

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def own_text(self) -> str:
        """Text directly inside this element, without that of its children."""
        return "".join(c for c in self.children if isinstance(c, str))

    def elements(self) -> list[Node]:
        """Every element below this one, in document order."""
        found: list[Node] = []
        for child in self.children:
            if isinstance(child, Node):
                found += [child, *child.elements()]
        return found

    def find_all(self, tag: str, cls: str | None = None) -> list[Node]:
        return [e for e in self.elements() if e.tag == tag and (cls is None or cls in e.classes)]

    def cells(self) -> list[str]:
        return [td.text() for td in self.find_all("td")]


class Collector(HTMLParser):
    """HTMLParser into a Node tree; also records every start tag and attribute seen."""

    def __init__(self) -> None:
        super().__init__()
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.tags: list[str] = []
        self.attr_values: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.tags.append(tag)
        self.attr_values += [v or "" for _, v in attrs]
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(page: str) -> Collector:
    collector = Collector()
    collector.feed(page)
    collector.close()
    assert collector.stack == [collector.root], "unclosed elements"
    return collector


def section(doc: Collector, title: str) -> Node:
    for sec in doc.root.find_all("section"):
        if sec.find_all("h2")[0].text() == title:
            return sec
    raise AssertionError(f"no section {title!r}")


def rows(node: Node) -> list[Node]:
    return [tr for tr in node.find_all("tr") if tr.find_all("td")]


def target(name: str, status: str, deps: list[str], **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name, "kind": name.split(":")[0], "desc": "", "deps": deps, "status": status,
        "reason": "" if status == "fresh" else f"{name} changed", "manifest": None,
        "build_status": None, "finished": None, "seconds": None, "metrics": None,
        "checks": [], "gates": [], "promotion": None, "profile": None,
    }  # fmt: skip
    return base | fields


def sample() -> dict[str, Any]:
    """A small demo workspace: data → features → two swept models → a promoted model."""
    profile = {
        "data/raw.csv": {
            "rows": 569,
            "columns": {
                "city": {
                    "dtype": "str",
                    "nulls": 2,
                    "count": 567,
                    "distinct": 3,
                    "top": [{"value": "Oslo", "count": 300}, {"value": "Bergen", "count": 200}],
                },
                "age": {
                    "dtype": "int",
                    "nulls": 0,
                    "count": 569,
                    "min": 1,
                    "max": 9,
                    "mean": 4.25,
                    "std": 1.1,
                    "histogram": {
                        "edges": [float(i) for i in range(11)],
                        "counts": [1, 5, 9, 20, 40, 60, 40, 20, 9, 5],
                    },
                },
            },
        }
    }
    checks = [
        {
            "check": "rows",
            "out": "data/raw.csv",
            "severity": "error",
            "passed": True,
            "message": "569 rows (min 100)",
        },
        {
            "check": "drift",
            "out": "data/raw.csv",
            "severity": "warn",
            "passed": True,
            "message": "column 'age': PSI 0.0100 (max 0.2)",
            "column": "age",
            "value": 0.01,
        },
        {
            "check": "drift",
            "out": "data/raw.csv",
            "severity": "error",
            "passed": False,
            "message": "column 'city': PSI 0.3100 (max 0.2)",
            "column": "city",
            "value": 0.31,
        },
    ]
    gates = [
        {
            "metric": "accuracy",
            "min": 0.9,
            "passed": True,
            "value": 0.97,
            "previous": 0.96,
            "message": "accuracy 0.97 >= 0.9",
        },
        {
            "metric": "accuracy",
            "max_drop": 0.005,
            "passed": False,
            "value": 0.97,
            "previous": 0.99,
            "message": "accuracy dropped 0.02 (max 0.005)",
        },
    ]
    promotion = {
        "from": "model:*",
        "by": "accuracy",
        "mode": "max",
        "winner": "model:logreg",
        "scores": {"model:logreg": 0.97, "model:forest": 0.93},
    }
    return {
        "title": "demo",
        "generated": "2026-11-27T01:20:00Z",
        "targets": [
            target("data:raw", "fresh", [], desc="raw rows", manifest="sha256:" + "ab" * 32,
                   build_status="built", finished="2026-11-27T01:10:00.123Z", seconds=1.234,
                   checks=checks, profile=profile),
            target("features:all", "stale", ["data:raw"]),
            target("model:logreg", "restorable", ["features:all"],
                   metrics={"accuracy": 0.97, "rows.test": 142}),
            target("model:forest", "never-built", ["features:all"],
                   metrics={"accuracy": 0.93, "f1": 0.9}),
            target("model:prod", "fresh", ["model:logreg", "model:forest"],
                   metrics={"accuracy": 0.97}, gates=gates, promotion=promotion),
        ],
        "sweeps": [{"template": "model:{algo}", "vars": ["algo"], "members": [
            {"target": "model:logreg", "matrix": {"algo": "logreg"},
             "metrics": {"accuracy": 0.97, "rows.test": 142}},
            {"target": "model:forest", "matrix": {"algo": "forest"},
             "metrics": {"accuracy": 0.93, "f1": 0.9}},
            {"target": "model:svm", "matrix": {"algo": "svm"}, "metrics": None},
        ]}],
    }  # fmt: skip


@pytest.fixture
def doc() -> Collector:
    return parse(render_html(sample()))


def test_every_target_appears_in_the_status_table_with_its_status(doc: Collector) -> None:
    table = rows(section(doc, "Status"))
    by_name = {tr.find_all("td")[0].own_text(): tr.cells() for tr in table}
    assert {n: c[2] for n, c in by_name.items()} == {
        "data:raw": "fresh",
        "features:all": "stale",
        "model:logreg": "restorable",
        "model:forest": "never-built",
        "model:prod": "fresh",
    }
    raw = by_name["data:raw"]
    assert raw[0] == "data:rawraw rows"  # the description sits under the name
    assert raw[1:] == [
        "data", "fresh", "", "2026-11-27T01:10:00.123Z", "1.23 s", "built", "sha256:abababababab",
    ]  # fmt: skip
    assert by_name["features:all"][3] == "features:all changed"
    assert by_name["features:all"][4:] == ["–", "–", "–", "–"]


def test_header_counts_targets_by_status(doc: Collector) -> None:
    header = doc.root.find_all("p")[0].text()
    assert "2026-11-27T01:20:00Z" in header
    assert "5 targets: fresh 2, stale 1, restorable 1, never-built 1" in header
    assert doc.root.find_all("h1")[0].text() == "mlbuild report: demo"


def test_dag_draws_one_node_per_target_and_one_edge_per_dependency(doc: Collector) -> None:
    svg = section(doc, "Graph").find_all("svg", "dag")[0]
    nodes = {g.find_all("title")[0].text(): g for g in svg.find_all("g", "node")}
    assert sorted(nodes) == sorted(f"{t['name']} ({t['status']})" for t in sample()["targets"])
    assert nodes["features:all (stale)"].classes == {"node", "stale"}
    edges = [p.find_all("title")[0].text() for p in svg.find_all("path", "edge")]
    expected = [f"{d} → {t['name']}" for t in sample()["targets"] for d in t["deps"]]
    assert sorted(edges) == sorted(expected)

    # Layers: a target sits one column right of its deepest dep, so every edge points right.
    x = {t.split(" (")[0]: float(g.find_all("rect")[0].attrs["x"]) for t, g in nodes.items()}
    assert x["data:raw"] < x["features:all"] < x["model:logreg"] == x["model:forest"]
    assert x["model:forest"] < x["model:prod"]


def test_dag_is_skipped_with_a_note_above_the_limit() -> None:
    n = MAX_DAG_TARGETS + 1
    data = {"title": "big", "generated": "now", "sweeps": [], "targets": [
        target(f"t:{i}", "fresh", [f"t:{i - 1}"] if i else []) for i in range(n)
    ]}  # fmt: skip
    graph = section(parse(render_html(data)), "Graph")
    assert graph.find_all("svg") == []
    assert f"{n} targets" in graph.text()
    assert len(rows(section(parse(render_html(data)), "Status"))) == n


def test_metrics_table_holds_the_numbers_and_a_dash_when_absent(doc: Collector) -> None:
    sec = section(doc, "Metrics")
    heads = [th.text() for th in sec.find_all("th")]
    assert heads == ["target", "accuracy", "f1", "rows.test"]
    assert [tr.cells() for tr in rows(sec)] == [
        ["model:logreg", "0.97", "–", "142"],
        ["model:forest", "0.93", "0.9", "–"],
        ["model:prod", "0.97", "–", "–"],
    ]


def test_sweep_chart_has_one_bar_per_member_per_metric(doc: Collector) -> None:
    sec = section(doc, "Sweeps")
    assert "model:{algo}" in sec.find_all("h3")[0].text()
    charts = sec.find_all("svg", "chart")
    texts = [[t.text() for t in c.find_all("text")] for c in charts]
    assert [t[0] for t in texts] == ["accuracy", "f1", "rows.test"]
    for chart in charts:
        assert len(chart.find_all("rect", "bar")) == 3
    assert texts[0][1:] == ["model:logreg", "0.97", "model:forest", "0.93", "model:svm", "–"]
    widths = [float(r.attrs["width"]) for r in charts[0].find_all("rect", "bar")]
    assert widths[0] > widths[1] > widths[2] == 0


def test_failed_checks_are_marked_failed_with_their_message(doc: Collector) -> None:
    table = rows(section(doc, "Checks"))
    assert len(table) == 3
    failed = [tr for tr in table if "failed" in tr.classes]
    assert [tr.cells() for tr in failed] == [
        ["data:raw", "data/raw.csv", "drift", "error", "fail",
         "column 'city': PSI 0.3100 (max 0.2)"],
    ]  # fmt: skip
    assert failed[0].find_all("span", "fail")
    assert [tr.cells()[4] for tr in table if "failed" not in tr.classes] == ["pass", "pass"]


def test_drift_section_shows_each_column_value_and_verdict(doc: Collector) -> None:
    table = rows(section(doc, "Drift"))
    assert [tr.cells()[2:5] for tr in table] == [["age", "0.01", "pass"], ["city", "0.31", "fail"]]


def test_gates_and_promotion_show_verdicts_and_highlight_the_winner(doc: Collector) -> None:
    sec = section(doc, "Gates and promotion")
    assert [h.text() for h in sec.find_all("h3")] == ["model:prod"]
    tables = sec.find_all("table")
    gates = [tr.cells() for tr in rows(tables[0])]
    assert gates[0][:5] == ["accuracy", "min 0.9", "0.97", "0.96", "pass"]
    assert gates[1][1:5] == ["max_drop 0.005", "0.97", "0.99", "fail"]
    winners = [tr.cells() for tr in rows(tables[1]) if "winner" in tr.classes]
    assert winners == [["model:logreg", "0.97", "★ winner"]]
    assert [tr.cells()[0] for tr in rows(tables[1])] == ["model:forest", "model:logreg"]


def test_profile_shows_columns_with_stats_top_values_and_histogram(doc: Collector) -> None:
    sec = section(doc, "Profiles")
    assert sec.find_all("h3")[0].text() == "data:raw · data/raw.csv 569 rows"
    table = {tr.cells()[0]: tr for tr in rows(sec)}
    assert table["age"].cells()[1:7] == ["int", "0", "1", "9", "4.25", "–"]
    assert table["city"].cells()[1:7] == ["str", "2", "–", "–", "–", "Oslo (300), Bergen (200)"]
    assert len(table["age"].find_all("rect", "hbar")) == 10
    assert table["city"].find_all("svg") == []


def test_hostile_names_are_escaped_and_cannot_inject_tags() -> None:
    evil = "<script>alert(\"x\")</script> & 'q' <img src=x onerror=1>"
    data = sample()
    data["title"] = evil
    data["targets"][0]["name"] = evil
    data["targets"][1]["deps"] = [evil]
    data["targets"][2]["metrics"] = {evil: 1.0}
    data["targets"][0]["checks"][2]["message"] = evil
    data["targets"][0]["checks"][2]["column"] = evil
    page = render_html(data)
    doc = parse(page)
    assert {"script", "img"}.isdisjoint(doc.tags)
    assert "<script>" not in page and "<img" not in page
    assert not any("onerror" in v for v in doc.attr_values)
    status = [tr.find_all("td")[0].own_text() for tr in rows(section(doc, "Status"))]
    assert evil in status
    assert evil in [th.text() for th in section(doc, "Metrics").find_all("th")]
    assert evil in [tr.cells()[5] for tr in rows(section(doc, "Checks"))]
    assert evil in [tr.cells()[2] for tr in rows(section(doc, "Drift"))]
    edges = [p.text() for p in section(doc, "Graph").find_all("path", "edge")]
    assert f"{evil} → features:all" in edges


def test_page_references_nothing_outside_itself(doc: Collector) -> None:
    for value in doc.attr_values:
        for bad in ("http:", "https:", "//", "file:"):
            assert bad not in value.lower(), value
    assert {"script", "link", "img", "iframe", "object", "embed"}.isdisjoint(doc.tags)
    css = doc.root.find_all("style")[0].text()
    assert "url(" not in css and "@import" not in css


def test_identical_input_gives_identical_output_whatever_the_mapping_order() -> None:
    data = sample()
    shuffled = copy.deepcopy(data)
    shuffled["targets"][2]["metrics"] = {"rows.test": 142, "accuracy": 0.97}
    promo = shuffled["targets"][4]["promotion"]
    promo["scores"] = dict(reversed(list(promo["scores"].items())))
    prof = shuffled["targets"][0]["profile"]["data/raw.csv"]
    prof["columns"] = dict(reversed(list(prof["columns"].items())))
    assert render_html(data) == render_html(copy.deepcopy(data)) == render_html(shuffled)


def test_missing_and_non_finite_numbers_render_as_a_dash() -> None:
    data = sample()
    data["targets"][2]["metrics"] = {"a": math.nan, "b": math.inf, "c": None, "d": -math.inf}
    data["targets"][0]["seconds"] = math.nan
    doc = parse(render_html(data))
    metrics = section(doc, "Metrics")
    heads = [th.text() for th in metrics.find_all("th")]
    logreg = dict(zip(heads, rows(metrics)[0].cells(), strict=True))
    assert [logreg[k] for k in ("target", "a", "b", "c", "d")] == ["model:logreg", *"––––"]
    assert rows(section(doc, "Status"))[0].cells()[5] == "–"


def test_empty_workspace_says_so_in_every_section() -> None:
    doc = parse(render_html({"title": "empty", "generated": "now", "targets": [], "sweeps": []}))
    for sec in doc.root.find_all("section"):
        empty = sec.find_all("p", "empty")
        assert len(empty) == 1 and empty[0].text(), sec.find_all("h2")[0].text()
        assert sec.find_all("table") == [] and sec.find_all("svg") == []


def test_page_renders_in_a_headless_browser(tmp_path: Path) -> None:
    found = [(name, path) for name in BROWSERS if (path := shutil.which(name))]
    if not found:
        pytest.skip(f"no headless browser on this machine: none of {', '.join(BROWSERS)} on PATH")
    name, exe = found[0]
    page, shot = tmp_path / "report.html", tmp_path / "report.png"
    page.write_text(render_html(sample()), encoding="utf-8")
    if name == "firefox":
        cmd = [exe, "--headless", "--screenshot", str(shot), page.as_uri()]
    else:
        cmd = [
            exe, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2400",
            f"--screenshot={shot}", page.as_uri(),
        ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert shot.exists() and shot.stat().st_size > 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
