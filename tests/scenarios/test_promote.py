"""Sweeps, metrics files, promotion of the best candidate, and gates that can refuse it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Project

Workspace = Callable[..., Project]
ProjectFactory = Callable[[str], Project]

CANDIDATES = ["model:knn", "model:lr", "model:tree"]


def _score(p: Project, algo: str, acc: str | None = None, loss: str | None = None) -> None:
    """Change a candidate's accuracy and/or loss in the matrix include of ml_sweep."""
    text = p.read("mlbuild.yaml")
    [line] = [li for li in text.splitlines() if li.strip().startswith(f"- {{algo: {algo},")]
    entry = line
    if acc is not None:
        entry = entry.split('acc: "')[0] + f'acc: "{acc}", loss: "' + entry.split('loss: "')[1]
    if loss is not None:
        entry = entry.split('loss: "')[0] + f'loss: "{loss}"}}'
    p.write("mlbuild.yaml", text.replace(line, entry))


def _gate(p: Project, *conditions: str) -> None:
    """Add a gate to model:prod (the last target of ml_sweep)."""
    lines = "".join(f"      - {c}\n" for c in conditions)
    p.write("mlbuild.yaml", p.read("mlbuild.yaml") + f"    gate:\n{lines}")


def _metrics(algo: str, acc: float | None, loss: float) -> dict[str, Any]:
    return {"accuracy": acc, "algo": algo, "eval.loss": loss, "eval.rows": 5}


# --------------------------------------------------------------------------- sweeps


def test_sweep_expands_the_matrix_with_exclude_and_include(project: ProjectFactory) -> None:
    p = project("ml_sweep")
    listed = p.mlbuild("list", "--json")
    assert listed.code == 0
    names = [t["name"] for t in json.loads(listed.out)["targets"]]
    assert sorted(names) == sorted(["data:train", *CANDIDATES, "model:prod"])
    run = p.build("-j", "2")
    assert run.ran == sorted(["data:train", *CANDIDATES, "model:prod"])
    assert p.read("models/lr.txt") == "lr model trained on 5 rows\n"
    assert not p.path("models/svm.txt").exists()
    lock = p.lock_entries()
    # Metrics files are outs, and their flattened values are in the lock and the manifest.
    assert [o["path"] for o in lock["model:lr"]["outs"]] == ["models/lr.txt", "metrics/lr.json"]
    assert lock["model:lr"]["metrics"] == _metrics("lr", 0.81, 0.12)
    assert lock["model:knn"]["metrics"] == _metrics("knn", 0.88, 0.25)
    assert p.manifest("model:tree")[1]["metrics"] == _metrics("tree", 0.93, 0.30)
    assert "metrics" not in lock["data:train"]


def test_matrix_include_adds_combinations_and_extends_matching_ones(workspace: Workspace) -> None:
    p = workspace(
        "version: 1\n"
        "targets:\n"
        "  m:{algo}-{depth}:\n"
        "    matrix:\n"
        "      algo: [lr, tree]\n"
        "      depth: [1, 2]\n"
        "      exclude: [{algo: lr, depth: 2}]\n"
        "      include:\n"
        "        - {algo: lr, size: small}\n"
        "        - {algo: tree, size: big}\n"
        "        - {algo: knn, depth: 7, size: huge}\n"
        "    cmd: echo ${algo} ${depth} ${size} > ${outs[0]}\n"
        '    outs: ["out/${algo}-${depth}.txt"]\n'
    )
    run = p.build("-j", "2")
    assert run.ran == ["m:knn-7", "m:lr-1", "m:tree-1", "m:tree-2"]
    assert p.read("out/lr-1.txt") == "lr 1 small\n"
    assert p.read("out/tree-2.txt") == "tree 2 big\n"
    assert p.read("out/knn-7.txt") == "knn 7 huge\n"
    assert not p.path("out/lr-2.txt").exists()
    # A variable that include adds is part of the key of the combinations it extends.
    p.replace("mlbuild.yaml", "size: big", "size: large")
    assert p.build("-j", "2").ran == ["m:tree-1", "m:tree-2"]
    assert p.read("out/tree-1.txt") == "tree 1 large\n"


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (
            "{algo: [lr, tree], depth: [1, 2], include: [{algo: knn}]}",
            "matrix.include entry matches no combination and lacks depth",
        ),
        (
            "{algo: [lr, tree], depth: [1, 2], exclude: [{algoo: lr}]}",
            "matrix.exclude names 'algoo', which is not a matrix variable (did you mean 'algo'?)",
        ),
        (
            "{algo: [lr], depth: [1, 2], exclude: [{algo: lr}]}",
            "is empty after exclude",
        ),
    ],
)
def test_bad_matrix_include_or_exclude_is_a_config_error(
    workspace: Workspace, matrix: str, message: str
) -> None:
    p = workspace(
        f"targets:\n  m:{{algo}}-{{depth}}:\n    matrix: {matrix}\n    cmd: touch ran.txt\n"
    )
    run = p.mlbuild()
    assert run.code == 2
    assert "mlbuild.yaml:3:" in run.err
    assert message in run.err
    assert not p.path("ran.txt").exists()


