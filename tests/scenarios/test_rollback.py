"""`mlbuild rollback` and `mlbuild diff`: earlier builds back from the cache, and what changed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from typing import Any

from tests.conftest import Project


def _builds(p: Project, target: str) -> list[dict[str, Any]]:
    run = p.mlbuild("history", target, "--json")
    assert run.code == 0, run.err
    builds: list[dict[str, Any]] = json.loads(run.out)["builds"]
    return builds


def _two_builds(project: Callable[[str], Project]) -> Project:
    p = project("basic")
    p.build()
    p.replace("params.yaml", "lr: 0.1", "lr: 0.2")
    p.build()
    return p


def test_rollback_restores_the_previous_build_without_running(
    project: Callable[[str], Project],
) -> None:
    p = _two_builds(project)
    log_before = p.read(".mlbuild/logs/model__lr.log")
    old_id = _builds(p, "model:lr")[1]["id"]
    run = p.mlbuild("rollback", "model:lr")
    assert run.code == 0, run.err
    assert p.read("models/lr.txt").endswith("lr=0.1\n")
    assert p.read(".mlbuild/logs/model__lr.log") == log_before  # nothing ran
    newest = _builds(p, "model:lr")[0]["manifest"]
    assert newest["status"] == "rollback"
    assert newest["restored_from"] == old_id
    lock = json.loads(p.read("mlbuild.lock"))["targets"]["model:lr"]
    assert lock["key"] == newest["key"]
    assert p.mlbuild("audit", "model:lr").code == 0
    # The workspace's params still say 0.2: the next build brings that build back.
    assert p.build().restored == ["model:lr"]
    assert p.read("models/lr.txt").endswith("lr=0.2\n")


def test_rollback_to_an_id_prefix(project: Callable[[str], Project]) -> None:
    p = _two_builds(project)
    p.mlbuild("rollback", "model:lr")
    target_id = _builds(p, "model:lr")[1]["id"]  # the lr=0.2 build
    run = p.mlbuild("rollback", "model:lr", "--to", target_id.split(":")[1][:12])
    assert run.code == 0, run.err
    assert p.read("models/lr.txt").endswith("lr=0.2\n")
    wrong = p.mlbuild("rollback", "model:depth", "--to", target_id)
    assert wrong.code == 2 and "is of model:lr, not model:depth" in wrong.err


def test_rollback_to_a_collected_build_is_a_clear_error(
    project: Callable[[str], Project],
) -> None:
    p = _two_builds(project)
    old = _builds(p, "model:lr")[1]["manifest"]
    xxh = old["outs"][0]["xxh3"].split(":")[1]
    (p.path(".mlbuild/cache/objects") / xxh[:2] / xxh[2:]).unlink()
    before = p.read("models/lr.txt")
    run = p.mlbuild("rollback", "model:lr")
    assert run.code == 2
    assert "the cache no longer holds models/lr.txt" in run.err
    assert p.read("models/lr.txt") == before


def test_rollback_without_an_earlier_build(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build()
    run = p.mlbuild("rollback", "model:lr")
    assert run.code == 2 and "has no earlier build to roll back to" in run.err


def test_diff_names_what_changed_between_two_builds(project: Callable[[str], Project]) -> None:
    p = _two_builds(project)
    new, old = (b["id"] for b in _builds(p, "model:lr")[:2])
    run = p.mlbuild("diff", old, new, "--json")
    assert run.code == 0, run.err
    changes = {(c["field"], c["key"]): (c["a"], c["b"]) for c in json.loads(run.out)["differences"]}
    assert changes[("params", "train.lr")] == (0.1, 0.2)
    assert ("outs", "models/lr.txt") in changes
    assert ("deps", "data/even.txt") not in changes
    text = p.mlbuild("diff", old[:14], new[:14]).out
    assert "params    train.lr: 0.1 -> 0.2" in text
    assert p.mlbuild("diff", "sha256:00", new).code == 2
    shutil.rmtree(p.path(".mlbuild/manifests"))
    assert p.mlbuild("diff", old, new).code == 2
