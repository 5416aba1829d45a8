"""`mlbuild commit TARGETS`: the outs in the workspace become the build of the current key,
nothing run (``dvc commit``, ``make -t``); the manifest says ``status: commit``; `audit`
lists it, `audit --require-built` refuses it; missing outs, a stale upstream and a failed
gate are refused with nothing recorded."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import Project

Workspace = Callable[..., Project]

# Each command appends to runs.log, so a test sees exactly what ran.
PIPELINE = """
version: 1
targets:
  prep:
    cmd: python prep.py ${outs[0]} && echo prep >> runs.log
    deps: [raw.txt]
    outs: [data/prep.txt]
  model:
    cmd: python train.py ${deps[0]} ${outs[0]} ${outs[1]} && echo model >> runs.log
    deps: [prep]
    outs: [models/model.txt, metrics.json]
    metrics: [metrics.json]
    gate:
      - {metric: accuracy, min: 0.5}
"""
FILES = {
    "raw.txt": "1\n2\n3\n",
    "prep.py": "import sys\nopen(sys.argv[1], 'w').write(open('raw.txt').read().upper())\n",
    "train.py": (
        "import json, sys\n"
        "open(sys.argv[2], 'w').write('model of ' + open(sys.argv[1]).read())\n"
        "json.dump({'accuracy': 0.9}, open(sys.argv[3], 'w'))\n"
    ),
}


def test_comment_only_edit_is_committed_without_running(workspace: Workspace) -> None:
    p = workspace(PIPELINE, FILES)
    p.build()
    p.write("train.py", "# a comment only\n" + FILES["train.py"])
    assert p.mlbuild("-q").code == 1  # stale: its code changed

    run = p.mlbuild("commit", "model", "--json")
    assert run.code == 0, run.err
    (row,) = json.loads(run.out)["targets"]
    assert row["outcome"] == "committed" and row["reasons"] == ["code train.py changed"]

    assert p.mlbuild("-q").code == 0  # fresh now
    assert p.read("runs.log") == "prep\nmodel\n"  # nothing ran since the build
    mid, doc = p.manifest("model")
    assert mid == row["manifest"] and doc["key"] == p.lock_entries()["model"]["key"]
    assert doc["status"] == "commit" and doc["committed"] is True
    assert doc["exit_code"] is None and doc["log"] is None
    assert doc["metrics"] == {"accuracy": 0.9} and doc["gates"][0]["passed"]

    audit = p.mlbuild("audit", "model")
    assert audit.code == 0, audit.out
    assert "model  committed" in audit.out and "not built by mlbuild" in audit.out
    strict = p.mlbuild("audit", "model", "--require-built", "--format", "json")
    assert strict.code == 6
    (finding,) = json.loads(strict.out)["findings"]
    assert finding["check"] == "committed" and finding["target"] == "model"


def test_commit_refuses_stale_upstream_missing_outs_and_failed_gate(
    workspace: Workspace,
) -> None:
    p = workspace(PIPELINE, FILES)
    p.build()
    lock = p.read("mlbuild.lock")
    p.write("prep.py", "# tidied\n" + FILES["prep.py"])

    stale = p.mlbuild("commit", "model")
    assert stale.code == 1
    assert "cannot commit model: its upstream prep is stale" in stale.err
    assert "mlbuild commit prep" in stale.err

    # -n, in build order; prep's outs feed model's key: unchanged bytes, so model is
    # current (early cutoff, as in a build). Nothing is written.
    dry = p.mlbuild("commit", "-n", "model", "prep", "--json")
    assert dry.code == 0, dry.err
    rows = json.loads(dry.out)["targets"]
    assert [(r["target"], r["outcome"]) for r in rows] == [
        ("prep", "would-commit"),
        ("model", "current"),
    ]

    p.path("models/model.txt").unlink()
    missing = p.mlbuild("commit", "prep", "model")
    assert missing.code == 1
    assert "cannot commit model: declared out(s) missing: models/model.txt" in missing.err

    # A gate judges a commit as it judges a build: outs made by hand cannot sneak past.
    p.write("models/model.txt", "by hand\n")
    p.write("metrics.json", '{"accuracy": 0.1}')
    gated = p.mlbuild("commit", "prep", "model")
    assert gated.code == 3, gated.err
    assert "gate failed" in gated.err
    assert p.read("mlbuild.lock") == lock  # no refusal recorded anything, prep included
    assert p.read("runs.log") == "prep\nmodel\n"