# --------------------------------------------------------------------------- promotion


def test_promote_copies_the_best_candidate_and_records_why(project: ProjectFactory) -> None:
    p = project("ml_sweep")
    run = p.mlbuild("-j", "2")
    assert run.code == 0, run.err
    assert "[model:prod] promoted model:tree by accuracy" in run.out
    assert p.read("models/prod.txt") == "tree model trained on 5 rows\n"
    assert p.read("models/tree.txt") == "tree model trained on 5 rows\n"
    assert p.read("metrics/prod.json") == p.read("metrics/tree.json")
    doc = p.manifest("model:prod")[1]
    assert doc["promotion"] == {
        "from": "model:*",
        "by": "accuracy",
        "mode": "max",
        "winner": "model:tree",
        "scores": {"model:tree": 0.93, "model:lr": 0.81, "model:knn": 0.88},
    }
    assert doc["metrics"] == _metrics("tree", 0.93, 0.30)
    assert p.lock_entries()["model:prod"]["metrics"] == doc["metrics"]
    assert {d.get("target") for d in doc["deps"]} >= set(CANDIDATES)
    # A better candidate later: only it and the promoted target run.
    _score(p, "knn", acc="0.97")
    assert p.build("-j", "2").ran == ["model:knn", "model:prod"]
    assert p.read("models/prod.txt") == "knn model trained on 5 rows\n"
    assert p.manifest("model:prod")[1]["promotion"]["winner"] == "model:knn"


def test_promote_by_min_picks_the_lowest(project: ProjectFactory) -> None:
    p = project("ml_sweep")
    p.replace("mlbuild.yaml", "by: accuracy, mode: max", "by: eval.loss, mode: min")
    p.build("-j", "2")
    assert p.read("models/prod.txt") == "lr model trained on 5 rows\n"
    promotion = p.manifest("model:prod")[1]["promotion"]
    assert (promotion["winner"], promotion["mode"]) == ("model:lr", "min")
    assert promotion["scores"] == {"model:tree": 0.30, "model:lr": 0.12, "model:knn": 0.25}


def test_promote_tie_goes_to_the_first_declared_candidate(project: ProjectFactory) -> None:
    p = project("ml_sweep")
    _score(p, "tree", acc="0.5")
    _score(p, "lr", acc="0.88")  # ties with knn, declared after lr in the matrix
    p.build("-j", "2")
    assert p.manifest("model:prod")[1]["promotion"]["winner"] == "model:lr"
    assert p.read("models/prod.txt") == "lr model trained on 5 rows\n"


def test_promoted_target_without_metrics_file_carries_the_winners_metrics(
    project: ProjectFactory,
) -> None:
    p = project("ml_sweep")
    p.replace("mlbuild.yaml", "    metrics: [metrics/prod.json]\n", "")
    _gate(p, "{metric: eval.loss, max: 0.35}")
    p.build("-j", "2")
    assert not p.path("metrics/prod.json").exists()
    doc = p.manifest("model:prod")[1]
    assert doc["metrics"] == _metrics("tree", 0.93, 0.30)
    assert p.lock_entries()["model:prod"]["metrics"] == doc["metrics"]
    assert [o["path"] for o in doc["outs"]] == ["models/prod.txt"]
    [gate] = doc["gates"]
    assert (gate["metric"], gate["max"], gate["passed"], gate["value"]) == (
        "eval.loss",
        0.35,
        True,
        0.30,
    )


