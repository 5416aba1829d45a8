"""`mlbuild audit`: exit 0 when everything matches its manifests, 6 naming any violation."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlbuild.provenance.records import Manifest
from mlbuild.provenance.store import ManifestStore
from tests.conftest import Project


def _audit(p: Project, *args: str) -> tuple[int, dict[str, Any]]:
    run = p.mlbuild("audit", "--format", "json", *args)
    assert run.code in (0, 6), run.err
    return run.code, json.loads(run.out)


def _checks(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(f["target"], f["check"], f["subject"]) for f in report["findings"]]


def _current(p: Project, target: str) -> tuple[ManifestStore, Manifest]:
    """The manifest store and ``target``'s current manifest, to forge variants of it."""
    store = ManifestStore(str(p.path(".mlbuild/manifests")))
    mid = store.current(target)
    assert mid is not None
    doc = store.get(mid)
    assert doc is not None
    return store, doc


def _manifest_path(p: Project, target: str) -> str:
    store = ManifestStore(str(p.path(".mlbuild/manifests")))
    mid = store.current(target)
    assert mid is not None
    return store.path(mid)


def test_clean_build_audits_ok_with_every_manifest(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build()
    code, report = _audit(p, "model:lr")
    assert code == 0
    assert report["ok"] is True
    assert [t["target"] for t in report["targets"]] == ["data:raw", "features:even", "model:lr"]
    assert all(t["manifest"].startswith("sha256:") for t in report["targets"])
    table = p.mlbuild("audit")
    assert table.code == 0 and "audit: 4 targets: ok" in table.out


def test_one_flipped_byte_in_an_upstream_out_is_named(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build()
    path = p.path("data/raw.txt")
    data = bytearray(path.read_bytes())
    data[-2] ^= 1
    path.write_bytes(bytes(data))
    code, report = _audit(p, "model:lr")
    assert code == 6
    assert _checks(report) == [("data:raw", "out", "data/raw.txt")]


def test_one_flipped_byte_in_a_manifest_is_named(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build()
    path = _manifest_path(p, "features:even")
    os.chmod(path, 0o644)
    manifest = Path(path)
    manifest.write_text(manifest.read_text().replace('"status": "built"', '"status": "bui1t"'))
    code, report = _audit(p, "model:lr")
    assert code == 6
    assert ("features:even", "manifest-id", os.path.relpath(path, p.root)) in _checks(report)


def test_deleted_manifest_is_a_violation(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build()
    path = _manifest_path(p, "data:raw")
    os.unlink(path)
    code, report = _audit(p)
    assert code == 6
    checks = _checks(report)
    assert ("data:raw", "manifest", os.path.relpath(path, p.root)) in checks
    # The downstream manifest's link to it no longer resolves either.
    assert ("features:even", "upstream", "data/raw.txt") in checks


def test_manifest_of_an_unknown_schema_version_is_a_violation(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    p.build("data:raw")
    store, doc = _current(p, "data:raw")
    doc["schema"] = "mlbuild.manifest/v999"
    store.put(doc)  # a consistent id, appended to the history: only the schema is wrong
    code, report = _audit(p, "data:raw")
    assert code == 6
    [finding] = report["findings"]
    assert (finding["check"], finding["found"]) == ("schema", "mlbuild.manifest/v999")


def test_upstream_rebuilt_since_is_a_violation_but_a_restore_is_not(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    p.build()
    p.path("data/even.txt").unlink()
    assert p.build().restored == ["features:even"]
    assert _audit(p)[0] == 0  # restored bytes are the built bytes
    p.write("src/extra.txt", "10\n12\n")
    p.build("features:even")  # the models are not rebuilt
    code, report = _audit(p, "model:lr")
    assert code == 6
    assert _checks(report) == [("model:lr", "upstream", "data/even.txt")]
    assert "rebuilt since" in report["findings"][0]["found"]


def test_out_missing_from_workspace_but_intact_in_cache_is_ok(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    p.build()
    p.path("models/lr.txt").unlink()
    assert _audit(p)[0] == 0


def test_never_built_target_is_a_violation(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build("data:raw")
    code, report = _audit(p, "features:even")
    assert code == 6
    assert _checks(report) == [("features:even", "built", "mlbuild.lock")]


def test_dirty_git_tree_is_a_violation_unless_allowed(project: Callable[[str], Project]) -> None:
    p = project("basic")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run([*git, *args], cwd=p.root, check=True, capture_output=True)
    p.replace("params.yaml", "lr: 0.1", "lr: 0.2")  # uncommitted
    p.build()
    code, report = _audit(p, "model:lr")
    assert code == 6
    assert {f["check"] for f in report["findings"]} == {"git-dirty"}
    assert _audit(p, "model:lr", "--allow-dirty")[0] == 0


def test_forged_display_field_that_disagrees_with_the_key_is_a_violation(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    p.build("data:raw")
    store, doc = _current(p, "data:raw")
    doc["params"] = {"data.rows": 7}  # shown value changed, key components left alone
    store.put(doc)  # a consistent id: only the fields disagree
    code, report = _audit(p, "data:raw")
    assert code == 6
    assert [f["check"] for f in report["findings"]] == ["consistency"]


def test_markdown_report_lists_audited_manifests(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build("data:raw")
    run = p.mlbuild("audit", "data:raw", "--format", "md")
    assert run.code == 0
    assert run.out.startswith("| target | manifest |\n|---|---|\n| data:raw | sha256:")


def test_components_that_do_not_hash_to_the_key_are_a_violation(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    p.build("data:raw")
    store, doc = _current(p, "data:raw")
    doc["params"] = {"data.rows": 7}
    doc["components"]["params"] = {"data.rows": 7}  # shown and recorded, key left alone
    store.put(doc)
    code, report = _audit(p, "data:raw")
    assert code == 6
    found = {(f["check"], f["expected"].split()[0]) for f in report["findings"]}
    assert ("consistency", "key") in found
    assert ("lock", "params") in found


def test_a_dep_link_to_another_targets_manifest_is_a_violation(
    project: Callable[[str], Project],
) -> None:
    """A forged link (a new, consistent manifest whose target dep points at the build of a
    different target) never passes for that dep's provenance: the linked manifest must be
    of the dep's target and must have produced the dep's recorded bytes."""
    p = project("basic")
    p.build("model:lr")
    store, doc = _current(p, "features:even")
    [dep] = [d for d in doc["deps"] if d.get("target") == "data:raw"]
    dep["manifest"] = store.current("model:lr")  # another target's build
    store.put(doc)
    code, report = _audit(p, "features:even")
    assert code == 6
    [finding] = [f for f in report["findings"] if f["check"] == "upstream"]
    assert "model:lr" in finding["found"] and finding["subject"] == "data/raw.txt"
