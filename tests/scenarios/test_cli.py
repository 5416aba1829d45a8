"""The rest of the command line: queries, output formats, env, retries, always, the demo."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Project

Workspace = Callable[..., Project]
REPO = Path(__file__).parent.parent.parent


def test_list_show_and_graph_formats(project: Callable[[str], Project]) -> None:
    p = project("basic")
    listed = json.loads(p.mlbuild("list", "--json").out)
    assert [t["name"] for t in listed["targets"]] == [
        "data:raw",
        "features:even",
        "model:depth",
        "model:lr",
    ]
    shown = json.loads(p.mlbuild("show", "model:lr", "--json").out)
    assert shown["cmd"] == ["(cat data/even.txt; echo lr=0.1) > models/lr.txt"]
    assert shown["params"] == {"train.lr": 0.1}
    dot = p.mlbuild("graph", "--format", "dot").out
    assert '"features:even" -> "model:lr";' in dot
    mermaid = p.mlbuild("graph", "--format", "mermaid", "model:lr").out
    assert mermaid.startswith("graph LR")
    assert "model:depth" not in mermaid
    tree = p.mlbuild("graph").out
    assert tree.splitlines()[0] == "model:depth"
    assert "└── features:even" in tree


def test_status_json_is_one_document(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build("data:raw")
    doc = json.loads(p.mlbuild("status", "--json").out)
    by_name = {t["target"]: t for t in doc["targets"]}
    assert by_name["data:raw"]["status"] == "fresh"
    assert by_name["features:even"]["status"] == "never-built"
    assert by_name["model:lr"]["status"] == "never-built"
    assert [r["kind"] for r in by_name["model:lr"]["reasons"]] == ["never-built", "upstream"]


def test_declared_env_joins_the_key_and_caller_env_is_inherited(workspace: Workspace) -> None:
    p = workspace(
        "env: {MODE: fast}\n"
        "targets:\n"
        "  t:\n"
        "    cmd: echo $MODE $MLBUILD_TARGET $MLBUILD_OUTS $CALLER > ${outs[0]}\n"
        "    outs: [out.txt]\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "mlbuild", "--json"],
        cwd=p.root,
        capture_output=True,
        text=True,
        env={**_env(), "CALLER": "me"},
    )
    assert proc.returncode == 0, proc.stderr
    assert p.read("out.txt") == "fast t out.txt me\n"
    # The caller's environment is not part of the key (as in make): no rebuild.
    assert p.build().ran == []
    p.replace("mlbuild.yaml", "MODE: fast", "MODE: slow")
    run = p.build()
    assert run.ran == ["t"]
    started = [e for e in run.events if e["event"] == "target_started"][0]
    assert started["reasons"][0]["text"] == "env MODE: fast → slow"


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_retries_and_always(workspace: Workspace) -> None:
    p = workspace(
        "targets:\n"
        "  flaky:\n"
        "    cmd: n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; [ $n -ge 2 ]"
        " && echo ok > ${outs[0]}\n"
        "    retries: 2\n"
        "    outs: [out.txt]\n"
        "  clock:\n"
        "    cmd: date +%s%N > ${outs[0]}\n"
        "    always: true\n"
        "    outs: [clock.txt]\n"
    )
    assert p.build("flaky").ran == ["flaky"]
    assert p.read("count") == "3\n"
    assert p.build("clock").ran == ["clock"]
    assert p.build("clock").ran == ["clock"]


def test_input_changed_during_the_run_is_not_recorded(workspace: Workspace) -> None:
    p = workspace(
        "targets:\n"
        "  t:\n"
        "    cmd: cat src.txt > ${outs[0]}; echo changed >> src.txt\n"
        "    deps: [src.txt]\n"
        "    outs: [out.txt]\n",
        {"src.txt": "one\n"},
    )
    run = p.mlbuild("--json")
    assert run.code == 0
    warnings = [e["message"] for e in run.events if e["event"] == "warning"]
    assert any("src.txt" in w and "changed while it ran" in w for w in warnings)
    assert p.mlbuild("-q").code == 1  # not recorded: the next build runs it again


def test_init_writes_a_pipeline_that_builds(tmp_path: Path) -> None:
    ws = tmp_path / "new"
    ws.mkdir()
    p = Project(ws)
    assert p.mlbuild("init").code == 0
    assert p.mlbuild("init").code == 2  # never overwrites silently
    assert p.build().ran == ["data:raw", "model:train"]
    assert p.read("models/model.txt") == "100\n99\n98\n"


def test_directory_option_and_missing_workspace(
    project: Callable[[str], Project], tmp_path: Path
) -> None:
    p = project("basic")
    outside = Project(tmp_path)
    run = outside.mlbuild("-C", str(p.root), "status")
    assert run.code == 0 and "never-built" in run.out
    lost = tmp_path / "empty"
    lost.mkdir()
    run = Project(lost).mlbuild("status")
    assert run.code == 2
    assert "no mlbuild.yaml" in run.err


def test_verbose_streams_command_output(project: Callable[[str], Project]) -> None:
    p = project("faults")
    run = p.mlbuild("-v", "bad:exit")
    assert "[bad:exit] line 1 of the failing command" in run.out


@pytest.mark.demo
def test_demo_pipeline_builds_then_noop(tmp_path: Path) -> None:
    """The README's first command: the demo builds model:prod, and a rerun runs nothing."""
    root = tmp_path / "demo"
    root.mkdir()
    shutil.copy(REPO / "mlbuild.yaml", root)
    shutil.copy(REPO / "params.yaml", root)
    shutil.copytree(REPO / "examples", root / "examples")
    p = Project(root)
    first = p.build("model:prod")
    assert first.ran == [
        "data:raw",
        "features:test",
        "features:train",
        "model:forest",
        "model:logreg",
        "model:prod",
    ]
    _, prod = p.manifest("model:prod")
    promotion = prod["promotion"]
    assert promotion["scores"][promotion["winner"]] == max(promotion["scores"].values())
    assert prod["metrics"]["accuracy"] >= 0.9
    assert all(g["passed"] for g in prod["gates"])
    assert p.build("model:prod").ran == []
    shown = json.loads(p.mlbuild("metrics", "show", "--json").out)["metrics"]
    assert set(shown) == {"model:logreg", "model:forest", "model:prod"}
    assert shown["model:prod"] == shown[promotion["winner"]]
    p.replace("params.yaml", "max_depth: 6", "max_depth: 4")
    assert p.build("model:prod").ran[:1] == ["model:forest"]
    diff = json.loads(p.mlbuild("metrics", "diff", "--json").out)["changes"]
    assert {c["target"] for c in diff} <= {"model:forest", "model:prod"}
    # The demo's drift check stops a recalibrated data set before anything is trained.
    p.replace("params.yaml", "scale: 1.0", "scale: 1.5")
    run = p.mlbuild("model:prod")
    assert run.code == 3, run.err
    assert "column 'mean_radius': PSI" in run.out + run.err


