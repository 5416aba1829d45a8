"""Every cause, told as the key sees it (issue 10, parts 3 and 4): param values compared as
canonical JSON (``50`` → ``50.0``, ``1`` → ``true``), a target's own causes shown beside a
stale upstream, a script's diff shown once, and a rollback making its downstream stale."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from tests.conftest import Project

Workspace = Callable[..., Project]

PIPELINE = """\
params: params.yaml
targets:
  prep:
    cmd: python prep.py ${outs[0]}
    outs: [prep.txt]
  train:
    cmd: python train.py ${deps[0]} ${outs[0]}
    deps: [prep, train.py]
    params: [n, flag, zero]
    outs: [model.txt]
"""

FILES = {
    "params.yaml": "n: 50\nflag: 1\nzero: 0\n",
    "prep.py": "import sys\nopen(sys.argv[1], 'w').write('prep\\n')\n",
    "common.py": "SCALE = 2\n",
    "train.py": (
        "import sys\nfrom common import SCALE\n"
        "open(sys.argv[2], 'w').write(open(sys.argv[1]).read() * SCALE)\n"
    ),
}


def _texts(reasons: list[dict[str, Any]]) -> list[str]:
    return [r["text"] for r in reasons]


def test_every_cause_is_told_and_param_values_compare_as_the_key_does(
    workspace: Workspace,
) -> None:
    p = workspace(PIPELINE, FILES)
    p.build()
    # 50 → 50.0, 1 → true, 0 → false: equal in Python, another key (and a rebuild).
    p.write("params.yaml", "n: 50.0\nflag: true\nzero: false\n")
    params = [
        "param flag: 1 → true",
        "param n: 50 → 50.0",
        "param zero: 0 → false",
    ]
    explained = json.loads(p.mlbuild("explain", "train", "--json").out)
    assert explained["action"] != "fresh"
    assert _texts(explained["reasons"]) == params
    status = {t["target"]: t for t in json.loads(p.mlbuild("status", "--json").out)["targets"]}
    assert status["train"]["status"] in ("stale", "restorable")
    assert _texts(status["train"]["reasons"]) == params
    changes = json.loads(p.mlbuild("params", "diff", "--json").out)["changes"]
    shown = {c["key"]: (c["change"], json.dumps(c["old"]), json.dumps(c["new"])) for c in changes}
    assert shown == {
        "flag": ("changed", "1", "true"),
        "n": ("changed", "50", "50.0"),
        "zero": ("changed", "0", "false"),
    }

    # Now its upstream is stale too, and so are its imported module and its own script
    # (a declared dep as well as a code dep): every cause is told, each diff once.
    p.write("prep.py", FILES["prep.py"] + "# v2\n")
    p.write("common.py", "SCALE = 3\n")
    p.write("train.py", FILES["train.py"] + "# trained v2\n")
    text = p.mlbuild("explain", "train").out
    assert text.startswith("train would run\n"), text
    for line in (
        "  - param n: 50 → 50.0",
        "  - code common.py changed",
        "  - code train.py changed",
        "  - upstream prep is stale",
        "  prep would run",
    ):
        assert line in text.splitlines(), text
    assert "+SCALE = 3" in text
    assert text.count("+# trained v2") == 1, text  # the dep-and-code-dep's diff, once
    doc = json.loads(p.mlbuild("explain", "train", "--json").out)
    assert doc["key"] is None and doc["action"] == "run"
    kinds = [(r["kind"], r["subject"]) for r in doc["reasons"]]
    assert kinds == [
        ("code", "common.py"),
        ("code", "train.py"),
        ("dep", "train.py"),
        ("param", "flag"),
        ("param", "n"),
        ("param", "zero"),
        ("upstream", "prep"),
    ]
    diffs = {r["subject"]: r.get("diff", "") for r in doc["reasons"] if r["kind"] == "code"}
    assert "+SCALE = 3" in diffs["common.py"] and "+# trained v2" in diffs["train.py"]
    assert [r for r in doc["reasons"] if r["kind"] == "dep"][0].get("diff") is None
    assert [u["target"] for u in doc["upstream"]] == ["prep"]


ROLLBACK = """\
params: params.yaml
targets:
  model:
    cmd: echo ${params.lr} > ${outs[0]}
    outs: [model.txt]
  eval:
    cmd: python eval.py ${deps[0]} ${outs[0]}
    deps: [model]
    metrics: [eval.json]
"""

EVAL = (
    "import json, sys\n"
    "json.dump({'lr': float(open(sys.argv[1]).read())}, open(sys.argv[2], 'w'))\n"
)


def test_rollback_makes_downstream_stale_and_rolling_to_the_current_build_writes_nothing(
    workspace: Workspace,
) -> None:
    p = workspace(ROLLBACK, {"params.yaml": "lr: 0.1\n", "eval.py": EVAL})
    p.build()
    p.write("params.yaml", "lr: 0.2\n")
    p.build()
    run = p.mlbuild("rollback", "model")
    assert run.code == 0, run.err
    assert "stale now, built from the outs it replaced: eval" in run.out
    assert p.read("model.txt") == "0.1\n" and json.loads(p.read("eval.json")) == {"lr": 0.2}
    # eval's metrics are those of the model rolled away: it is stale, and says why.
    status = {t["target"]: t for t in json.loads(p.mlbuild("status", "--json").out)["targets"]}
    assert status["model"]["status"] == "restorable"
    assert status["eval"]["status"] == "stale"
    assert _texts(status["eval"]["reasons"]) == [
        "upstream model is stale: eval was built from another model.txt"
    ]
    assert p.lock_entries()["eval"]["metrics"] == {"lr": 0.2}
    shown = p.mlbuild("metrics", "show")
    assert "eval (stale)" in shown.out and "stale: eval: metrics of a build" in shown.out
    # Pinned (the params back at that build's): the next build brings eval up to date.
    p.write("params.yaml", "lr: 0.1\n")
    run = p.build()
    assert run.ran + run.restored == ["eval"]
    assert json.loads(p.read("eval.json")) == {"lr": 0.1}
    assert p.lock_entries()["eval"]["metrics"] == {"lr": 0.1}

    current, _ = p.manifest("model")
    lock = p.read("mlbuild.lock")
    manifests = sorted(os.listdir(p.path(".mlbuild/manifests")))
    again = p.mlbuild("rollback", "model", "--to", current)
    assert again.code == 0, again.err
    assert "already current" in again.out and "recorded as" not in again.out
    assert p.read("mlbuild.lock") == lock
    assert sorted(os.listdir(p.path(".mlbuild/manifests"))) == manifests