def test_restore_from_cache_keeps_metrics_in_manifest_and_lock(project: ProjectFactory) -> None:
    p = project("ml_sweep")
    p.build("-j", "2")
    built = p.manifest("model:prod")[1]
    _score(p, "tree", acc="0.5")
    assert p.build("-j", "2").ran == ["model:prod", "model:tree"]
    assert p.lock_entries()["model:prod"]["metrics"]["accuracy"] == 0.88
    _score(p, "tree", acc="0.93")
    run = p.build("-j", "2")
    assert run.ran == []
    assert run.restored == ["model:prod", "model:tree"]
    lock = p.lock_entries()
    assert lock["model:tree"]["metrics"] == _metrics("tree", 0.93, 0.30)
    assert lock["model:prod"]["metrics"] == _metrics("tree", 0.93, 0.30)
    doc = p.manifest("model:prod")[1]
    assert doc["status"] == "restored"
    assert doc["metrics"] == built["metrics"]
    assert doc["promotion"] == built["promotion"]
    assert p.manifest("model:tree")[1]["metrics"] == _metrics("tree", 0.93, 0.30)
    assert p.read("models/prod.txt") == "tree model trained on 5 rows\n"
    assert json.loads(p.read("metrics/prod.json"))["accuracy"] == 0.93


# --------------------------------------------------------------------------- gates


def test_gate_min_passes_then_refuses_a_worse_winner(project: ProjectFactory) -> None:
    p = project("ml_sweep")
    _gate(p, "{metric: accuracy, min: 0.9}")
    p.build("-j", "2")
    [gate] = p.manifest("model:prod")[1]["gates"]
    assert gate == {
        "metric": "accuracy",
        "min": 0.9,
        "passed": True,
        "value": 0.93,
        "previous": None,
        "message": "accuracy = 0.93, needs >= 0.9",
    }
    prod_before = p.lock_entries()["model:prod"]
    outs_before = p.outputs(["models/prod.txt", "metrics/prod.json"])

    _score(p, "tree", acc="0.5")
    run = p.mlbuild("-j", "2")
    assert run.code == 3
    assert (
        "model:prod: gate failed: accuracy = 0.88, needs >= 0.9 "
        "(rejected outs kept in .mlbuild/failed/model__prod/)"
    ) in run.err
    assert "mlbuild: error: 1 target rejected by a check or gate: model:prod" in run.err
    # The candidates were built and recorded; prod is exactly as before.
    assert p.lock_entries()["model:tree"]["metrics"]["accuracy"] == 0.5
    assert p.lock_entries()["model:prod"] == prod_before
    assert p.outputs(["models/prod.txt", "metrics/prod.json"]) == outs_before
    assert p.read(".mlbuild/failed/model__prod/models/prod.txt") == "knn model trained on 5 rows\n"
    [finding] = json.loads(p.read(".mlbuild/failed/model__prod/checks.json"))
    assert (finding["metric"], finding["passed"], finding["value"]) == ("accuracy", False, 0.88)
    status = p.mlbuild("status", "model:prod")
    [line] = [li for li in status.out.splitlines() if li.startswith("model:prod ")]
    assert line.split()[1] == "stale"
    assert p.mlbuild("-q", "-j", "2").code == 1


def test_gate_max_on_a_nested_metric_refuses_the_build(project: ProjectFactory) -> None:
    p = project("ml_sweep")
    _gate(p, "{metric: eval.loss, max: 0.2}")
    run = p.mlbuild("--json", "-j", "2")
    assert run.code == 3
    assert run.ran == ["data:train", *CANDIDATES]
    [failed] = [e for e in run.events if e.get("outcome") == "failed"]
    assert failed["target"] == "model:prod"
    assert failed["checks_failed"] is True
    assert "gate failed: eval.loss = 0.3, needs <= 0.2" in failed["error"]
    assert "model:prod" not in p.lock_entries()
    assert not p.path("models/prod.txt").exists()
    assert p.path(".mlbuild/failed/model__prod/models/prod.txt").exists()


