"""`mlbuild lineage` and `mlbuild history`: the recorded past of a target."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import Project


def test_lineage_follows_manifest_links_to_the_sources(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build()
    tree = json.loads(p.mlbuild("lineage", "model:lr", "--json").out)
    assert tree["target"] == "model:lr"
    [features] = tree["upstream"]
    [raw] = features["upstream"]
    assert (features["target"], raw["target"]) == ("features:even", "data:raw")
    assert raw["sources"] == [{"path": "src/extra.txt", "xxh3": raw["sources"][0]["xxh3"]}]
    assert [c["path"] for c in raw["code"]] == ["scripts/gen.py", "scripts/helpers.py"]
    shown = json.loads(p.mlbuild("manifest", "show", "data:raw", "--json").out)
    assert raw["manifest"] == shown["id"]
    assert raw["outs"][0]["sha256"] == shown["manifest"]["outs"][0]["sha256"]
    text = p.mlbuild("lineage", "model:lr").out
    assert "  features:even  sha256:" in text
    assert "source src/extra.txt" in text


def test_lineage_reports_a_missing_upstream_manifest(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build()
    raw_id = json.loads(p.mlbuild("manifest", "show", "data:raw", "--json").out)["id"]
    hexd = raw_id.split(":")[1]
    p.path(f".mlbuild/manifests/{hexd[:2]}/{hexd[2:]}.json").unlink()
    tree = json.loads(p.mlbuild("lineage", "features:even", "--json").out)
    assert tree["upstream"] == [{"manifest": raw_id, "missing": True}]


def test_history_lists_builds_newest_first(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build()
    p.replace("params.yaml", "lr: 0.1", "lr: 0.2")
    p.build()
    p.path("models/lr.txt").unlink()
    p.build("-B", "model:lr")
    builds = json.loads(p.mlbuild("history", "model:lr", "--json").out)["builds"]
    assert [b["manifest"]["params"]["train.lr"] for b in builds] == [0.2, 0.2, 0.1]
    assert [b["manifest"]["status"] for b in builds] == ["built", "built", "built"]
    lines = p.mlbuild("history", "model:lr").out.splitlines()
    assert len(lines) == 3 and "train.lr=0.2" in lines[0] and "train.lr=0.1" in lines[2]
