"""Incremental builds of tests/projects/basic: only what is stale runs, by content."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable

from tests.conftest import Project

ALL = ["data:raw", "features:even", "model:depth", "model:lr"]


def test_first_build_runs_everything_and_noop_runs_nothing(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    assert p.build().ran == ALL
    again = p.build()
    assert again.ran == []
    assert again.outcomes("fresh") == ALL
    assert p.read("models/lr.txt").splitlines() == ["2", "4", "6", "10", "lr=0.1"]


def test_touching_inputs_and_outputs_runs_nothing(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build()
    future = time.time() + 5
    for rel in ("src/extra.txt", "scripts/gen.py", "params.yaml", "data/raw.txt", "models/lr.txt"):
        os.utime(p.path(rel), (future, future))
    assert p.build().ran == []


def test_content_change_reruns_downstream_with_early_cutoff(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    p.build()
    # An odd number changes data/raw.txt but not the even-only features: the models are
    # keyed on the features' actual digest, so they are not rebuilt (early cutoff).
    p.write("src/extra.txt", "10\n7\n")
    assert p.build().ran == ["data:raw", "features:even"]
    # An even number changes the features, so both models rebuild.
    p.write("src/extra.txt", "10\n7\n12\n")
    assert p.build().ran == ALL
    assert "12" in p.read("models/depth.txt").split()


def test_param_change_reruns_only_targets_reading_that_key(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    p.build()
    p.replace("params.yaml", "lr: 0.1", "lr: 0.2")
    assert p.build().ran == ["model:lr"]
    assert p.read("models/lr.txt").endswith("lr=0.2\n")
    p.replace("params.yaml", "depth: 3", "depth: 4")
    assert p.build().ran == ["model:depth"]


def test_reverting_a_param_restores_from_cache_instead_of_rerunning(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    p.build()
    before = p.read("models/lr.txt")
    p.replace("params.yaml", "lr: 0.1", "lr: 0.5")
    assert p.build().ran == ["model:lr"]
    p.replace("params.yaml", "lr: 0.5", "lr: 0.1")
    run = p.build()
    assert run.ran == []
    assert run.restored == ["model:lr"]
    assert p.read("models/lr.txt") == before


def test_deleted_or_modified_output_is_restored_not_rerun(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    p.build()
    original = p.read("data/even.txt")
    p.path("data/even.txt").unlink()
    p.write("models/lr.txt", "tampered\n")
    run = p.build()
    assert run.ran == []
    assert run.restored == ["features:even", "model:lr"]
    assert p.read("data/even.txt") == original
    assert p.read("models/lr.txt").endswith("lr=0.1\n")
    # The restored copy is not linked to the cache: editing it cannot corrupt the cache.
    assert os.stat(p.path("models/lr.txt")).st_nlink == 1


def test_editing_an_imported_workspace_module_reruns_its_user(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    p.build()
    p.replace("scripts/helpers.py", '"# numbers"', '"# numbers, v3"')
    run = p.build()
    assert run.ran == ["data:raw", "features:even"]
    why = [r for e in run.events if e["event"] == "target_started" for r in e["reasons"]]
    assert {"kind": "code", "subject": "scripts/helpers.py"}.items() <= why[0].items()


def test_explain_names_param_old_and_new_value(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build()
    p.replace("params.yaml", "lr: 0.1", "lr: 0.3")
    out = p.mlbuild("explain", "model:lr")
    assert out.code == 0
    assert "param train.lr: 0.1 → 0.3" in out.out
    p.replace("scripts/helpers.py", '"# numbers"', '"# counted"')
    out = p.mlbuild("why", "model:lr")
    assert "code scripts/helpers.py changed" in out.out
    assert '+    return "# counted"' in out.out  # the changed line, from the cached old version
    assert "upstream data:raw is stale" in out.out or "data:raw would run" in out.out


def test_status_and_question_mode(project: Callable[[str], Project]) -> None:
    p = project("basic")
    assert p.mlbuild("-q").code == 1
    st = p.mlbuild("status")
    assert "never-built" in st.out
    p.build()
    assert p.mlbuild("-q").code == 0
    p.replace("params.yaml", "depth: 3", "depth: 9")
    assert p.mlbuild("-q").code == 1
    lines = {line.split()[0]: line.split()[1] for line in p.mlbuild("status").out.splitlines()}
    assert lines == {
        "data:raw": "fresh",
        "features:even": "fresh",
        "model:depth": "stale",
        "model:lr": "fresh",
    }


def test_dry_run_changes_nothing(project: Callable[[str], Project]) -> None:
    p = project("basic")
    run = p.mlbuild("-n")
    assert run.code == 0
    assert re.search(r"would run\s+data:raw\s+\(never built\)", run.out)
    assert not p.path("data").exists()
    assert not p.path("mlbuild.lock").exists()


def test_force_reruns_named_target_only(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build()
    assert p.build("-B", "model:lr").ran == ["model:lr"]
    assert p.build("--force-all", "features:even").ran == ["data:raw", "features:even"]


def test_selection_by_glob_and_kind_prefix(project: Callable[[str], Project]) -> None:
    p = project("basic")
    assert p.build("features:").ran == ["data:raw", "features:even"]
    assert p.build("model:*").ran == ["model:depth", "model:lr"]


def test_removed_target_leaves_the_lock_file(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build()
    text = p.read("mlbuild.yaml")
    p.write("mlbuild.yaml", text[: text.index("  model:depth:")].replace(", model:depth", ""))
    assert p.build().ran == []
    assert "model:depth" not in p.read("mlbuild.lock")
    assert "model:lr" in p.read("mlbuild.lock")
