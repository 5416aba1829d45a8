"""``--set KEY=VALUE`` parsing and the overlay over merged params (config/params.py):
values are YAML scalars as a params file would hold them (plus ``1e-3`` as a number), the
params trees read from files are never changed, and every refusal is a UsageError."""

from __future__ import annotations

import math
from typing import Any

import pytest

from mlbuild.config.params import (
    Params,
    override_text,
    overrides_read,
    parse_overrides,
)
from mlbuild.errors import UsageError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.5", 0.5),
        ("1e-3", 0.001),
        ("-2E+2", -200.0),
        ("7", 7),
        ("'7'", "7"),
        ('"true"', "true"),
        ("true", True),
        ("null", None),
        ("x y", "x y"),
        ("", ""),
        ("a=b", "a=b"),  # only the first = splits
    ],
)
def test_a_value_is_read_as_a_yaml_scalar(text: str, value: Any) -> None:
    got = parse_overrides([f"train.lr={text}"])["train.lr"]
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("train.lr", "is not KEY=VALUE"),
        ("=1", "is not KEY=VALUE"),
        ("train..lr=1", "is not KEY=VALUE"),
        ("k=[1, 2]", "a list is not a scalar"),
        ("k={a: 1}", "a mapping is not a scalar"),
        ("k=.inf", "not a finite number"),
        ("k=2026-01-01", "a date is not a params value"),
        ("k='open", "--set k:"),
    ],
)
def test_a_bad_set_is_a_usage_error(item: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_overrides([item])
    assert message in err.value.message


def test_a_key_given_twice_is_refused() -> None:
    with pytest.raises(UsageError, match="set twice"):
        parse_overrides(["a=1", "a=1"])


@pytest.mark.parametrize("value", ["2", "true", "null", "1e-3", "x y", "", 0.5, None, True])
def test_override_text_reads_back_as_the_same_value(value: Any) -> None:
    key, _, text = override_text("k", value).partition("=")
    assert key == "k" and parse_overrides([f"k={text}"])["k"] == value


def test_overlay_replaces_one_value_and_leaves_the_file_tree_alone() -> None:
    params = Params("mlbuild.yaml")
    from_file: dict[str, Any] = {"train": {"lr": 0.1, "tags": ["a", "b"]}, "seed": 1}
    params.values = from_file
    params.overlay({"train.lr": 0.5, "train.tags.1": "c"})
    assert params.values == {"train": {"lr": 0.5, "tags": ["a", "c"]}, "seed": 1}
    assert from_file == {"train": {"lr": 0.1, "tags": ["a", "b"]}, "seed": 1}
    assert params.origin("train.lr") == "--set"


@pytest.mark.parametrize(
    ("key", "message"),
    [("train.lrr", "unknown param"), ("train", "is a mapping"), ("train.tags", "is a list")],
)
def test_overlay_refuses_what_is_not_one_existing_value(key: str, message: str) -> None:
    params = Params("mlbuild.yaml")
    params.values = {"train": {"lr": 0.1, "tags": ["a"]}}
    with pytest.raises(UsageError, match=message):
        params.overlay({key: 1})


def test_a_target_sees_the_overrides_under_the_keys_it_reads() -> None:
    overrides = {"train.lr": 0.5, "seed": 2, "training.x": 1}
    assert overrides_read(["train"], overrides) == {"train.lr": 0.5}
    assert overrides_read(["train.lr", "seed"], overrides) == {"train.lr": 0.5, "seed": 2}
    assert overrides_read(["train.lr.x"], overrides) == {}
    assert math.isclose(parse_overrides(["a=1e-3"])["a"], 0.001)
