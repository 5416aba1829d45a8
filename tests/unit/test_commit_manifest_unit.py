"""The manifest of `mlbuild commit` (status ``commit``, ``committed: true``) through the
strict parser: accepted as written, refused when the flag and the status disagree."""

from __future__ import annotations

from typing import Any

import pytest

from mlbuild.digest import canonical_json
from mlbuild.provenance.parse import parse_manifest
from mlbuild.provenance.records import ManifestError, manifest_id
from tests.fakes import minimal_manifest


def _manifest(status: str) -> dict[str, Any]:
    return minimal_manifest(status, cmd=["make"])


def _parse(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(parse_manifest(canonical_json(doc).encode(), manifest_id(doc), "t"))


def test_a_commit_manifest_says_nothing_ran_and_parses() -> None:
    doc = _parse(_manifest("commit"))
    assert doc["status"] == "commit" and doc["committed"] is True
    assert doc["exit_code"] is None and doc["command"] == ["make"]
    assert "committed" not in _parse(_manifest("built"))


@pytest.mark.parametrize(
    ("status", "committed"),
    [("commit", None), ("commit", "yes"), ("commit", 1), ("built", True), ("restored", False)],
)
def test_a_committed_flag_that_disagrees_with_the_status_is_refused(
    status: str, committed: object
) -> None:
    doc = _manifest(status)
    if committed is None:
        del doc["committed"]
    else:
        doc["committed"] = committed
    with pytest.raises(ManifestError, match="committed"):
        _parse(doc)


def test_overrides_of_a_set_build_parse_when_they_are_scalars_among_its_params() -> None:
    doc = minimal_manifest(params={"train": {"lr": 0.5}, "seed": 1}, overrides={"train.lr": 0.5})
    assert _parse(doc)["overrides"] == {"train.lr": 0.5}
    assert "overrides" not in _parse(minimal_manifest(params={"seed": 1}))


@pytest.mark.parametrize(
    ("overrides", "found"),
    [
        (["train.lr"], "overrides is"),  # not an object
        ({"train.lr": [1, 2]}, "not a scalar"),
        ({"train.lr": {"x": 1}}, "not a scalar"),
        ({"../etc/passwd": 1}, "a key under one of its params"),  # read by no param
        ({"trainx": 1}, "a key under one of its params"),  # a prefix is not a parent
        ({"": 1}, "a key under one of its params"),
    ],
)
def test_forged_overrides_make_the_manifest_unusable(overrides: object, found: str) -> None:
    doc = minimal_manifest(params={"train": {"lr": 0.5}})
    doc["overrides"] = overrides
    with pytest.raises(ManifestError, match="overrides") as err:
        _parse(doc)
    assert found in str(err.value)
