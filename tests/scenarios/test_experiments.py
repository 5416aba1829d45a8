"""Comparing experiments: `metrics show`, `metrics diff [REV]`, `params diff [REV]`, with and
without git (the REV forms read the lock file as committed at that revision)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from tests.conftest import Project

Workspace = Callable[..., Project]

PIPELINE = """
params: params.yaml
targets:
  data:raw:
    cmd: python make.py ${params.data.rows} ${outs[0]}
    outs: [data/raw.txt]
  model:{algo}:
    matrix: {algo: [a, b]}
    cmd: python train.py ${algo} ${params.train.lr} ${deps[0]} ${outs}
    deps: [data:raw]
    params: [train]
    outs: ["models/${algo}.txt"]
    metrics: ["metrics/${algo}.json"]
  report:all:
    cmd: cat ${deps} > ${outs[0]}
    deps: ["model:a", "model:b"]
    outs: [report.txt]
"""
FILES = {
    "params.yaml": "data: {rows: 10}\ntrain: {lr: 0.1, epochs: 3}\n",
    "make.py": "import sys\nopen(sys.argv[2], 'w').write('x' * int(sys.argv[1]))\n",
    "train.py": (
        "import json, sys\n"
        "algo, lr, data, model, metrics = sys.argv[1:]\n"
        "rows = len(open(data).read())\n"
        "open(model, 'w').write(algo)\n"
        "acc = {'a': 0.5, 'b': 0.25}[algo] + float(lr) + rows / 100\n"
        "out = {'acc': round(acc, 6), 'eval': {'loss': round(1 - acc, 6)}}\n"
        "json.dump(out, open(metrics, 'w'))\n"
    ),
}


def _git(p: Project, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=p.root,
        check=True,
        capture_output=True,
    )


def test_metrics_show_is_a_table_of_targets_by_flattened_metrics(workspace: Workspace) -> None:
    p = workspace(PIPELINE, FILES)
    p.build()
    run = p.mlbuild("metrics", "show")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].split() == ["target", "acc", "eval.loss"]
    assert lines[1].split() == ["model:a", "0.7", "0.3"]
    assert lines[2].split() == ["model:b", "0.45", "0.55"]
    data = json.loads(p.mlbuild("metrics", "show", "model:b", "--json").out)
    assert data == {"metrics": {"model:b": {"acc": 0.45, "eval.loss": 0.55}}, "stale": []}


def test_metrics_diff_compares_with_the_previous_build_without_git(
    workspace: Workspace,
) -> None:
    p = workspace(PIPELINE, FILES)
    p.build()
    assert "no metric changed since previous build" in p.mlbuild("metrics", "diff").out
    first = json.loads(p.mlbuild("metrics", "diff", "--all", "--json").out)["changes"]
    assert len(first) == 4 and all(c["old"] is None and c["change"] is None for c in first)
    p.replace("params.yaml", "lr: 0.1", "lr: 0.2")
    p.build()
    data = json.loads(p.mlbuild("metrics", "diff", "--json").out)
    acc_a = next(c for c in data["changes"] if c["target"] == "model:a" and c["metric"] == "acc")
    assert acc_a["old"] == 0.7 and acc_a["new"] == 0.8
    assert abs(acc_a["change"] - 0.1) < 1e-9
    assert abs(acc_a["relative"] - 0.1 / 0.7) < 1e-9
    text = p.mlbuild("metrics", "diff", "-t", "model:a").out
    assert "model:b" not in text and "+14.29%" in text
    # A restore of an earlier build is a new current build; its previous is the one before.
    p.replace("params.yaml", "lr: 0.2", "lr: 0.1")
    assert p.build().restored == ["model:a", "model:b", "report:all"]
    back = json.loads(p.mlbuild("metrics", "diff", "--json").out)["changes"]
    assert {(c["target"], c["metric"], c["old"], c["new"]) for c in back} >= {
        ("model:a", "acc", 0.8, 0.7)
    }


def test_metrics_and_params_diff_against_a_git_revision(workspace: Workspace) -> None:
    p = workspace(PIPELINE, FILES)
    p.build()
    _git(p, "init", "-q")
    _git(p, "add", "-A")
    _git(p, "commit", "-qm", "baseline")
    p.replace("params.yaml", "rows: 10", "rows: 20")
    changes = json.loads(p.mlbuild("params", "diff", "HEAD", "--json").out)["changes"]
    assert changes == [
        {
            "key": "data.rows",
            "change": "changed",
            "old": 10,
            "new": 20,
            "targets": ["data:raw"],
            "stale": ["data:raw", "model:a", "model:b", "report:all"],
        }
    ]
    p.build()
    table = p.mlbuild("metrics", "diff", "HEAD").out.splitlines()
    assert table[0].split() == ["target", "metric", "HEAD", "now", "change", "%"]
    assert ["model:a", "acc", "0.7", "0.8", "+0.1", "+14.29%"] in [r.split() for r in table]
    # After the build the workspace matches the lock: nothing differs from the last build.
    assert "no param changed since last build" in p.mlbuild("params", "diff").out


def test_params_diff_shows_leaves_of_a_declared_subtree_and_their_stale_targets(
    workspace: Workspace,
) -> None:
    p = workspace(PIPELINE, FILES)
    p.build()
    p.replace("params.yaml", "epochs: 3", "epochs: 5, momentum: 0.9")
    run = p.mlbuild("params", "diff")
    rows = [line.split(None, 3) for line in run.out.splitlines()]
    assert run.out.splitlines()[0].split() == ["param", "last", "build", "now", "stale"]
    by_key = {r[0]: r for r in rows[1:]}
    assert by_key["train.epochs"][1:3] == ["3", "5"]
    assert by_key["train.momentum"][1] == "(absent)"
    assert by_key["train.epochs"][3] == "model:a, model:b, report:all"
    assert "data.rows" not in by_key


def test_a_revision_outside_git_is_a_usage_error(workspace: Workspace) -> None:
    p = workspace(PIPELINE, FILES)
    p.build()
    for args in (("metrics", "diff", "HEAD"), ("params", "diff", "HEAD")):
        run = p.mlbuild(*args)
        assert run.code == 2
        assert "is not a git repository" in run.err
        assert "Traceback" not in run.err
    _git(p, "init", "-q")
    run = p.mlbuild("metrics", "diff", "no-such-rev")
    assert run.code == 2 and "mlbuild.lock" in run.err


def test_params_diff_when_one_target_stops_reading_a_key_others_still_read(
    workspace: Workspace,
) -> None:
    p = workspace(
        "params: {lr: 0.1}\n"
        "targets:\n"
        "  a:x:\n    cmd: echo ${params.lr} > ${outs[0]}\n    outs: [a.txt]\n"
        "  b:x:\n    cmd: echo ${params.lr} > ${outs[0]}\n    outs: [b.txt]\n"
    )
    p.build()
    p.replace(
        "mlbuild.yaml",
        "echo ${params.lr} > ${outs[0]}\n    outs: [b.txt]",
        "echo 1 > ${outs[0]}\n    outs: [b.txt]",
    )
    [change] = json.loads(p.mlbuild("params", "diff", "--json").out)["changes"]
    assert change == {
        "key": "lr",
        "change": "readers",
        "old": 0.1,
        "new": 0.1,
        "targets": ["b:x"],
        "stale": ["b:x"],
    }
