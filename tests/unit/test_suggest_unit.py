"""The one "did you mean": a swap of two neighbouring letters is one edit, so the word a
user meant wins over one that merely shares letters (``dpes`` -> ``deps``, not ``desc``)."""

from __future__ import annotations

import pytest

from mlbuild.config import TARGET_KEYS, TOP_KEYS
from mlbuild.suggest import did_you_mean, edit_distance, suggest

COMMANDS = ("build", "explain", "list", "params", "show", "status", "validate", "why")


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("deps", "deps", 0),
        ("", "abc", 3),
        ("abc", "", 3),
        ("dpes", "deps", 1),  # one transposition
        ("dpes", "desc", 2),
        ("stauts", "status", 1),
        ("kitten", "sitting", 3),
        ("outz", "outs", 1),
        ("ca", "abc", 3),  # optimal string alignment: no substring is edited twice
        ("abcdef", "badcfe", 3),
    ],
)
def test_edit_distance_counts_a_transposition_as_one_edit(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b) == distance
    assert edit_distance(b, a) == distance


@pytest.mark.parametrize(
    ("word", "choices", "meant"),
    [
        ("dpes", TARGET_KEYS, "deps"),  # difflib said 'desc'
        ("otus", TARGET_KEYS, "outs"),
        ("prams", TARGET_KEYS, "params"),
        ("retires", TARGET_KEYS, "retries"),
        ("tragets", TOP_KEYS, "targets"),
        ("remote_opts", TOP_KEYS, "remote_options"),
        ("strict_input", TOP_KEYS, "strict_inputs"),
        ("stauts", COMMANDS, "status"),
        ("lsit", COMMANDS, "list"),
        ("vaildate", COMMANDS, "validate"),
        ("train.rl", ("train", "train.lr", "seed"), "train.lr"),
        ("modle:prod", ("model:prod", "model:dev", "data:raw"), "model:prod"),
        ("integer", ("int", "float", "str", "bool", "datetime", "any"), "int"),  # spelled out
        ("minimum", ("min", "max", "column", "severity"), "min"),
    ],
)
def test_the_intended_word_is_suggested(word: str, choices: tuple[str, ...], meant: str) -> None:
    assert suggest(word, choices) == meant


@pytest.mark.parametrize(
    ("word", "choices"),
    [
        ("x", ("y", "z")),  # replacing the whole word is not "close"
        ("colour", TARGET_KEYS),
        ("deploy", COMMANDS),
        ("ab", ("abcdef",)),  # a common prefix under 3 characters is a coincidence
        ("deps", ("deps",)),  # the word itself is no suggestion
        ("deps", ()),
    ],
)
def test_nothing_is_suggested_when_no_choice_is_close(word: str, choices: tuple[str, ...]) -> None:
    assert suggest(word, choices) is None


def test_ties_break_the_same_way_whatever_the_order_of_the_choices() -> None:
    names = ["model:b", "model:a", "mode:c"]
    assert suggest("model:c", names) == "model:a"
    assert suggest("model:c", reversed(names)) == "model:a"
    assert suggest("model:c", iter(sorted(names))) == "model:a"
    # Equal distance: the longer shared prefix wins over the alphabet.
    assert suggest("abxd", ["zbcd", "abcd"]) == "abcd"


def test_closer_beats_a_prefix() -> None:
    assert suggest("minimun", ["min", "minimum"]) == "minimum"


def test_did_you_mean_is_the_hint_text_or_none() -> None:
    assert did_you_mean("dpes", TARGET_KEYS) == "did you mean 'deps'?"
    assert did_you_mean("zzzz", TARGET_KEYS) is None