def test_gate_max_drop_compares_with_the_previous_build(project: ProjectFactory) -> None:
    p = project("ml_sweep")
    _gate(p, "{metric: accuracy, max_drop: 0.02, vs: previous}")
    p.build("-j", "2")
    [gate] = p.manifest("model:prod")[1]["gates"]
    assert gate["passed"] is True
    assert "no previous build" in gate["message"]

    _score(p, "tree", acc="0.92")  # drops by 0.01: allowed
    p.build("-j", "2")
    [gate] = p.manifest("model:prod")[1]["gates"]
    assert (gate["passed"], gate["value"], gate["previous"]) == (True, 0.92, 0.93)
    outs_before = p.outputs(["models/prod.txt", "metrics/prod.json"])
    lock_before = p.lock_entries()["model:prod"]

    _score(p, "tree", acc="0.85")  # knn wins with 0.88: drops by 0.04
    run = p.mlbuild("-j", "2")
    assert run.code == 3
    assert "gate failed: accuracy = 0.88, previous 0.92: dropped by 0.04, allowed 0.02" in run.err
    assert p.outputs(["models/prod.txt", "metrics/prod.json"]) == outs_before
    assert json.loads(p.read("metrics/prod.json"))["accuracy"] == 0.92
    assert p.lock_entries()["model:prod"] == lock_before
    # Still compared with the last build that passed, not with the rejected one.
    _score(p, "knn", acc="0.91")
    p.build("-j", "2")
    [gate] = p.manifest("model:prod")[1]["gates"]
    assert (gate["passed"], gate["value"], gate["previous"]) == (True, 0.91, 0.92)


def test_gate_on_sweep_members_rejects_one_and_skips_promotion(project: ProjectFactory) -> None:
    p = project("ml_sweep")
    p.replace(
        "mlbuild.yaml",
        '    metrics: ["metrics/${algo}.json"]\n',
        '    metrics: ["metrics/${algo}.json"]\n    gate: [{metric: eval.loss, max: 0.28}]\n',
    )
    run = p.mlbuild("--json", "-k", "-j", "2")
    assert run.code == 3
    assert run.ran == ["data:train", "model:knn", "model:lr"]
    assert run.outcomes("failed") == ["model:tree"]
    assert run.outcomes("skipped") == ["model:prod"]
    assert sorted(p.lock_entries()) == ["data:train", "model:knn", "model:lr"]
    assert not p.path("models/tree.txt").exists()
    assert p.read(".mlbuild/failed/model__tree/models/tree.txt") == "tree model trained on 5 rows\n"


def test_gate_on_a_missing_metric_names_it(project: ProjectFactory) -> None:
    p = project("ml_sweep")
    _gate(p, "{metric: accuracy, min: 0.5}", "{metric: f1, min: 0.5}")
    run = p.mlbuild("-j", "2")
    assert run.code == 3
    assert (
        "gate failed: model:prod has no metric 'f1' (has: accuracy, algo, eval.loss, eval.rows)"
        in run.err
    )
    assert not p.path("models/prod.txt").exists()


def test_nan_metric_is_recorded_as_null_and_never_wins(project: ProjectFactory) -> None:
    p = project("ml_sweep")
    _score(p, "tree", acc="nan")
    run = p.mlbuild("-j", "2")
    assert run.code == 0, run.err
    assert "metric accuracy in metrics/tree.json is nan: recorded as null" in run.err
    assert p.lock_entries()["model:tree"]["metrics"]["accuracy"] is None
    assert p.manifest("model:tree")[1]["metrics"]["accuracy"] is None
    promotion = p.manifest("model:prod")[1]["promotion"]
    assert promotion["winner"] == "model:knn"
    assert promotion["scores"]["model:tree"] is None
    assert "NaN" not in p.read("mlbuild.lock")


