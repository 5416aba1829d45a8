"""`mlbuild -n` prints, under each target that would run, the commands it would run,
interpolated as the job gets them (as `make -n` and `snakemake -np` do): shell commands as
``/bin/sh -c`` gets them, a callable as its call; a secret's value is masked, as in logs."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import Project

Workspace = Callable[..., Project]
CANARY = "canary-5d1e-do-not-print"

CONFIG = """\
vars: {greeting: hello world}
env:
  TOKEN: {from: MY_TOKEN, secret: true}
  MODE: fast
targets:
  sh:steps:
    cmd:
      - echo ${vars.greeting} > ${outs[0]}
      - |
        echo ${env.MODE} >> ${outs[0]}
        echo ${params.lr} >> ${outs[0]}
    outs: [out dir/steps.txt]
  sh:token:
    cmd: echo ${params.token} > ${outs[0]}
    outs: [token.txt]
  py:{algo}:
    matrix: {algo: [a]}
    python: steps:fit
    deps: [params.yaml]
    params: [lr, token]
    outs: ["py/${algo}.txt"]
    metrics: ["py/${algo}.json"]
  best:
    promote: {from: "py:*", by: acc, mode: max}
    outs: [best.txt]
    metrics: [best.json]
  cached:
    cmd: echo cached > ${outs[0]}
    outs: [cached.txt]
"""
FILES = {"params.yaml": f"lr: 0.5\ntoken: {CANARY}\n", "steps.py": "def fit(**kw): pass\n"}
ENV = {"MY_TOKEN": CANARY}


def test_dry_run_prints_the_commands_under_each_target_that_would_run(
    workspace: Workspace,
) -> None:
    p = workspace(CONFIG, FILES)
    assert p.mlbuild("cached", env=ENV).code == 0
    p.path("cached.txt").unlink()
    run = p.mlbuild("-n", env=ENV)
    assert run.code == 0, run.err
    py_call = (
        "steps:fit(deps=['params.yaml'], outs=['py/a.txt', 'py/a.json'], "
        "params={'lr': 0.5, 'token': '***'}, algo='a')"
    )
    assert run.out.splitlines() == [
        "would restore cached  (out cached.txt is missing)",
        "would run     py:a  (never built)",
        f"    {py_call}",
        "would run     best  (never built; upstream py:a is stale)",
        "    promote the best of py:* by acc (max)",
        "would run     sh:steps  (never built)",
        "    echo 'hello world' > 'out dir/steps.txt'",
        "    echo fast >> 'out dir/steps.txt'",
        "    echo 0.5 >> 'out dir/steps.txt'",
        "would run     sh:token  (never built)",
        "    echo *** > token.txt",
    ]
    assert CANARY not in run.out + run.err


def test_dry_run_json_gives_each_targets_commands_and_call(workspace: Workspace) -> None:
    p = workspace(CONFIG, FILES)
    run = p.mlbuild("-n", "--json", env=ENV)
    assert run.code == 0, run.err
    assert CANARY not in run.out + run.err
    planned = {
        t["target"]: {k: t[k] for k in ("action", "commands", "call", "promote")}
        for t in json.loads(run.out)["targets"]
    }
    kwargs = {
        "deps": ["params.yaml"],
        "outs": ["py/a.txt", "py/a.json"],
        "params": {"lr": 0.5, "token": "***"},
        "algo": "a",
    }
    assert planned == {
        "best": {
            "action": "run",
            "commands": [],
            "call": None,
            "promote": {"from": "py:*", "by": "acc", "mode": "max"},
        },
        "cached": {
            "action": "run",
            "commands": ["echo cached > cached.txt"],
            "call": None,
            "promote": None,
        },
        "py:a": {
            "action": "run",
            "commands": [
                "steps:fit(deps=['params.yaml'], outs=['py/a.txt', 'py/a.json'], "
                "params={'lr': 0.5, 'token': '***'}, algo='a')"
            ],
            "call": {"callable": "steps:fit", "kwargs": kwargs},
            "promote": None,
        },
        "sh:steps": {
            "action": "run",
            "commands": [
                "echo 'hello world' > 'out dir/steps.txt'",
                "echo fast >> 'out dir/steps.txt'\necho 0.5 >> 'out dir/steps.txt'\n",
            ],
            "call": None,
            "promote": None,
        },
        "sh:token": {
            "action": "run",
            "commands": ["echo *** > token.txt"],
            "call": None,
            "promote": None,
        },
    }
    assert p.mlbuild("-q", "--json", env=ENV).out == run.out  # -q: the same document
