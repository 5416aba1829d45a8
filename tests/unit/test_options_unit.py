"""--resources parsing and BuildOptions (mlbuild.options)."""

from __future__ import annotations

import os

import pytest

from mlbuild.errors import UsageError
from mlbuild.options import BuildOptions, parse_resources


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpu=1,mem=16", {"gpu": 1, "mem": 16}),
        ("gpu=2", {"gpu": 2}),
        (" gpu = 1 , mem = 4 ", {"gpu": 1, "mem": 4}),
        ("gpu=1,", {"gpu": 1}),
        ("gpu=0", {"gpu": 0}),
        ("", {}),
        ("gpu=1,gpu=3", {"gpu": 3}),
    ],
)
def test_resources_flag_parses_named_integer_pools(text: str, expected: dict[str, int]) -> None:
    assert parse_resources(text) == expected


@pytest.mark.parametrize("text", ["gpu", "gpu=", "=1", "gpu=one", "gpu=-1", "gpu=1.5", "a=1,b"])
def test_bad_resources_flag_is_a_usage_error_naming_the_entry(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_resources(text)
    assert info.value.exit_code == 2
    assert "NAME=INT" in str(info.value)


def test_jobs_flag_wins_over_the_pipeline_setting() -> None:
    assert BuildOptions(jobs=3).effective_jobs(8) == 3


def test_pipeline_jobs_is_used_without_a_flag() -> None:
    assert BuildOptions().effective_jobs(5) == 5


def test_jobs_default_to_the_cpu_count() -> None:
    assert BuildOptions().effective_jobs(None) == (os.cpu_count() or 1)


def test_build_options_are_immutable() -> None:
    from dataclasses import FrozenInstanceError

    opts = BuildOptions()
    with pytest.raises(FrozenInstanceError):
        opts.jobs = 4  # type: ignore[misc]


def test_resources_with_non_ascii_digit_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        parse_resources("gpu=²")
