"""Reproduction records (manifest kind ``reproduction``) and the pure parts of
`mlbuild reproduce`: the strict parser refuses a record whose verdict its results
contradict, records stay out of the build history, tolerances are parsed strictly and
metrics files are judged leaf by leaf."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlbuild.errors import UsageError
from mlbuild.provenance.parse import parse_manifest
from mlbuild.provenance.records import Manifest, ManifestError, manifest_id
from mlbuild.provenance.reproduce import parse_tolerances
from mlbuild.provenance.reproduce_compare import _metrics_diff
from mlbuild.provenance.store import ManifestStore

BUILD = "sha256:" + "ab" * 32
SHA_A = "sha256:" + "1" * 64
SHA_B = "sha256:" + "2" * 64


def _record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema": "mlbuild.manifest/v1",
        "target": "model:lr",
        "status": "reproduction",
        "reproduces": BUILD,
        "started": "2026-01-01T00:00:00.000000Z",
        "finished": "2026-01-01T00:00:01.000000Z",
        "seconds": 1.0,
        "user": "alice",
        "host": "box",
        "mlbuild": "0.1.0",
        "environment": {"python": "3.11", "platform": "x", "packages": {}, "git": {}},
        "executor": {"type": "local", "host": "box"},
        "tolerances": {},
        "verdict": "differs",
        "results": [
            {
                "path": "model.txt",
                "type": "file",
                "recorded": SHA_A,
                "reproduced": SHA_B,
                "identical": False,
                "within_tolerance": False,
                "summary": "3 → 4 bytes",
            }
        ],
        "differing": ["model.txt"],
        "error": None,
        "exit_code": 0,
        "log": None,
    }
    record.update(changes)
    return record


def _parse(record: dict[str, Any]) -> Manifest:
    return parse_manifest(json.dumps(record).encode(), manifest_id(record), "the record")


def test_a_reproduction_record_parses_and_stays_out_of_the_build_history(tmp_path: Path) -> None:
    record = _record()
    assert _parse(record) == record
    store = ManifestStore(str(tmp_path / ".mlbuild" / "manifests"))
    mid = store.put(record)
    assert store.history("model:lr") == []
    assert store.current("model:lr") is None
    assert store.reproductions("model:lr") == ([mid], [])
    assert store.get(mid) == record


@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        ({"verdict": "identical"}, "verdict"),
        ({"verdict": "maybe"}, "verdict"),
        ({"differing": []}, "differing"),
        ({"reproduces": "sha256:xyz"}, "reproduces"),
        ({"tolerances": {"accuracy": -1}}, "tolerances"),
        ({"verdict": "failed"}, "error"),
        ({"error": "boom"}, "error"),
        ({"results": [{**_record()["results"][0], "identical": True}]}, "identical"),
        ({"results": [{**_record()["results"][0], "path": "../x"}]}, "path"),
    ],
)
def test_a_reproduction_record_its_results_contradict_is_refused(
    changes: dict[str, Any], refused: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        _parse(_record(**changes))
    assert refused in caught.value.found


def test_tolerances_are_metric_equals_a_non_negative_number() -> None:
    assert parse_tolerances(["f1=0.01", "accuracy=0.005"]) == {"accuracy": 0.005, "f1": 0.01}
    for bad in ("accuracy", "=0.1", "accuracy=-0.1", "accuracy=nan", "accuracy=x"):
        with pytest.raises(UsageError, match="bad --tolerance"):
            parse_tolerances([bad])


def test_a_metrics_file_is_within_tolerance_only_if_nothing_else_moved(tmp_path: Path) -> None:
    recorded = tmp_path / "recorded" / "m.json"
    recorded.parent.mkdir()
    recorded.write_text(json.dumps({"acc": 0.9, "cm": [[1, 2]], "note": "a"}))
    work = tmp_path / "work"
    work.mkdir()

    def judge(new: dict[str, Any], tol: dict[str, float]) -> tuple[bool, str]:
        (work / "m.json").write_text(json.dumps(new))
        _, within, summary = _metrics_diff("m.json", str(recorded), str(work), {}, 1, tol)
        return within, summary

    assert judge({"acc": 0.903, "cm": [[1, 2]], "note": "a"}, {"acc": 0.005}) == (
        True,
        "acc 0.9 → 0.903 (+0.003, tolerance 0.005)",
    )
    assert judge({"acc": 0.903, "cm": [[1, 2]], "note": "a"}, {})[0] is False
    assert judge({"acc": 0.9, "cm": [[1, 3]], "note": "a"}, {"acc": 0.005}) == (
        False,
        "cm.0.1 2 → 3 (+1)",
    )
    assert judge({"acc": 0.9, "cm": [[1, 2]], "note": "b"}, {}) == (False, 'note "a" → "b"')
    assert judge({"note": "a", "cm": [[1, 2]], "acc": 0.90}, {}) == (
        True,
        "same metric values, different bytes",
    )