def test_gate_on_a_nan_metric_fails(project: ProjectFactory) -> None:
    p = project("ml_sweep")
    _score(p, "tree", loss="nan")
    _gate(p, "{metric: eval.loss, max: 0.5}")
    run = p.mlbuild("-j", "2")
    assert run.code == 3
    assert "model:prod: gate failed: metric eval.loss is" in run.err
    assert "not a number" in run.err
    assert not p.path("models/prod.txt").exists()


def test_no_candidate_with_a_numeric_metric_is_a_rejection(project: ProjectFactory) -> None:
    p = project("ml_sweep")
    for algo in ("tree", "lr"):
        _score(p, algo, acc="missing")
    _score(p, "knn", acc="nan")
    run = p.mlbuild("--json", "-j", "2")
    assert run.code == 3
    assert run.ran == ["data:train", *CANDIDATES]
    [failed] = [e for e in run.events if e.get("outcome") == "failed"]
    assert failed["target"] == "model:prod"
    assert (
        "no candidate of model:prod has a numeric 'accuracy' to promote by "
        "(model:tree: missing, model:lr: missing, model:knn: null (NaN, infinite or empty))"
    ) in failed["error"]
    checks = json.loads(p.read(".mlbuild/failed/model__prod/checks.json"))
    assert checks[0]["promotion"]["winner"] is None
    assert not p.path("models/prod.txt").exists()
    assert "model:prod" not in p.lock_entries()


# --------------------------------------------------------------------------- metrics files


def test_missing_or_invalid_metrics_file_fails_the_target(project: ProjectFactory) -> None:
    p = project("ml_sweep")
    _score(p, "lr", acc="nofile")
    _score(p, "knn", acc="garbage")
    run = p.mlbuild("-k", "-j", "2")
    assert run.code == 1
    lr_lines = [line for line in run.err.splitlines() if "metrics/lr.json" in line]
    assert len(lr_lines) == 1
    assert "model:lr:" in lr_lines[0]
    assert "metrics/lr.json" in lr_lines[0]
    knn_lines = [line for line in run.err.splitlines() if "metrics/knn.json" in line]
    assert len(knn_lines) == 1
    assert "model:knn: metrics file metrics/knn.json is not valid JSON" in knn_lines[0]
    assert "Traceback" not in run.err
    assert "rejected by a check or gate" not in run.err
    lock = p.lock_entries()
    assert "model:tree" in lock
    assert "model:lr" not in lock
    assert "model:knn" not in lock
    assert "model:prod" not in lock
    assert not p.path("models/prod.txt").exists()


def test_metrics_file_not_a_mapping_or_bad_yaml_fails_the_target(workspace: Workspace) -> None:
    p = workspace(
        "targets:\n"
        "  eval:list:\n"
        "    cmd: cp src/list.json ${outs[0]}\n"
        "    deps: [src/list.json]\n"
        "    metrics: [metrics/list.json]\n"
        "  eval:yaml:\n"
        "    cmd: cp src/m.yaml ${outs[0]}\n"
        "    deps: [src/m.yaml]\n"
        "    metrics: [metrics/m.yaml]\n"
        "  eval:broken:\n"
        "    cmd: cp src/broken.yaml ${outs[0]}\n"
        "    deps: [src/broken.yaml]\n"
        "    metrics: [metrics/broken.yaml]\n",
        {
            "src/list.json": "[0.9, 0.8]\n",
            "src/m.yaml": "acc: 0.5\nnested: {f1: 0.25, tags: [a, b]}\nname: run-1\n",
            "src/broken.yaml": "acc: [0.5\n",
        },
    )
    run = p.mlbuild("-k")
    assert run.code == 1
    assert (
        "eval:list: metrics file metrics/list.json must hold a mapping of names to values, not list"
    ) in run.err
    # One line per error, even when the YAML parser explains itself over several.
    broken = [line for line in run.err.splitlines() if "broken.yaml" in line]
    assert len(broken) == 1
    assert "eval:broken: metrics file metrics/broken.yaml is not valid YAML" in broken[0]
    assert "<unicode string>" not in run.err
    lock = p.lock_entries()
    assert "eval:list" not in lock
    assert "eval:broken" not in lock
    assert lock["eval:yaml"]["metrics"] == {"acc": 0.5, "name": "run-1", "nested.f1": 0.25}


