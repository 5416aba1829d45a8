"""`temp: true` (Snakemake's temp()): a target's outs are removed once every dependent in
the build succeeded, if the cache holds them; `status` calls it "temp (in cache)", not
stale; a dependent that must run gets them back from the cache, the temp target not rerun;
a failed dependent, or outs the cache lacks (--no-cache), keep them."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import Project

Workspace = Callable[..., Project]

# c fails while fail.txt says so; n is a temp target no other target reads.
PIPELINE = """
version: 1
targets:
  a:
    cmd: mkdir -p out/tree && cp ${deps[0]} ${outs[0]} && echo t > out/tree/t.txt
    deps: [src.txt]
    outs: [out/a.txt, out/tree]
    temp: true
  b:
    cmd: cat out/a.txt out/tree/t.txt other.txt > ${outs[0]}
    deps: [a, other.txt]
    outs: [out/b.txt]
  c:
    cmd: test "$(cat ${deps[1]})" = ok && cp ${deps[0]} ${outs[0]}
    deps: [out/x.txt, fail.txt]
    outs: [out/c.txt]
  x:
    cmd: echo x > ${outs[0]}
    outs: [out/x.txt]
    temp: true
"""
FILES = {"src.txt": "source\n", "other.txt": "one\n", "fail.txt": "ok\n"}


def _status(p: Project) -> dict[str, str]:
    run = p.mlbuild("status", "--json")
    return {t["target"]: t["status"] for t in json.loads(run.out)["targets"]}


def test_temp_outs_are_removed_and_restored_for_a_stale_dependent(workspace: Workspace) -> None:
    p = workspace(PIPELINE, FILES)
    p.build("b")
    assert not p.path("out/a.txt").exists() and not p.path("out/tree").exists()
    assert p.read("out/b.txt") == "source\nt\none\n"

    status = p.mlbuild("status", "b")
    assert status.code == 0, status.err
    assert status.out.splitlines() == ["a  temp (in cache)", "b  fresh"]
    assert p.mlbuild("-q", "b").code == 0  # gone on purpose: nothing to do
    assert p.build("b").ran == []

    p.write("other.txt", "two\n")  # b is stale: it needs a's outs back, a is not rerun
    run = p.build("b")
    assert run.ran == ["b"] and run.restored == []
    assert p.read("out/b.txt") == "source\nt\ntwo\n"
    assert not p.path("out/a.txt").exists()  # removed again once b succeeded


def test_a_failed_dependent_or_an_uncached_out_keeps_temp_outs(workspace: Workspace) -> None:
    p = workspace(PIPELINE, {**FILES, "fail.txt": "no\n"})
    failed = p.mlbuild("--json", "c")  # x ran (cached), c failed: x's out stays for a rerun
    assert failed.code == 1 and failed.ran == ["x"]
    assert p.read("out/x.txt") == "x\n"
    p.write("fail.txt", "ok\n")
    p.replace("mlbuild.yaml", "echo x", "echo y")  # new bytes, built without the cache
    assert p.build("--no-cache", "c").ran == ["c", "x"]
    assert p.read("out/x.txt") == "y\n"  # not in the cache: never removed
    assert _status(p) == {"a": "never-built", "b": "never-built", "c": "fresh", "x": "fresh"}


def test_metrics_of_a_temp_target_whose_outs_went_to_the_cache_are_current(
    workspace: Workspace,
) -> None:
    p = workspace(
        "targets:\n"
        "  m:\n"
        "    cmd: python m.py ${outs[0]}\n"
        "    metrics: [m.json]\n"
        "    temp: true\n"
        "  use:\n"
        "    cmd: cat ${deps[0]} > ${outs[0]}\n"
        "    deps: [m]\n"
        "    outs: [use.txt]\n",
        {"m.py": "import sys\nopen(sys.argv[1], 'w').write('{\"acc\": 0.9}')\n"},
    )
    p.build("use")
    assert not p.path("m.json").exists()  # back in the cache
    run = p.mlbuild("metrics", "show", "--json")
    assert run.code == 0, run.err
    doc = json.loads(run.out)
    assert doc["metrics"]["m"]["acc"] == 0.9 and doc["stale"] == []
