"""The logic behind "every cause, compared as the key compares": `digest.same_value`,
`diff_components`, `params_diff`, and `plan` for a target behind a stale upstream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlbuild.config import Pipeline
from mlbuild.digest import same_value
from mlbuild.experiments import params_diff
from mlbuild.graph import BuildGraph
from mlbuild.options import BuildOptions
from mlbuild.rebuild import diff_components
from mlbuild.results import Action, Reason, ReasonKind
from mlbuild.store import LockEntry
from mlbuild.workspace import Workspace

LoadConfig = Callable[[str], Pipeline]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (50, 50.0, False),
        (1, True, False),
        (0, False, False),
        ([1, 2], [1, 2.0], False),
        ({"x": 1, "y": [True]}, {"y": [True], "x": 1}, True),  # key order is not a change
        (None, None, True),
        ("50", 50, False),
        (float("nan"), float("nan"), True),  # one text, one key (Python: nan != nan)
    ],
)
def test_values_are_equal_when_their_canonical_json_is(a: Any, b: Any, same: bool) -> None:
    assert same_value(a, b) is same


def _components(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "cmd": ["python train.py"],
        "python": None,
        "code": {"train.py": "xxh3-128:aa"},
        "deps": {"data.csv": "xxh3-128:01"},
        "params": {"n": 50, "flag": 1, "zero": 0},
        "env": {},
        "packages": {},
        "matrix": {"k": 1},
        "outs": ["m.bin"],
    }
    base.update(changes)
    return base


def test_a_value_that_changes_the_key_is_a_reason_with_old_and_new_text() -> None:
    new = _components(params={"n": 50.0, "flag": True, "zero": False}, matrix={"k": 1.0})
    reasons = diff_components(_components(), new)
    assert [r.describe() for r in reasons] == [
        "param flag: 1 → true",
        "param n: 50 → 50.0",
        "param zero: 0 → false",
        "param k: 1 → 1.0",
    ]
    assert Reason(ReasonKind.PARAM, "n", 50, 50.0) in reasons


def test_equal_canonical_components_give_no_reason() -> None:
    same = _components(params={"zero": 0, "flag": 1, "n": 50})
    assert diff_components(_components(), same) == []


def test_params_diff_names_a_change_python_calls_equal(load: LoadConfig, ws: Path) -> None:
    (ws / "params.yaml").write_text("n: 50.0\nflag: true\nsame: 3\n")
    pipeline: Pipeline = load(
        """
        params: params.yaml
        targets:
          t:
            cmd: echo ${params.n} ${params.flag} ${params.same} > ${outs[0]}
            outs: [o.txt]
          u:
            cmd: cat ${deps[0]} > ${outs[0]}
            deps: [t]
            outs: [u.txt]
        """
    )
    recorded = {
        "t": LockEntry("xxh3-128:" + "0" * 32, {"params": {"n": 50, "flag": 1, "same": 3}}, ())
    }
    changes = params_diff(pipeline, BuildGraph.from_pipeline(pipeline), recorded)
    assert [(c.key, c.old, c.new, c.change, c.stale) for c in changes] == [
        ("flag", 1, True, "changed", ("t", "u")),
        ("n", 50, 50.0, "changed", ("t", "u")),
    ]


def test_an_upstream_reason_tells_what_it_holds_now() -> None:
    plain = Reason(ReasonKind.UPSTREAM, "model")
    told = Reason(ReasonKind.UPSTREAM, "model", detail="eval was built from another m.txt")
    assert plain.describe() == "upstream model is stale"
    assert told.describe() == "upstream model is stale: eval was built from another m.txt"
    assert told.to_json()["detail"] == "eval was built from another m.txt"


def test_behind_a_stale_upstream_a_target_runs_with_every_cause_of_its_own(
    write_config: Any, ws: Path
) -> None:
    write_config(
        """
        params: params.yaml
        targets:
          up:
            cmd: cat src.txt > ${outs[0]}
            deps: [src.txt]
            outs: [up.txt]
          down:
            cmd: cat ${deps[0]} > ${outs[0]}; echo ${params.n} >> ${outs[0]}
            deps: [up, extra.txt]
            outs: [down.txt]
        """
    )
    (ws / "params.yaml").write_text("n: 1\n")
    (ws / "src.txt").write_text("a\n")
    (ws / "extra.txt").write_text("x\n")
    space = Workspace(ws)
    assert space.build().ok
    (ws / "src.txt").write_text("b\n")  # up is stale; nothing of down's own changed
    (down,) = [d for d in space.plan(["down"]) if d.target == "down"]
    assert (down.action, down.key, down.reasons) == (
        Action.RUN,
        None,
        (Reason(ReasonKind.UPSTREAM, "up"),),
    )
    forced = Workspace(ws).plan(["down"], BuildOptions(force=True))
    assert [r.kind for r in forced[-1].reasons] == [ReasonKind.FORCED, ReasonKind.UPSTREAM]
    (ws / "params.yaml").write_text("n: 1.0\n")
    (ws / "extra.txt").write_text("y\n")
    (down,) = [d for d in Workspace(ws).plan(["down"]) if d.target == "down"]
    assert [r.describe() for r in down.reasons] == [
        "command cmd: cat up.txt > down.txt; echo 1 >> down.txt → "
        "cat up.txt > down.txt; echo 1.0 >> down.txt",
        "dep extra.txt changed",
        "param n: 1 → 1.0",
        "upstream up is stale",
    ]
