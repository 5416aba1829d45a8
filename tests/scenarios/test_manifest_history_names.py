"""Targets ``a:b`` and ``a__b`` keep apart histories (issue 11 follow-up): the history index
is named by `target_file_name`, and a history line only counts for a target when it points
at a manifest of that target, so no command takes one target's build for the other's."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.conftest import Project

_CONFIG = """\
version: 1
targets:
  a:b:
    cmd: echo colon > ${outs[0]}
    outs: [colon.txt]
  a__b:
    cmd: echo underscores > ${outs[0]}
    outs: [underscores.txt]
  down:
    cmd: cat ${deps[0]} > ${outs[0]}
    deps: [a:b]
    outs: [down.txt]
"""


def _builds(p: Project, target: str) -> list[dict[str, Any]]:
    run = p.mlbuild("history", target, "--json")
    assert run.code == 0, run.err
    builds: list[dict[str, Any]] = json.loads(run.out)["builds"]
    return builds


def test_a_colon_b_and_a__b_never_take_each_others_builds(
    workspace: Callable[..., Project],
) -> None:
    p = workspace(_CONFIG)
    # One build per process: no id remembered by the store can hide the shared file.
    for target in ("a:b", "a__b", "down"):
        p.build(target)
    colon, underscores = _builds(p, "a:b"), _builds(p, "a__b")
    assert [b["manifest"]["target"] for b in colon] == ["a:b"]
    assert [b["manifest"]["target"] for b in underscores] == ["a__b"]
    names = sorted(f.name for f in p.path(".mlbuild/manifests/index").iterdir())
    assert names == ["%a%5F%5Fb.jsonl", "a__b.jsonl", "down.jsonl"]
    # The upstream link down's build wrote, and the lineage drawn from it, is a:b's build.
    tree = json.loads(p.mlbuild("lineage", "down", "--json").out)
    assert [(u["target"], u["manifest"]) for u in tree["upstream"]] == [("a:b", colon[0]["id"])]
    run = p.mlbuild("audit", "--format", "json")
    report = json.loads(run.out)
    assert (run.code, report["findings"]) == (0, [])
    shown = {t["target"]: t["manifest"] for t in report["targets"]}
    assert (shown["a:b"], shown["a__b"]) == (colon[0]["id"], underscores[0]["id"])
    # a:b has one build: nothing to roll back to (a__b's build is not an earlier one of it).
    run = p.mlbuild("rollback", "a:b")
    assert run.code == 2 and "no earlier build" in run.err


def test_a_history_line_naming_another_targets_manifest_is_skipped_and_reported(
    workspace: Callable[..., Project],
) -> None:
    p = workspace(_CONFIG)
    p.build("down")
    down = _builds(p, "down")[0]["id"]
    index = p.path(".mlbuild/manifests/index/a__b.jsonl")  # a:b's history
    own = index.read_text()
    index.write_text(own + down + "\n")
    run = p.mlbuild("history", "a:b", "--json")
    assert [b["manifest"]["target"] for b in json.loads(run.out)["builds"]] == ["a:b"]
    warning = f"line 2: {down} is a manifest of down, not of a:b (skipped)"
    assert warning in run.err
    tree = json.loads(p.mlbuild("lineage", "a:b", "--json").out)
    assert (tree["target"], tree["manifest"]) == ("a:b", own.strip())
    run = p.mlbuild("audit", "--format", "json", "a:b")
    findings = json.loads(run.out)["findings"]
    assert run.code == 6
    assert [(f["target"], f["check"], f["subject"]) for f in findings] == [
        ("a:b", "history", ".mlbuild/manifests/index/a__b.jsonl")
    ]
    assert down in findings[0]["found"] and "a manifest of down" in findings[0]["found"]
