"""`status` and `explain` remember a target's last failed attempt ("failed 10:02, exit 2",
"rejected by a gate") while it would run with the key that failed: an edit (a new key)
hides it, a success forgets it, and a corrupt record is ignored, never a crash. `explain`
exits 0 whether the target is fresh or stale, 4 for a pattern that matches nothing.
`status` without TARGETS lists every target, not only `default:`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tests.conftest import Project

Workspace = Callable[..., Project]

# b fails (exit 2) while fail.flag exists, a file its key does not cover: removing it
# fixes b without a new key. g's gate rejects its metric. `default:` is a only, and
# `status` still lists every target.
PIPELINE = """
version: 1
default: [a]
targets:
  a:
    cmd: echo a > ${outs[0]}
    outs: [a.txt]
  b:
    cmd: test ! -e fail.flag || exit 2; cp ${deps[0]} ${outs[0]}
    deps: [a]
    outs: [b.txt]
  g:
    cmd: >-
      echo '{"acc": 0.5}' > ${outs[0]}
    outs: [g.json]
    metrics: [g.json]
    gate: [{metric: acc, min: 0.9}]
"""
CLOCK = r"\d\d:\d\d"  # today's failures show the local time only


def _notes(p: Project) -> dict[str, Any]:
    run = p.mlbuild("status", "--json")
    assert run.code == 0, run.err
    return {t["target"]: t["last_failure"] for t in json.loads(run.out)["targets"]}


def test_status_shows_the_last_failed_attempt_until_an_edit_or_a_success(
    workspace: Workspace,
) -> None:
    p = workspace(PIPELINE, {"fail.flag": ""})
    assert p.mlbuild("-k", "b", "g").code == 1  # b exits 2, g is rejected by its gate

    status = p.mlbuild("status")
    assert status.code == 0, status.err
    lines = dict(line.split(None, 1) for line in status.out.splitlines())
    assert lines["a"] == "fresh"
    assert re.fullmatch(
        rf"never-built  last attempt failed {CLOCK}, exit 2; never built", lines["b"]
    )
    assert re.fullmatch(
        rf"never-built  last attempt failed {CLOCK}, rejected by a gate; never built", lines["g"]
    )

    notes = _notes(p)
    assert notes["a"] is None
    assert {k: notes["b"][k] for k in ("cause", "exit_code")} == {"cause": "exit", "exit_code": 2}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", notes["b"]["when"])
    assert notes["b"]["key"].startswith("xxh3-128:")
    assert (notes["g"]["cause"], notes["g"]["exit_code"]) == ("gate", None)

    why = p.mlbuild("explain", "b")
    assert why.code == 0, why.err  # stale: still exit 0
    assert re.search(rf"^  ! last attempt with this key: failed {CLOCK}, exit 2$", why.out, re.M)

    # A record that is not what mlbuild writes is ignored as a whole.
    record = p.read(".mlbuild/failures.json")
    p.write(".mlbuild/failures.json", record.replace('"exit_code": 2', '"exit_code": "2"'))
    assert _notes(p) == {"a": None, "b": None, "g": None}
    p.write(".mlbuild/failures.json", record)

    # An edit of b's command is a new key: the failure no longer says what would run.
    p.replace("mlbuild.yaml", "exit 2;", "exit 2 ;")
    notes = _notes(p)
    assert notes["b"] is None and notes["g"] is not None

    # Back to the key that failed, now fixed outside the key: a success forgets it.
    p.replace("mlbuild.yaml", "exit 2 ;", "exit 2;")
    p.path("fail.flag").unlink()
    assert p.build("b").ran == ["b"]
    assert set(json.loads(p.read(".mlbuild/failures.json"))["targets"]) == {"g"}


def test_status_lists_every_target_and_explain_exits_0_fresh_or_stale(workspace: Workspace) -> None:
    p = workspace(PIPELINE)
    assert p.build().ran == ["a"]  # the default
    status = p.mlbuild("status")
    assert [line.split()[:2] for line in status.out.splitlines()] == [
        ["a", "fresh"],
        ["b", "never-built"],
        ["g", "never-built"],
    ]
    fresh = p.mlbuild("explain", "a")
    assert (fresh.code, fresh.out) == (0, "a is fresh\n")
    nope = p.mlbuild("why", "nope")
    assert nope.code == 4 and "no target matches 'nope'" in nope.err
    helped = p.mlbuild("explain", "--help")
    assert "Exits 0 whether TARGET is fresh or stale" in " ".join(helped.out.split())
