"""Provenance manifests: one per build or restore, content-addressed, linked upstream."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable

from mlbuild.digest import canonical_json
from tests.conftest import Project


def test_every_build_writes_a_manifest_whose_id_recomputes(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    p.build()
    mid, doc = p.manifest("model:lr")
    assert mid == "sha256:" + hashlib.sha256(canonical_json(doc).encode()).hexdigest()
    assert doc["schema"] == "mlbuild.manifest/v1"
    assert doc["status"] == "built"
    assert doc["target"] == "model:lr"
    assert doc["command"] == ["(cat data/even.txt; echo lr=0.1) > models/lr.txt"]
    assert doc["params"] == {"train.lr": 0.1}
    assert doc["exit_code"] == 0
    assert doc["profile"]["schema"] == "mlbuild.profile/v1"
    [out] = doc["outs"]
    data = p.path("models/lr.txt").read_bytes()
    assert out["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert out["size"] == len(data)
    lock = json.loads(p.read("mlbuild.lock"))["targets"]["model:lr"]
    assert doc["key"] == lock["key"]
    assert doc["log"].startswith("sha256:")


def test_target_deps_link_to_the_upstream_manifest(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build()
    upstream_id, _ = p.manifest("features:even")
    _, doc = p.manifest("model:lr")
    [dep] = doc["deps"]
    assert dep == {
        "path": "data/even.txt",
        "xxh3": dep["xxh3"],
        "target": "features:even",
        "manifest": upstream_id,
    }
    _, raw = p.manifest("data:raw")
    code = raw["code"]
    assert sorted(code) == ["scripts/gen.py", "scripts/helpers.py"]


def test_restore_writes_a_restored_manifest_pointing_to_the_build(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    p.build()
    built_id, _ = p.manifest("model:lr")
    assert p.build().ran == []  # a no-op writes no manifest
    assert p.manifest("model:lr")[0] == built_id
    p.path("models/lr.txt").unlink()
    assert p.build().restored == ["model:lr"]
    restored_id, doc = p.manifest("model:lr")
    assert restored_id != built_id
    assert doc["status"] == "restored"
    assert doc["restored_from"] == built_id
    assert doc["exit_code"] is None
    history = p.read(".mlbuild/manifests/index/model__lr.jsonl").split()
    assert history == [built_id, restored_id]


def test_failed_build_writes_no_manifest(project: Callable[[str], Project]) -> None:
    p = project("faults")
    assert p.mlbuild("bad:exit").code == 1
    run = p.mlbuild("manifest", "show", "bad:exit")
    assert run.code == 2
    assert "bad:exit has no manifest here: it was never built in this workspace" in run.err


def test_git_commit_and_dirty_flag_are_recorded(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build("data:raw")
    _, doc = p.manifest("data:raw")
    assert doc["environment"]["git"] == {
        "commit": None,
        "dirty": None,
        "note": "not a git checkout",
    }
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run([*git, *args], cwd=p.root, check=True, capture_output=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=p.root, capture_output=True, text=True, check=True
    ).stdout.strip()
    p.replace("params.yaml", "lr: 0.1", "lr: 0.7")
    p.build()
    _, doc = p.manifest("model:lr")
    assert doc["environment"]["git"] == {"commit": head, "dirty": True}
    assert doc["environment"]["python"]


def test_a_committed_lock_file_and_outs_do_not_make_the_tree_dirty(
    project: Callable[[str], Project],
) -> None:
    """Users commit mlbuild.lock (and often metrics files) after building: the next build
    rewrites them, and that must not mark every later build as made from a dirty tree."""
    p = project("basic")
    p.build()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    p.write(".gitignore", ".mlbuild/\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "x"]):
        subprocess.run([*git, *args], cwd=p.root, check=True, capture_output=True)
    p.replace("params.yaml", "lr: 0.1", "lr: 0.7")
    subprocess.run([*git, "commit", "-qam", "lr"], cwd=p.root, check=True, capture_output=True)
    p.build()  # rewrites the committed lock file and outs
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=p.root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "mlbuild.lock" in dirty  # the build did change committed files...
    p.build("-B", "model:lr")
    _, doc = p.manifest("model:lr")
    assert doc["environment"]["git"]["dirty"] is False  # ...which do not count
    p.replace("params.yaml", "lr: 0.7", "lr: 0.8")  # a source change still does
    p.build()
    _, doc = p.manifest("model:lr")
    assert doc["environment"]["git"]["dirty"] is True
