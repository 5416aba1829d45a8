"""The manifest of `mlbuild commit` (status ``commit``, ``committed: true``) through the
strict parser: accepted as written, refused when the flag and the status disagree."""

from __future__ import annotations

from typing import Any

import pytest

from mlbuild.digest import canonical_json
from mlbuild.provenance.parse import parse_manifest
from mlbuild.provenance.records import Identity, ManifestError, build_manifest, manifest_id

KEY = "xxh3-128:" + "1" * 32


def _manifest(status: str) -> dict[str, Any]:
    identity = Identity("u", "h", "3.11", "linux", {"commit": None, "dirty": False})
    doc = build_manifest(
        target="t",
        status=status,
        key=KEY,
        components={"cmd": ["make"], "deps": {}, "params": {}, "code": {}, "env": {}},
        started=0.0,
        finished=1.0,
        identity=identity,
        deps=[],
        outs=[],
        log_digest=None,
        env={},
    )
    return dict(doc)


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