def test_glob_dep_tracks_the_matched_set_and_no_out_target_runs_on_change(
    workspace: Workspace,
) -> None:
    p = workspace(
        "targets:\n  check:all:\n    cmd: cat ${deps} >> log.txt\n    deps: ['src/*.txt']\n",
        {"src/a.txt": "a\n", "src/b.txt": "b\n"},
    )
    assert p.build().ran == ["check:all"]
    assert p.build().ran == []
    p.write("src/c.txt", "c\n")
    assert p.build().ran == ["check:all"]
    p.path("src/a.txt").unlink()
    assert p.build().ran == ["check:all"]
    assert p.read("log.txt") == "a\nb\na\nb\nc\nb\nc\n"


def test_empty_directory_out_is_valid_and_restored(workspace: Workspace) -> None:
    p = workspace("targets:\n  d:\n    cmd: mkdir -p ${outs[0]}\n    outs: [out/empty]\n")
    assert p.build().ran == ["d"]
    p.path("out/empty").rmdir()
    run = p.build()
    assert run.restored == ["d"]
    assert p.path("out/empty").is_dir()


def test_glob_over_other_targets_outs_depends_on_them(workspace: Workspace) -> None:
    p = workspace(
        "targets:\n"
        "  part:{i}:\n"
        "    matrix: {i: [1, 2]}\n"
        "    cmd: echo ${i} > ${outs[0]}\n"
        "    outs: ['parts/${i}.txt']\n"
        "  all:\n"
        "    cmd: cat ${deps} > ${outs[0]}\n"
        "    deps: ['parts/*.txt', 'extra/*.txt']\n"
        "    outs: [all.txt]\n",
        {"extra/e.txt": "e\n"},
    )
    listed = p.mlbuild("show", "all", "--json")
    deps = json.loads(listed.out)["deps"]
    assert {"kind": "target", "value": "part:1"} in deps
    assert p.build("all").ran == ["all", "part:1", "part:2"]
    assert p.read("all.txt") == "1\n2\ne\n"  # declared order, each glob sorted
    assert p.build("all").ran == []


def test_callable_gets_the_same_deps_as_the_command_line(workspace: Workspace) -> None:
    p = workspace(
        "targets:\n"
        "  shards:\n"
        "    cmd: mkdir -p data/shards/sub && echo b > data/shards/sub/b.csv\n"
        "    outs: [data/shards]\n"
        "  use:\n"
        "    python: steps:use\n"
        "    deps: [data/shards/sub/b.csv]\n"
        "    outs: [got.txt]\n",
        {"steps.py": "def use(deps, outs, params):\n    open(outs[0], 'w').write(repr(deps))\n"},
    )
    p.build()
    assert p.read("got.txt") == "['data/shards/sub/b.csv']"


