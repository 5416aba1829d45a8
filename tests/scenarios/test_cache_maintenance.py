"""`mlbuild cache verify` and `mlbuild gc`, on the local cache and on a file:// remote."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Project

Workspace = Callable[..., Project]

PIPELINE = """
params: {n: 1}
targets:
  data:raw:
    cmd: for i in $(seq 1000); do echo ${params.n}; done > ${outs[0]}
    outs: [data/raw.txt]
  model:m:
    cmd: mkdir -p ${outs[0]} && cp ${deps[0]} ${outs[0]}/a.txt && echo x > ${outs[0]}/b.txt
    deps: [data:raw]
    outs: [models/m]
"""


def _objects(root: Path) -> list[Path]:
    return sorted(p for p in (root / "objects").rglob("*") if p.is_file())


def _runs(root: Path) -> list[Path]:
    return sorted((root / "runs").rglob("*.json"))


def test_verify_reports_a_corrupt_object_and_repair_drops_it_with_its_entries(
    workspace: Workspace,
) -> None:
    p = workspace(PIPELINE)
    p.build()
    cache = p.root / ".mlbuild/cache"
    ok = p.mlbuild("cache", "verify")
    assert ok.code == 0, ok.err
    assert f"checked {len(_objects(cache))} objects: 0 corrupt, 0 missing" in ok.out
    raw = p.path("data/raw.txt").read_bytes()
    [obj] = [o for o in _objects(cache) if o.read_bytes() == raw]
    obj.chmod(0o644)
    obj.write_bytes(b"2\n" * 1000)
    bad = p.mlbuild("cache", "verify")
    assert bad.code == 6
    rel = obj.relative_to(cache).as_posix()
    assert f"corrupt  {rel}" in bad.out
    assert "1 corrupt and 0 missing cache object" in bad.err
    runs_before = len(_runs(cache))
    fixed = p.mlbuild("cache", "verify", "--repair")
    assert fixed.code == 0, fixed.err
    assert not obj.exists()
    assert len(_runs(cache)) == runs_before - 2  # data:raw's entry and model:m's (its copy)
    assert p.mlbuild("cache", "verify").code == 0
    # The workspace copy was never touched, and the next build restores nothing corrupt.
    p.path("data/raw.txt").unlink()
    run = p.build()
    assert run.ran == ["data:raw"] and run.restored == []
    assert p.path("data/raw.txt").read_bytes() == raw


def test_gc_keeps_the_lock_and_the_last_builds_and_removes_the_rest(
    workspace: Workspace,
) -> None:
    p = workspace(PIPELINE)
    sizes = []
    for n in (1, 2, 3, 4):
        p.replace("mlbuild.yaml", f"n: {n - 1}", f"n: {n}") if n > 1 else None
        p.build()
        sizes.append(p.path("data/raw.txt").read_bytes())
    cache = p.root / ".mlbuild/cache"
    assert len(_runs(cache)) == 8
    preview = p.mlbuild("gc", "--keep", "2", "--dry-run")
    assert preview.code == 0, preview.err
    assert "would remove" in preview.out and "and 4 run-cache entries" in preview.out
    assert len(_runs(cache)) == 8
    run = p.mlbuild("gc", "--keep", "2")
    assert run.code == 0, run.err
    assert len(_runs(cache)) == 4
    kept = {o.read_bytes() for o in _objects(cache)}
    assert sizes[3] in kept and sizes[2] in kept
    assert sizes[0] not in kept and sizes[1] not in kept
    # Manifests are never collected; the kept builds still restore.
    assert len(p.mlbuild("history", "data:raw").out.strip().splitlines()) >= 4
    p.replace("mlbuild.yaml", "n: 4", "n: 3")
    assert p.build().restored == ["data:raw", "model:m"]
    assert p.mlbuild("gc", "--keep", "0").code == 2


def test_verify_and_gc_on_the_remote(workspace: Workspace, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    p = workspace(PIPELINE + f"remote: file://{remote}\n")
    p.build("--push")
    p.replace("mlbuild.yaml", "n: 1", "n: 2")
    p.build("--push")
    assert len(_runs(remote)) == 4
    assert p.mlbuild("cache", "verify", "--remote").code == 0
    [obj] = [o for o in _objects(remote) if o.read_bytes() == b"2\n" * 1000][:1]
    obj.chmod(0o644)
    obj.write_bytes(b"oops")
    bad = p.mlbuild("cache", "verify", "--remote")
    assert bad.code == 6 and "corrupt  objects/" in bad.out
    assert p.mlbuild("cache", "verify", "--remote", "--repair").code == 0
    assert len(_runs(remote)) == 2  # the builds that needed it are gone from the remote
    entries = [json.loads(r.read_text()) for r in _runs(remote)]
    needed = {o["xxh"].split(":")[1] for e in entries for o in e["outs"]}
    present = {o.parent.name + o.name for o in _objects(remote)}
    assert needed <= present  # no entry names a missing object
    gone = p.mlbuild("gc", "--remote", "--keep", "1")
    assert gone.code == 0, gone.err
    assert "removed" in gone.out


def test_verify_reports_entries_naming_a_missing_object(
    workspace: Workspace, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    p = workspace(PIPELINE + f"remote: file://{remote}\n")
    p.build("--push")
    raw = p.path("data/raw.txt").read_bytes()
    [obj] = [o for o in _objects(remote) if o.read_bytes() == raw]
    obj.unlink()
    run = p.mlbuild("cache", "verify", f"--remote={remote}")
    assert run.code == 6
    digest = "xxh3-128:" + obj.parent.name + obj.name
    assert sum(f"names {digest}, which is not there" in line for line in run.out.splitlines()) == 2
    assert "0 corrupt, 2 missing" in run.out
    fixed = p.mlbuild("cache", "verify", "--remote", "--repair")
    assert fixed.code == 0, fixed.err
    assert len(_runs(remote)) == 0  # both entries named it (model:m's tree holds a copy)
    assert p.mlbuild("cache", "verify", "--remote").code == 0


def test_a_corrupt_local_object_is_never_restored(workspace: Workspace) -> None:
    p = workspace(PIPELINE)
    p.build()
    raw = p.path("data/raw.txt").read_bytes()
    cache = p.root / ".mlbuild/cache"
    [obj] = [o for o in _objects(cache) if o.read_bytes() == raw]
    obj.chmod(0o644)
    obj.write_bytes(b"9\n" * 1000)
    p.path("data/raw.txt").unlink()
    run = p.mlbuild("--json")
    assert run.code == 0, run.err
    assert run.ran == ["data:raw"]  # the restore refused the object; the target ran
    assert "is corrupt" in run.out  # a warning event
    assert p.path("data/raw.txt").read_bytes() == raw
    # The bad object was dropped and the run stored a good one: the cache heals.
    assert p.mlbuild("cache", "verify").code == 0
    p.path("data/raw.txt").unlink()
    assert p.build().restored == ["data:raw"]