# --------------------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'from: "model:*"',
            'from: "models:*"',
            "mlbuild.yaml:24:21: promote.from 'models:*' matches no target",
        ),
        (
            "    outs: [data/train.txt]\n",
            "    outs: [data/train.txt]\n    gate: [{metric: accuracy, min: 0.5}]\n",
            "mlbuild.yaml:9:11: target 'data:train' has a gate but no metrics to check it against",
        ),
        (
            "    outs: [models/prod.txt]\n",
            "    outs: [models/prod.txt, models/extra.txt]\n",
            "'model:prod' has 2 out(s) and 1 metrics file(s), but candidate 'model:tree' has 1 "
            "and 1: a promoted target mirrors its candidates",
        ),
        (
            "    outs: [models/prod.txt]\n",
            "    outs: [models/prod.txt]\n    cmd: touch ran.txt\n",
            "target 'model:prod' has 'promote' and a command",
        ),
        (
            "mode: max",
            "mode: best",
            "mlbuild.yaml:24:52: mode must be 'max' or 'min'",
        ),
    ],
)
def test_bad_promote_or_gate_is_a_config_error_before_anything_runs(
    project: ProjectFactory, old: str, new: str, message: str
) -> None:
    p = project("ml_sweep")
    p.replace("mlbuild.yaml", old, new)
    run = p.mlbuild()
    assert run.code == 2
    assert message in run.err
    assert "Traceback" not in run.err
    assert not p.path("data/train.txt").exists()
    assert not p.path("ran.txt").exists()


def test_diff_of_two_prod_builds_shows_the_gate_that_changed(
    project: ProjectFactory,
) -> None:
    p = project("ml_sweep")
    _gate(p, "{metric: accuracy, min: 0.5}")
    p.build("model:prod")
    first, _ = p.manifest("model:prod")
    p.replace("mlbuild.yaml", "min: 0.5}", "min: 0.55}")
    p.build("model:prod")
    second, _ = p.manifest("model:prod")
    run = p.mlbuild("diff", first, second, "--json")
    assert run.code == 0, run.err
    fields = {(d["field"], d["key"]) for d in json.loads(run.out)["differences"]}
    assert ("validation", "gate") in fields


def test_gate_max_drop_on_a_fresh_clone_compares_with_the_committed_lock_file(
    project: ProjectFactory,
) -> None:
    """A CI checkout has mlbuild.lock (committed) but no .mlbuild/ (no manifests): the
    previous build's metrics are the lock entry's, and a drop is still caught."""
    p = project("ml_sweep")
    _gate(p, "{metric: accuracy, max_drop: 0.02, vs: previous}")
    p.build("-j", "2")
    shutil.rmtree(p.path(".mlbuild"))  # a fresh clone: sources, outs and the lock file
    _score(p, "tree", acc="0.85")  # knn wins with 0.88: drops by 0.05 from 0.93
    run = p.mlbuild("-j", "2")
    assert run.code == 3
    assert "gate failed: accuracy = 0.88, previous 0.93: dropped by 0.05, allowed 0.02" in run.err


def test_a_non_numeric_metric_in_the_lock_file_is_no_previous_build_for_a_gate(
    project: ProjectFactory,
) -> None:
    """What a fresh clone's gate reads from mlbuild.lock is checked like any other record:
    a metric that is not a number (a hand-edited lock) is no previous value, said so."""
    p = project("ml_sweep")
    _gate(p, "{metric: accuracy, max_drop: 0.02, vs: previous}")
    p.build("-j", "2")
    shutil.rmtree(p.path(".mlbuild"))
    lock = json.loads(p.read("mlbuild.lock"))
    lock["targets"]["model:prod"]["metrics"]["accuracy"] = "high"
    p.write("mlbuild.lock", json.dumps(lock))
    _score(p, "tree", acc="0.85")
    run = p.mlbuild("-j", "2")
    assert run.code == 0, run.err
    [gate] = p.manifest("model:prod")[1]["gates"]
    assert "no previous build with accuracy" in gate["message"]