def test_file_option_is_relative_to_directory_and_has_its_own_lock(
    project: Callable[[str], Project], tmp_path: Path
) -> None:
    p = project("basic")
    p.write("alt.yaml", "targets:\n  alt:\n    cmd: echo alt > ${outs[0]}\n    outs: [alt.txt]\n")
    p.build()
    outside = Project(tmp_path)
    run = outside.mlbuild("-C", str(p.root), "-f", "alt.yaml", "--json")
    assert run.code == 0, run.err
    assert run.ran == ["alt"]
    assert "alt" in p.read("alt.lock")
    # The main pipeline's lock is untouched: nothing of it is stale afterwards.
    assert p.mlbuild("-q").code == 0
    missing = outside.mlbuild("-C", str(tmp_path / "nope"), "status")
    assert missing.code == 2
    assert "no such directory" in missing.err
    init = outside.mlbuild("-C", str(tmp_path / "nope"), "init")
    assert init.code == 2 and "Traceback" not in init.err


def test_a_target_named_like_a_command_is_built_with_the_build_word(
    workspace: Workspace,
) -> None:
    p = workspace("targets:\n  gc:\n    cmd: echo built > ${outs[0]}\n    outs: [gc.txt]\n")
    run = p.mlbuild("gc", "--dry-run")  # the command: collects nothing, builds nothing
    assert run.code == 0, run.err
    assert run.out.startswith("would remove 0 objects")
    assert not p.path("gc.txt").exists()
    assert p.mlbuild("build", "gc").code == 0
    assert p.read("gc.txt") == "built\n"


def test_show_takes_one_target(project: Callable[[str], Project]) -> None:
    p = project("basic")
    run = p.mlbuild("show", "model:*")
    assert run.code == 2
    assert "matches 2 targets; show takes one" in run.err


def test_python_in_commands_is_mlbuilds_interpreter(workspace: Workspace, tmp_path: Path) -> None:
    impostor = tmp_path / "bin"
    impostor.mkdir()
    (impostor / "python").write_text("#!/bin/sh\necho impostor\n")
    (impostor / "python").chmod(0o755)
    p = workspace(
        "targets:\n  t:\n    cmd: python -c 'import sys; print(sys.prefix)' > ${outs[0]}\n"
        "    outs: [which.txt]\n"
    )
    env = {**_env(), "PATH": f"{impostor}:{_env()['PATH']}"}
    proc = subprocess.run(
        [sys.executable, "-m", "mlbuild"], cwd=p.root, capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert p.read("which.txt").strip() == sys.prefix


def test_python_api_dry_run_changes_nothing(project: Callable[[str], Project]) -> None:
    from mlbuild import BuildOptions, Outcome
    from mlbuild import Workspace as Ws

    p = project("basic")
    result = Ws(p.root).build(options=BuildOptions(dry_run=True))
    assert {t.outcome for t in result.targets} == {Outcome.WOULD_RUN}
    assert not p.path("data").exists()


def test_long_command_change_shows_the_difference(workspace: Workspace) -> None:
    prefix = "echo " + "x" * 120
    p = workspace(f"targets:\n  t:\n    cmd: {prefix} --lr 1 > ${{outs[0]}}\n    outs: [o]\n")
    p.build()
    p.replace("mlbuild.yaml", "--lr 1", "--lr 2")
    out = p.mlbuild("explain", "t").out
    assert "--lr 1" in out and "--lr 2" in out


def test_glob_into_another_targets_directory_out_depends_on_it(workspace: Workspace) -> None:
    p = workspace(
        "targets:\n"
        "  shards:\n"
        "    cmd: mkdir -p shards && echo 1 > shards/a.csv && echo 2 > shards/b.csv\n"
        "    outs: [shards]\n"
        "  merge:\n"
        "    cmd: find ${deps} -name '*.csv' | sort | xargs cat > ${outs[0]}\n"
        "    deps: ['shards/*.csv']\n"
        "    outs: [merged.csv]\n"
    )
    first = p.build("merge")
    assert first.ran == ["merge", "shards"]
    assert [e["target"] for e in first.events if e["event"] == "target_started"] == [
        "shards",
        "merge",
    ]
    assert p.read("merged.csv") == "1\n2\n"
    # Before shards/ existed, ${deps} held the directory; now it holds the files, so the
    # command text changed once (documented in docs/mlbuild-yaml.md). Then it is stable.
    assert p.build("merge").ran == ["merge"]
    assert p.build("merge").ran == []
