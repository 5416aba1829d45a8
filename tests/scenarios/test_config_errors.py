"""A wrong mlbuild.yaml is reported before anything runs: file:line:col, exit 2."""

from __future__ import annotations

import os
from collections.abc import Callable

from tests.conftest import Project

Workspace = Callable[..., Project]


def test_typo_in_key_reports_line_and_suggestion(workspace: Workspace) -> None:
    p = workspace(
        "version: 1\ntargets:\n  data:raw:\n    cmd: echo hi > ${outs[0]}\n    outz: [a.txt]\n"
    )
    run = p.mlbuild()
    assert run.code == 2
    assert "mlbuild.yaml:5:5: unknown key 'outz'" in run.err
    assert "did you mean 'outs'?" in run.err
    assert "Traceback" not in run.err


def test_cycle_names_every_target_on_it(workspace: Workspace) -> None:
    p = workspace(
        "targets:\n"
        "  a:\n    cmd: 'true'\n    deps: [c]\n"
        "  b:\n    cmd: 'true'\n    deps: [a]\n"
        "  c:\n    cmd: 'true'\n    deps: [b]\n"
        "  d:\n    cmd: 'true'\n"
    )
    run = p.mlbuild("validate")
    assert run.code == 2
    assert "dependency cycle: a -> c -> b -> a" in run.err


def test_unknown_target_on_command_line_exits_4_with_suggestion(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    run = p.mlbuild("model:lrr")
    assert run.code == 4
    assert "no target matches 'model:lrr'" in run.err
    assert "did you mean 'model:lr'?" in run.err


def test_unknown_dep_target_is_found_before_anything_runs(workspace: Workspace) -> None:
    p = workspace(
        "targets:\n  a:x:\n    cmd: touch ran.txt\n  b:y:\n    cmd: 'true'\n    deps: [a:z]\n"
    )
    run = p.mlbuild("a:x")
    assert run.code == 2
    assert "mlbuild.yaml:6:12: unknown target 'a:z' in deps of 'b:y'" in run.err
    assert not p.path("ran.txt").exists()


def test_duplicate_yaml_key_is_an_error(workspace: Workspace) -> None:
    p = workspace("targets:\n  a:\n    cmd: 'true'\n  a:\n    cmd: 'false'\n")
    run = p.mlbuild("validate")
    assert run.code == 2
    assert "mlbuild.yaml:4:3: duplicate key 'a' (first defined at line 2)" in run.err


def test_undefined_param_reference(workspace: Workspace) -> None:
    p = workspace("params: {train: {lr: 1}}\ntargets:\n  m:\n    cmd: echo ${params.train.rl}\n")
    run = p.mlbuild("validate")
    assert run.code == 2
    assert "mlbuild.yaml:4:10: undefined param ${params.train.rl}" in run.err
    assert "did you mean 'train.lr'?" in run.err


def test_outs_escaping_the_workspace_are_refused(workspace: Workspace, tmp_path: object) -> None:
    for out, message in (
        ("../escape.txt", "outside the workspace (..)"),
        ("/tmp/escape.txt", "outside the workspace (absolute path)"),
        ("link/escape.txt", "outside the workspace (through a symlink)"),
    ):
        p = workspace(
            f"targets:\n  t:\n    cmd: echo x > {out}\n    outs: ['{out}']\n",
            dest=f"ws{abs(hash(out))}",
        )
        os.symlink("/tmp", p.path("link"))
        run = p.mlbuild()
        assert run.code == 2, run.err
        assert message in run.err
        assert "mlbuild.yaml:4:" in run.err


def test_out_symlinked_out_of_the_workspace_after_load_is_refused_at_write_time(
    workspace: Workspace, tmp_path: object
) -> None:
    p = workspace("targets:\n  t:\n    cmd: echo x > out/f.txt\n    outs: [out/f.txt]\n")
    outside = p.root.parent / "outside"
    outside.mkdir()
    # The command itself replaces its out dir by a symlink leading out of the workspace.
    p.replace(
        "mlbuild.yaml",
        "cmd: echo x > out/f.txt",
        f"cmd: rm -r out; ln -s {outside} out; echo x > out/f.txt",
    )
    run = p.mlbuild()
    assert run.code == 1
    assert "leads outside the workspace" in run.err
    assert not p.path("mlbuild.lock").exists()


def test_overlapping_outs_are_refused(workspace: Workspace) -> None:
    p = workspace(
        "targets:\n"
        "  a:\n    cmd: mkdir -p d\n    outs: [d]\n"
        "  b:\n    cmd: touch d/x\n    outs: [d/x]\n"
    )
    run = p.mlbuild("validate")
    assert run.code == 2
    assert "out 'd/x' of 'b' lies inside out 'd' of 'a'" in run.err


def test_validate_and_schema(project: Callable[[str], Project]) -> None:
    p = project("basic")
    ok = p.mlbuild("validate")
    assert ok.code == 0 and "ok (4 targets)" in ok.out
    schema = p.mlbuild("schema")
    assert schema.code == 0
    import json

    doc = json.loads(schema.out)
    assert doc["required"] == ["targets"]
    assert "outs" in doc["$defs"]["target"]["properties"]


def test_hostile_param_values_are_shell_quoted(workspace: Workspace) -> None:
    hostile = "x; touch pwned; echo $(touch pwned2) `touch pwned3` 'q' \"dq\""
    p = workspace(
        "params: params.yaml\n"
        "targets:\n  t:\n    cmd: echo ${params.v} > ${outs[0]}\n    outs: [out.txt]\n",
        {"params.yaml": "v: " + repr(hostile).replace("'", "'") + "\n"},
    )
    import yaml

    p.write("params.yaml", yaml.safe_dump({"v": hostile}))
    run = p.mlbuild()
    assert run.code == 0, run.err
    assert p.read("out.txt") == hostile + "\n"
    assert not any(p.path(n).exists() for n in ("pwned", "pwned2", "pwned3"))


def test_matrix_variable_used_but_not_defined_names_the_target_and_its_variables(
    workspace: Workspace,
) -> None:
    p = workspace(
        "targets:\n"
        "  model:{algo}:\n"
        "    matrix: {algo: [a, b]}\n"
        "    cmd: train --algo ${algo} --depth ${depth} > ${outs[0]}\n"
        "    outs: ['m/${algo}.txt']\n"
    )
    run = p.mlbuild("validate")
    assert run.code == 2
    assert (
        "mlbuild.yaml:4:10: undefined matrix variable ${depth} in target 'model:a' "
        "(its matrix variables: algo)"
    ) in run.err
    assert "add depth to matrix:, or use params.depth / vars.depth" in run.err
    assert not p.path("m").exists()


def test_an_empty_matrix_axis_is_an_error(workspace: Workspace) -> None:
    p = workspace("targets:\n  model:{algo}:\n    matrix: {algo: []}\n    cmd: 'true'\n")
    run = p.mlbuild("validate")
    assert run.code == 2
    assert "mlbuild.yaml:3:20: matrix.algo is empty" in run.err
