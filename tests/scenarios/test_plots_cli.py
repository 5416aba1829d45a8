"""`plots:` through the CLI: plot files are outs (cached, restored, in the lock and the
manifest), `plots show` draws the workspace's, `plots diff` overlays a recorded build (a
manifest id, its bytes from the cache) or a git revision (through the lock committed there),
`report` includes them, and a bad declaration is a config error (exit 2). The drawing itself
is tested in tests/unit/test_plots_svg_unit.py."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Project

Workspace = Callable[..., Project]

PIPELINE = """
version: 1
params: {lr: 0.5}
targets:
  train:
    cmd: python gen.py ${params.lr}
    outs: [model.txt]
    plots:
      - plots/loss.csv
      - {path: plots/cm.json, kind: confusion, title: "<script>alert(1)</script>"}
"""
GEN = """\
import json, os, sys
lr = float(sys.argv[1])
os.makedirs("plots", exist_ok=True)
open("model.txt", "w").write(str(lr))
with open("plots/loss.csv", "w") as f:
    f.write("step,loss\\n" + "".join(f"{i},{lr / (i + 1)}\\n" for i in range(5)))
json.dump({"actual": [0, 1, 1, 0], "predicted": [0, 1, 0, 0]}, open("plots/cm.json", "w"))
"""


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


def _revs(run_out: str) -> dict[str, dict[str, list[float]]]:
    """path → rev label → the loss values (line plots) of a --json answer."""
    doc = json.loads(run_out)
    return {
        p["path"]: {r["rev"]: r["series"][0]["values"] for r in p["revs"] if "series" in r}
        for p in doc["plots"]
    }


def test_plots_are_outs_shown_diffed_against_builds_and_revisions_and_reported(
    workspace: Workspace,
) -> None:
    p = workspace(PIPELINE, {"gen.py": GEN, ".gitignore": "plots/\nmodel.txt\n.mlbuild/\n"})
    # Not built yet: each missing file is named, and nothing to draw is exit 2 with a hint.
    run = p.mlbuild("plots", "show")
    assert run.code == 2
    assert "plots/loss.csv does not exist: build it with `mlbuild train`" in run.err
    assert "`mlbuild train`" in run.err.splitlines()[-1]

    p.build("train")
    entry = p.lock_entries()["train"]
    assert [o["path"] for o in entry["outs"]] == ["model.txt", "plots/loss.csv", "plots/cm.json"]
    old_id = p.manifest("train")[0]
    _git(p.root, "init", "-q")
    _git(p.root, "add", "-A")
    _git(p.root, "commit", "-qm", "lr 0.5")  # the plots are ignored: HEAD has only the lock

    p.replace("mlbuild.yaml", "lr: 0.5", "lr: 2.0")
    p.build("train")
    # Plots are outs: deleted, a plain build restores them from the cache, running nothing.
    os.remove(p.path("plots/loss.csv"))
    assert p.build("train").restored == ["train"]

    run = p.mlbuild("plots", "show", "-o", "out/plots.html")
    assert run.code == 0, run.err
    assert "wrote out/plots.html (2 plots)" in run.err
    page = p.read("out/plots.html")
    assert page.count('<svg class="plot"') == 2 and "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page

    # No REV: HEAD (through the lock committed there and the cache) against the workspace.
    run = p.mlbuild("plots", "diff", "--json")
    assert run.code == 0, run.err
    loss = _revs(run.out)["plots/loss.csv"]
    assert loss["HEAD"][0] == 0.5 and loss["workspace"][0] == 2.0
    # A manifest id prefix: that build's bytes from the cache, verified.
    short = old_id.split(":")[1][:10]
    run = p.mlbuild("plots", "diff", short, "--json")  # only ids: the plots of their targets
    assert run.code == 0, run.err
    labels = list(_revs(run.out)["plots/loss.csv"])
    assert labels == [f"sha256:{old_id.split(':')[1][:12]}", "workspace"]
    cm = json.loads(run.out)["plots"][1]
    assert cm["revs"][0]["counts"] == [[2, 0], [1, 1]] and cm["revs"][0]["labels"] == ["0", "1"]

    # A cache object gone: named, the rest still drawn.
    rec = next(o for o in entry["outs"] if o["path"] == "plots/loss.csv")
    hexd = rec["xxh"].split(":")[1]
    obj = p.path(f".mlbuild/cache/objects/{hexd[:2]}/{hexd[2:]}")
    os.chmod(obj, 0o644)
    os.remove(obj)
    run = p.mlbuild("plots", "diff", short, "-o", "diff.html")
    assert run.code == 0, run.err
    assert "records plots/loss.csv, but the cache lacks it" in run.err

    run = p.mlbuild("report", "-o", "report.html")
    assert run.code == 0, run.err
    report = p.read("report.html")
    assert "<h2>Plots</h2>" in report and report.count('<svg class="plot"') == 2


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{path: p.csv, kidn: roc}", "unknown key 'kidn' in a plot (did you mean 'kind'?)"),
        ("{path: p.csv, template: roc}", "unknown key 'template' in a plot (mlbuild calls it"),
        ("{path: p.csv, kind: heatmap}", "unknown plot kind 'heatmap'"),
        ("p.parquet", "plot file 'p.parquet' must be .csv, .tsv, .json, .yaml or .yml"),
        ("{path: p.csv, kind: roc, y: [a, b]}", "a roc plot takes one y column, not 2"),
    ],
)
def test_a_bad_plot_declaration_is_a_config_error_at_its_line(
    workspace: Workspace, entry: str, message: str
) -> None:
    p = workspace(f"version: 1\ntargets:\n  t:\n    cmd: 'true'\n    plots:\n      - {entry}\n")
    run = p.mlbuild("validate")
    assert run.code == 2
    assert "mlbuild.yaml:6:" in run.err and message in run.err


def test_a_column_the_data_lacks_is_one_line_naming_file_and_column(
    workspace: Workspace,
) -> None:
    p = workspace(
        "version: 1\ntargets:\n  t:\n    cmd: printf 'step,loss\\n0,1\\n' > ${outs[0]}\n"
        "    plots: [{path: loss.csv, y: los}]\n"
    )
    p.build("t")
    run = p.mlbuild("plots", "show")
    assert run.code == 2
    assert run.err.strip().splitlines() == [
        "mlbuild: error: plot file loss.csv has no y column 'los' (did you mean 'loss'?)"
    ]


def test_the_demo_declares_the_promoted_models_roc_and_confusion_plots() -> None:
    from mlbuild.config import load_pipeline

    root = Path(__file__).resolve().parents[2]
    pipeline = load_pipeline(str(root / "mlbuild.yaml"))
    prod = pipeline.targets["model:prod"]
    assert [(p.kind, p.path) for p in prod.plots] == [
        ("roc", "plots/prod/roc.csv"),
        ("confusion", "plots/prod/confusion.csv"),
    ]
    assert all(p.path in prod.outs for p in prod.plots)
