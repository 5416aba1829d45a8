"""`mlbuild clean`: removes the declared outs the cache can restore, keeps (and names) the
others unless --force, never anything a target does not declare; a plain build then
restores what it removed without running anything."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from mlbuild import Workspace as Api
from tests.conftest import Project

Workspace = Callable[..., Project]

# `default:` names only b: clean without TARGETS still cleans every target (as make clean).
PIPELINE = """
version: 1
default: [b]
targets:
  a:
    cmd: >-
      mkdir -p ${outs[1]} && cp ${deps[0]} ${outs[0]} && echo 1 > ${outs[1]}/x.txt
      && mkdir -p ${outs[1]}/sub && echo 2 > ${outs[1]}/sub/y.txt
    deps: [src.txt]
    outs: [out/a.txt, out/tree]
  b:
    cmd: cat ${deps[0]} > ${outs[0]}
    deps: [a]
    outs: [out/b.txt]
  n:
    cmd: echo n > ${outs[0]}
    outs: [out/n.txt]
  m:
    cmd: echo m > ${outs[0]}
    outs: [out/m.txt]
"""
UNDECLARED = ["src.txt", "out/notes.txt", "out/tree.bak"]


def _built(workspace: Workspace) -> Project:
    p = workspace(PIPELINE, {"src.txt": "source\n", "out/notes.txt": "mine\n"})
    p.write("out/tree.bak", "mine too\n")
    assert p.mlbuild("--json", "--no-cache", "n").code == 0  # never in the cache
    p.build("b", "m")  # and a: `default:` is only b
    p.write("out/m.txt", "edited by hand\n")  # not the bytes its build recorded
    return p


def test_clean_removes_cached_outs_keeps_the_rest_and_a_build_restores_them(
    workspace: Workspace,
) -> None:
    p = _built(workspace)
    cached = ["out/a.txt", "out/tree", "out/b.txt"]

    dry = p.mlbuild("clean", "--dry-run")
    assert dry.code == 0, dry.err
    assert dry.out.splitlines() == [
        "would remove  out/a.txt",
        "would remove  out/tree",
        "would remove  out/b.txt",
        "kept          out/m.txt  (modified since m was built)",
        "kept          out/n.txt  (the build of n is not in the cache)",
        "would remove 3 outs of 2 targets; kept 2 outs the cache cannot restore "
        "(--force removes them too)",
    ]
    assert all(p.path(rel).exists() for rel in cached)  # a dry run removes nothing

    run = p.mlbuild("clean", "--json")
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert report["dry_run"] is False
    assert [(o["target"], o["path"]) for o in report["removed"]] == [
        ("a", "out/a.txt"),
        ("a", "out/tree"),
        ("b", "out/b.txt"),
    ]
    assert [(o["path"], o["reason"]) for o in report["kept"]] == [
        ("out/m.txt", "modified"),
        ("out/n.txt", "not-cached"),
    ]
    assert not any(p.path(rel).exists() for rel in cached)  # the directory as a whole
    assert p.read("out/m.txt") == "edited by hand\n" and p.read("out/n.txt") == "n\n"
    assert all(p.path(rel).exists() for rel in UNDECLARED)  # nothing it does not declare
    assert p.path(".mlbuild/cache/objects").is_dir()

    status = json.loads(p.mlbuild("status", "--json", "a", "b").out)
    assert {t["target"]: t["status"] for t in status["targets"]} == {
        "a": "restorable",
        "b": "restorable",
    }
    rebuilt = p.build("b", "m")
    assert rebuilt.ran == [] and rebuilt.restored == ["a", "b", "m"]
    assert p.read("out/tree/sub/y.txt") == "2\n" and p.read("out/b.txt") == "source\n"


def test_clean_force_removes_an_uncached_out_and_an_unknown_target_is_an_error(
    workspace: Workspace,
) -> None:
    p = _built(workspace)
    forced = p.mlbuild("clean", "--force", "n")
    assert forced.code == 0, forced.err
    assert forced.out.splitlines() == [
        "removed  out/n.txt  (forced: the build of n is not in the cache)",
        "removed 1 out of 1 target",
    ]
    assert not p.path("out/n.txt").exists() and p.path("out/a.txt").exists()

    again = p.mlbuild("clean", "n")
    assert again.out == "nothing to clean: none of the declared outs of those targets exists\n"

    unknown = p.mlbuild("clean", "--dry-run", "bb")
    assert unknown.code == 4
    assert "no target matches 'bb' (did you mean 'b'?)" in unknown.err
    assert p.path("out/b.txt").exists()


def test_clean_never_removes_an_out_whose_directory_now_leads_outside(
    workspace: Workspace, tmp_path: Path
) -> None:
    """The load refuses such an out; this is the race after the load (the Python API)."""
    p = workspace(PIPELINE, {"src.txt": "source\n"})
    p.build("a")
    api = Api(p.root)
    assert api.pipeline.targets["a"].outs == ("out/a.txt", "out/tree")  # loaded now
    elsewhere = tmp_path / "elsewhere"
    os.rename(p.path("out"), elsewhere)
    os.symlink(elsewhere, p.path("out"))

    report = api.clean(["a"], force=True)
    assert [(o.path, o.removed, o.why and o.why.value) for o in report.outs] == [
        ("out/a.txt", False, "outside"),
        ("out/tree", False, "outside"),
    ]
    assert (elsewhere / "a.txt").exists() and (elsewhere / "tree" / "x.txt").exists()
