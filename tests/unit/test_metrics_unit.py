"""Metrics: flattening, reading files, gates, picking a winner, and diffs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from mlbuild.config import GateSpec, PromoteSpec
from mlbuild.errors import BuildFailed, CheckFailed
from mlbuild.metrics import diff_metrics, evaluate_gates, flatten, pick_winner, read_metrics

# --------------------------------------------------------------------------- flatten


def test_flatten_dots_nested_keys_keeps_scalars_and_skips_lists() -> None:
    data = {
        "loss": 0.25,
        "eval": {"acc": 0.9, "per_class": [0.8, 0.95], "test": {"f1": 0.7}},
        "name": "run-1",
        "converged": True,
        "note": None,
        "epochs": 12,
    }
    assert flatten(data) == {
        "converged": True,
        "epochs": 12,
        "eval.acc": 0.9,
        "eval.test.f1": 0.7,
        "loss": 0.25,
        "name": "run-1",
        "note": None,
    }
    assert list(flatten(data)) == sorted(flatten(data))


def test_flatten_of_an_empty_mapping_is_empty() -> None:
    assert flatten({}) == {}
    assert flatten({"eval": {}}) == {}


# --------------------------------------------------------------------------- read_metrics

NOT_A_MAPPING = "metrics file {} must hold a mapping of names to values"


def test_read_metrics_merges_json_and_yaml_files_in_order(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m/a.json").write_text('{"acc": 0.5, "eval": {"loss": 1.5}}')
    (tmp_path / "m/b.yaml").write_text("acc: 0.75\nextra:\n  n: 3\n")
    metrics, warnings = read_metrics(str(tmp_path), ["m/a.json", "m/b.yaml"])
    assert metrics == {"acc": 0.75, "eval.loss": 1.5, "extra.n": 3}
    assert warnings == []


def test_read_metrics_records_nan_and_infinity_as_null_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text('{"acc": NaN, "loss": Infinity, "n": 3}')
    metrics, warnings = read_metrics(str(tmp_path), ["m.json"])
    assert metrics == {"acc": None, "loss": None, "n": 3}
    assert warnings == [
        "metric acc in m.json is nan: recorded as null",
        "metric loss in m.json is inf: recorded as null",
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("m.json", None, "metrics file m.json was not written"),
        ("m.json", "accuracy: 0.9", "metrics file m.json is not valid JSON ("),
        ("m.json", "[0.9, 0.8]", f"{NOT_A_MAPPING.format('m.json')}, not list"),
        ("m.json", "0.9", f"{NOT_A_MAPPING.format('m.json')}, not float"),
        ("m.yaml", "acc: [unclosed", "metrics file m.yaml is not valid YAML: "),
        ("m.yml", "- 1\n- 2\n", f"{NOT_A_MAPPING.format('m.yml')}, not list"),
    ],
)
def test_read_metrics_refuses_what_is_not_a_metrics_mapping(
    tmp_path: Path, name: str, content: str | None, message: str
) -> None:
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(BuildFailed) as info:
        read_metrics(str(tmp_path), [name])
    assert info.value.message.startswith(message)
    assert "\n" not in info.value.message
    assert info.value.exit_code == 1


# --------------------------------------------------------------------------- gates


def test_gate_min_and_max_are_inclusive_bounds() -> None:
    gates = [
        GateSpec("acc", min=0.9),
        GateSpec("acc", max=0.9),
        GateSpec("loss", max=0.1),
        GateSpec("loss", min=0.5),
    ]
    results = evaluate_gates("model:prod", gates, {"acc": 0.9, "loss": 0.25}, None)
    assert [r.passed for r in results] == [True, True, False, False]
    assert [r.message for r in results] == [
        "acc = 0.9, needs >= 0.9",
        "acc = 0.9, needs <= 0.9",
        "loss = 0.25, needs <= 0.1",
        "loss = 0.25, needs >= 0.5",
    ]
    assert results[2].value == 0.25
    assert results[2].to_json() == {
        "metric": "loss",
        "max": 0.1,
        "passed": False,
        "value": 0.25,
        "previous": None,
        "message": "loss = 0.25, needs <= 0.1",
    }


def test_gate_max_drop_compares_with_the_previous_metrics() -> None:
    gate = GateSpec("acc", max_drop=0.01)
    [first] = evaluate_gates("m", [gate], {"acc": 0.9}, None)
    assert first.passed
    assert first.previous is None
    assert "no previous build with acc" in first.message
    [same_drop] = evaluate_gates("m", [gate], {"acc": 0.92}, {"acc": 0.93})
    assert same_drop.passed  # 0.93 - 0.92 is 0.01000000000000001 in floats
    assert same_drop.previous == 0.93
    [better] = evaluate_gates("m", [gate], {"acc": 0.99}, {"acc": 0.93})
    assert better.passed
    [worse] = evaluate_gates("m", [gate], {"acc": 0.88}, {"acc": 0.93})
    assert not worse.passed
    assert worse.message == "acc = 0.88, previous 0.93: dropped by 0.05, allowed 0.01"
    assert worse.to_json()["vs"] == "previous"
    [null_before] = evaluate_gates("m", [gate], {"acc": 0.5}, {"acc": None})
    assert null_before.passed


def test_gate_max_rise_guards_a_metric_where_lower_is_better() -> None:
    from mlbuild.config import SpecError, parse_gates

    [gate] = parse_gates([{"metric": "loss", "max_rise": 0.02, "vs": "previous"}])
    assert gate.to_json() == {"metric": "loss", "max_rise": 0.02, "vs": "previous"}
    [lower] = evaluate_gates("m", [gate], {"loss": 0.10}, {"loss": 0.30})
    assert lower.passed
    [higher] = evaluate_gates("m", [gate], {"loss": 0.35}, {"loss": 0.30})
    assert not higher.passed
    assert higher.message == "loss = 0.35, previous 0.3: rose by 0.05, allowed 0.02"
    with pytest.raises(SpecError, match="exactly one of 'min', 'max', 'max_drop', 'max_rise'"):
        parse_gates([{"metric": "loss", "max_rise": 0.1, "max_drop": 0.1}])
    with pytest.raises(SpecError, match="max_rise must not be negative"):
        parse_gates([{"metric": "loss", "max_rise": -0.1}])


def test_gate_on_a_missing_or_non_numeric_metric_fails() -> None:
    metrics = {"acc": None, "name": "run", "ok": True, "loss": 0.2}
    results = evaluate_gates(
        "model:prod",
        [
            GateSpec("f1", min=0.5),
            GateSpec("acc", min=0.5),
            GateSpec("name", min=0.5),
            GateSpec("ok", min=0.5),
        ],
        metrics,
        None,
    )
    assert [r.passed for r in results] == [False, False, False, False]
    assert results[0].message == "model:prod has no metric 'f1' (has: acc, loss, name, ok)"
    assert all("not a number" in r.message for r in results[1:])
    assert "acc" in results[1].message
    [none] = evaluate_gates("t", [GateSpec("f1", max=1)], {}, None)
    assert none.message == "t has no metric 'f1' (has: none)"


# --------------------------------------------------------------------------- pick_winner


def _promote(mode: str, *candidates: str, by: str = "acc") -> PromoteSpec:
    return PromoteSpec("model:*", by, mode, candidates)


def test_pick_winner_by_max_and_by_min() -> None:
    scores: dict[str, dict[str, Any]] = {
        "model:a": {"acc": 0.8},
        "model:b": {"acc": 0.95},
        "model:c": {"acc": -1},
    }
    assert pick_winner("p", _promote("max", "model:a", "model:b", "model:c"), scores) == (
        "model:b",
        {"model:a": 0.8, "model:b": 0.95, "model:c": -1.0},
    )
    winner, _ = pick_winner("p", _promote("min", "model:a", "model:b", "model:c"), scores)
    assert winner == "model:c"


def test_pick_winner_with_zero_and_negative_scores() -> None:
    scores = {"a": {"acc": -0.5}, "b": {"acc": -0.2}, "c": {"acc": 0.0}}
    assert pick_winner("p", _promote("max", "a", "b"), scores)[0] == "b"
    assert pick_winner("p", _promote("min", "c", "b"), scores)[0] == "b"
    assert pick_winner("p", _promote("max", "a", "c"), scores)[0] == "c"
    assert pick_winner("p", _promote("min", "a", "c"), scores)[0] == "a"


def test_pick_winner_breaks_ties_by_candidate_order() -> None:
    scores = {"z": {"acc": 0.9}, "a": {"acc": 0.9}, "m": {"acc": 0.5}}
    assert pick_winner("p", _promote("max", "z", "a", "m"), scores)[0] == "z"
    assert pick_winner("p", _promote("max", "a", "z", "m"), scores)[0] == "a"
    scores = {"z": {"acc": 0.1}, "a": {"acc": 0.1}}
    assert pick_winner("p", _promote("min", "z", "a"), scores)[0] == "z"


def test_pick_winner_passes_over_missing_nan_and_text_scores() -> None:
    scores: dict[str, dict[str, Any]] = {
        "nan": {"acc": math.nan},
        "none": {"acc": None},
        "text": {"acc": "0.99"},
        "flag": {"acc": True},
        "ok": {"acc": 0.1},
        "gone": {},
    }
    cands = ("nan", "none", "text", "flag", "ok", "gone", "unbuilt")
    winner, table = pick_winner("p", _promote("max", *cands), scores)
    assert winner == "ok"
    assert table == {c: (0.1 if c == "ok" else None) for c in cands}


def test_pick_winner_without_any_numeric_score_is_a_check_failure() -> None:
    scores: dict[str, dict[str, Any]] = {"model:a": {"acc": None}, "model:b": {"loss": 1.0}}
    with pytest.raises(CheckFailed) as info:
        pick_winner("model:prod", _promote("max", "model:a", "model:b"), scores)
    assert info.value.exit_code == 3
    assert info.value.message == (
        "no candidate of model:prod has a numeric 'acc' to promote by "
        "(model:a: null (NaN, infinite or empty), model:b: missing)"
    )
    [finding] = info.value.findings
    promotion = finding["promotion"]
    assert isinstance(promotion, dict)
    assert promotion["scores"] == {"model:a": None, "model:b": None}


# --------------------------------------------------------------------------- diff_metrics


def test_diff_metrics_reports_changed_added_and_removed() -> None:
    old = {"model:a": {"acc": 0.8, "loss": 0.5, "gone": 1}, "model:old": {"acc": 0.1}}
    new = {"model:a": {"acc": 0.9, "loss": 0.5, "added": 2}, "model:new": {"acc": 0.2}}
    changes = diff_metrics(old, new, all_=False)
    assert [(c.target, c.metric, c.old, c.new) for c in changes] == [
        ("model:a", "acc", 0.8, 0.9),
        ("model:a", "added", None, 2),
        ("model:a", "gone", 1, None),
        ("model:new", "acc", None, 0.2),
        ("model:old", "acc", 0.1, None),
    ]
    every = diff_metrics(old, new, all_=True)
    assert ("model:a", "loss") in [(c.target, c.metric) for c in every]
    assert len(every) == len(changes) + 1


def test_diff_metrics_tells_a_null_value_from_a_missing_one() -> None:
    changes = diff_metrics({"m": {"acc": None}}, {"m": {}}, all_=False)
    assert [(c.metric, c.old, c.new) for c in changes] == [("acc", None, None)]


def test_metric_change_delta_and_relative() -> None:
    [change] = diff_metrics({"m": {"acc": 0.8}}, {"m": {"acc": 0.9}}, all_=False)
    assert change.delta == pytest.approx(0.1)
    assert change.relative == pytest.approx(0.125)
    assert change.to_json() == {
        "target": "m",
        "metric": "acc",
        "old": 0.8,
        "new": 0.9,
        "change": pytest.approx(0.1),
        "relative": pytest.approx(0.125),
    }
    [from_zero] = diff_metrics({"m": {"n": 0}}, {"m": {"n": 5}}, all_=False)
    assert (from_zero.delta, from_zero.relative) == (5, None)
    [negative] = diff_metrics({"m": {"n": -2.0}}, {"m": {"n": -1.0}}, all_=False)
    assert negative.relative == pytest.approx(0.5)
    [text] = diff_metrics({"m": {"algo": "lr"}}, {"m": {"algo": "knn"}}, all_=False)
    assert (text.delta, text.relative) == (None, None)
