"""A mistyped subcommand or key names the word meant, also when two letters are swapped."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Project

Workspace = Callable[..., Project]


def test_a_swapped_subcommand_suggests_it_and_a_target_named_close_to_one_still_builds(
    workspace: Workspace,
) -> None:
    p = workspace("targets:\n  graphs:\n    cmd: echo g > ${outs[0]}\n    outs: [g.txt]\n")
    run = p.mlbuild("stauts")
    assert run.code == 2
    assert "Error: No such command 'stauts': did you mean `mlbuild status`?\n" in run.err
    assert run.err.count("did you mean") == 1
    # `graphs` is one letter from `graph`, but it is a target: it is built, as always.
    assert p.build("graphs").ran == ["graphs"]


def test_a_transposed_key_suggests_the_key_not_a_lookalike(workspace: Workspace) -> None:
    p = workspace("targets:\n  a:\n    cmd: echo\n    dpes: [x]\n")
    run = p.mlbuild("validate")
    assert run.code == 2
    assert run.err == (
        "mlbuild: error: mlbuild.yaml:4:5: unknown key 'dpes' in target 'a' "
        "(did you mean 'deps'?)\n"
    )
