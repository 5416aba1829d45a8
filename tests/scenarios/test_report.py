"""`mlbuild report`: one self-contained HTML page over a real build (the renderer's own
unit tests are in tests/unit/test_htmlreport_unit.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from html.parser import HTMLParser

from tests.conftest import Project

Workspace = Callable[..., Project]

PIPELINE = """
targets:
  data:raw:
    cmd: python make.py ${outs[0]}
    outs: [data/raw.csv]
    checks:
      - {check: rows, min: 3}
      - {check: drift, columns: [x], max_psi: 0.2}
  model:{algo}:
    matrix: {algo: [small, big]}
    cmd: python train.py ${algo} ${outs}
    deps: [data:raw]
    outs: ["models/${algo}.txt"]
    metrics: ["metrics/${algo}.json"]
  model:prod:
    promote: {from: "model:*", by: score}
    gate: [{metric: score, min: 0.5}]
    outs: [models/prod.txt]
"""
FILES = {
    "make.py": "import sys\nopen(sys.argv[1], 'w').write('x,y\\n1,a\\n2,b\\n3,a\\n4,c\\n')\n",
    "train.py": (
        "import json, sys\nalgo, model, metrics = sys.argv[1:]\n"
        "open(model, 'w').write(algo)\n"
        "json.dump({'score': {'small': 0.6, 'big': 0.8}[algo]}, open(metrics, 'w'))\n"
    ),
}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [v or "" for _, v in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_writes_a_self_contained_page_of_the_build(workspace: Workspace) -> None:
    p = workspace(PIPELINE, FILES)
    p.build("model:prod")
    run = p.mlbuild("report", "-o", "out/report.html")
    assert run.code == 0, run.err
    page = _Text()
    page.feed(p.read("out/report.html"))
    text = " ".join(page.text)
    for name in ("data:raw", "model:small", "model:big", "model:prod"):
        assert name in text
    assert "0.8" in text and "0.6" in text  # metrics and sweep bars
    assert "winner" in text and "model:big" in text
    assert "rows" in text and "4 rows" in text  # the rows check's message
    assert "svg" in page.tags
    assert not any(a.startswith(("http:", "https:", "//", "file:")) for a in page.attrs)
    assert not {"script", "link", "img", "iframe"} & set(page.tags)


def test_report_json_is_the_data_behind_the_page(workspace: Workspace) -> None:
    p = workspace(PIPELINE, FILES)
    p.build("model:prod")
    p.replace("mlbuild.yaml", "min: 3", "min: 2")
    data = json.loads(p.mlbuild("report", "--json", "-o", "-").out)
    by_name = {t["name"]: t for t in data["targets"]}
    assert by_name["model:prod"]["promotion"]["winner"] == "model:big"
    assert by_name["model:prod"]["metrics"] == {"score": 0.8}
    assert by_name["data:raw"]["status"] == "stale"  # the rows check changed
    assert by_name["data:raw"]["profile"]["data/raw.csv"]["rows"] == 4
    sweep = next(s for s in data["sweeps"] if s["template"] == "model:{algo}")
    assert [m["target"] for m in sweep["members"]] == ["model:big", "model:small"]  # build order
