"""``mlbuild --set KEY=VALUE``: params overridden for one build (``dvc exp run -S``,
``snakemake --config``). An overlay, not an edit: params.yaml keeps its bytes, the manifest
and `history` record the overrides, and the next plain build restores the file's version
from the run cache. A value the command would never see (a script that reads params.yaml
itself) is refused before anything runs, as are unknown keys and non-scalar values."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import Project

Workspace = Callable[..., Project]

PIPELINE = """
version: 1
params: params.yaml
targets:
  prep:
    cmd: python prep.py ${params.prep.rows} ${outs[0]}
    outs: [prep.txt]
  train:
    python: train:fit
    deps: [prep]
    params: [train.lr, train.tags]
    outs: [model.txt]
    metrics: [metrics.json]
  score:
    cmd: python score.py ${outs[0]}
    params: [score]
    outs: [score.txt]
"""
PARAMS = """\
prep: {rows: 3}
train:
  lr: 0.1     # the learning rate
  tags: [a, b]
score: {k: 2, name: top}
unused: 1
"""
FILES = {
    "params.yaml": PARAMS,
    "prep.py": (
        "import sys\n"
        "open(sys.argv[2], 'w').write('row\\n' * int(sys.argv[1]))\n"
        "open('runs.log', 'a').write('prep\\n')\n"
    ),
    "train.py": (
        "import json\n"
        "def fit(deps, outs, params):\n"
        "    open(outs[0], 'w').write(f\"lr={params['train.lr']!r}\")\n"
        "    json.dump({'loss': 1 - params['train.lr']}, open('metrics.json', 'w'))\n"
        "    open('runs.log', 'a').write('train\\n')\n"
    ),
    # Reads params.yaml itself: an override could never reach it.
    "score.py": (
        "import sys, yaml\n"
        "k = yaml.safe_load(open('params.yaml'))['score']['k']\n"
        "open(sys.argv[1], 'w').write(str(k))\n"
    ),
}


def test_set_overrides_one_build_and_the_next_plain_build_restores(workspace: Workspace) -> None:
    p = workspace(PIPELINE, FILES)
    p.build("prep", "train")
    _, first = p.manifest("train")

    run = p.build("train", "--set", "train.lr=0.5", "--json")
    assert run.ran == ["train"], run.err  # prep does not read the key: fresh
    assert p.read("model.txt") == "lr=0.5"
    assert p.read("params.yaml") == PARAMS  # an overlay, not an edit
    mid, doc = p.manifest("train")
    assert doc["params"] == {"train.lr": 0.5, "train.tags": ["a", "b"]}
    assert doc["overrides"] == {"train.lr": 0.5}
    assert doc["metrics"] == {"loss": 0.5}
    assert "overrides" not in p.manifest("prep")[1]
    assert "Given by `--set`, not read from a params file: `train`: `train.lr=0.5`" in (
        p.mlbuild("card", "train").out
    )

    history = p.mlbuild("history", "train")
    assert history.code == 0, history.err
    assert "--set train.lr=0.5" in history.out.splitlines()[0]
    assert "--set" not in history.out.splitlines()[1]
    builds = json.loads(p.mlbuild("history", "train", "--json").out)["builds"]
    assert builds[0]["manifest"]["overrides"] == {"train.lr": 0.5}
    stale = p.mlbuild("status", "train")
    assert "train.lr" in stale.out and "0.5" in stale.out, stale.out

    back = p.build("train", "--json")  # the file's version: from the run cache, not run
    assert back.ran == [] and back.restored == ["train"], back.out
    assert p.read("model.txt") == "lr=0.1"
    assert "overrides" not in p.manifest("train")[1]
    assert p.manifest("train")[1]["outs"] == first["outs"]
    assert p.read("runs.log") == "prep\ntrain\ntrain\n"

    again = p.build("train", "--set", "train.lr=0.5", "--json")
    assert again.restored == ["train"] and p.read("model.txt") == "lr=0.5"
    assert p.manifest("train")[1]["overrides"] == {"train.lr": 0.5}
    assert mid != p.manifest("train")[0]


def test_set_values_reach_commands_callables_and_list_items(workspace: Workspace) -> None:
    p = workspace(PIPELINE, FILES)
    plan = p.mlbuild("prep", "-n", "--set", "prep.rows=7", "--set", "unused=2")
    assert plan.code == 0, plan.err
    assert "python prep.py 7 prep.txt" in plan.out
    assert plan.err == "mlbuild: note: --set unused: no target reads it, so it changes nothing\n"
    run = p.build("train", "--set", "train.tags.1=c", "--set", "train.lr=0.25")
    assert run.code == 0, run.err
    assert p.manifest("train")[1]["overrides"] == {"train.lr": 0.25, "train.tags.1": "c"}
    assert p.manifest("train")[1]["params"]["train.tags"] == ["a", "c"]
    assert p.read("params.yaml") == PARAMS


def test_bad_set_is_exit_2_and_nothing_runs(workspace: Workspace) -> None:
    p = workspace(PIPELINE, FILES)
    cases = [
        (["--set", "train.lrr=1"], "unknown param 'train.lrr'", "did you mean 'train.lr'"),
        (["--set", "train=1"], "'train' is a mapping", "train.lr"),
        (["--set", "train.tags=1"], "'train.tags' is a list", "train.tags.0"),
        (["--set", "train.lr"], "'train.lr' is not KEY=VALUE", "--set train.lr=0.01"),
        (["--set", "train.lr=[1, 2]"], "a list is not a scalar", "one value"),
        (["--set", "train.lr=1", "--set", "train.lr=2"], "'train.lr' is set twice", ""),
        (["--set", "score.k=3"], "target 'score' reads 'score.k'", "${params.score.k}"),
    ]
    for args, message, hint in cases:
        run = p.mlbuild(*args)
        assert run.code == 2, (args, run.out, run.err)
        assert message in run.err and hint in run.err, (args, run.err)
        assert len(run.err.strip().splitlines()) <= 2, run.err
    assert not p.path("runs.log").exists()
    assert p.read("params.yaml") == PARAMS
