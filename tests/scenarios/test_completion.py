"""Shell completion: `mlbuild completion bash|zsh|fish` prints click's script, and TAB then
completes subcommands, options and the workspace's concrete target names (the first word
too, since `mlbuild TARGET` is a build), from the workspace -C / -f name on the line.

Completion is driven as the scripts drive it: ``_MLBUILD_COMPLETE=<shell>_complete`` with
COMP_WORDS / COMP_CWORD (click's protocol). For bash the words are split at ``:`` as bash's
COMP_WORDBREAKS splits them (``model:p`` arrives as ``model`` ``:`` ``p``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Project

CONFIG = """\
version: 1
params: params.yaml
targets:
  data:raw:
    desc: the raw
      data
    cmd: echo raw > ${outs[0]}
    outs: [raw.txt]
  model:{algo}:
    matrix: {algo: "${params.algos}"}
    cmd: echo ${algo} > ${outs[0]}
    deps: [data:raw]
    outs: ["m/${algo}.txt"]
  model:prod:
    cmd: echo prod > ${outs[0]}
    deps: [model:forest]
    outs: [prod.txt]
"""
PARAMS = "algos: [forest, logreg]\n"
NAMES = ["data:raw", "model:forest", "model:logreg", "model:prod"]


def _bash(p: Project, line: str) -> list[str]:
    """What bash's COMPREPLY would get for ``line`` (the cursor at its end)."""
    words = re.findall(r"[^\s:]+|:+", line)  # bash splits at blanks and at ':'
    cword = len(words) if line.endswith(" ") else len(words) - 1
    env = {"_MLBUILD_COMPLETE": "bash_complete", "COMP_WORDS": " ".join(words)}
    run = p.mlbuild(env={**env, "COMP_CWORD": str(cword)})
    assert (run.code, run.err) == (0, ""), run.err
    values = [item.split(",", 1) for item in run.out.splitlines() if item]
    assert all(kind == "plain" for kind, _ in values), run.out
    return [value for _, value in values]


@pytest.fixture
def ws(workspace: Callable[..., Project]) -> Project:
    p = workspace(CONFIG, {"params.yaml": PARAMS})
    p.write("sub/mlbuild.yaml", "version: 1\ntargets:\n  sub:only: {cmd: 'true'}\n")
    p.write("other.yaml", "version: 1\ntargets:\n  shard:a: {cmd: 'true'}\n")
    return p


def test_tab_completes_subcommands_options_and_concrete_target_names_in_bash(
    ws: Project,
) -> None:
    first = _bash(ws, "mlbuild ")
    assert {"build", "status", "completion", "metrics"} <= set(first)
    assert first[-len(NAMES) :] == NAMES  # a first word may be a target: after the commands
    assert _bash(ws, "mlbuild m") == ["manifest", "metrics", *NAMES[1:]]
    # bash replaces only what follows the last ':', so that part is what comes back
    assert _bash(ws, "mlbuild model:") == ["forest", "logreg", "prod"]
    assert _bash(ws, "mlbuild build model:l") == ["logreg"]
    # every TARGETS argument; names already on the line are not offered again
    assert _bash(ws, "mlbuild status data:raw model:prod ") == ["model:forest", "model:logreg"]
    assert _bash(ws, "mlbuild history d") == ["data:raw"]
    assert _bash(ws, "mlbuild metrics diff -t model:f") == ["forest"]
    # `mlbuild TARGET ...` is a build: its options complete
    assert _bash(ws, "mlbuild model:prod --pu") == ["--pull", "--push"]
    # the workspace -C / -f name, not the one of the current directory
    assert _bash(ws, "mlbuild -C sub status ") == ["sub:only"]
    assert _bash(ws, "mlbuild -f other.yaml sh") == ["show", "shard:a"]


def test_zsh_and_fish_get_the_names_with_their_desc(ws: Project) -> None:
    env = {"_MLBUILD_COMPLETE": "zsh_complete", "COMP_WORDS": "mlbuild show da"}
    zsh = ws.mlbuild(env={**env, "COMP_CWORD": "2"})
    assert (zsh.code, zsh.out) == (0, "plain\ndata\\:raw\nthe raw data\n"), zsh.err
    env = {"_MLBUILD_COMPLETE": "fish_complete", "COMP_WORDS": "mlbuild card model:p"}
    fish = ws.mlbuild(env={**env, "COMP_CWORD": "model:p"})
    assert (fish.code, fish.out) == (0, "plain,model:prod\ttarget\n"), fish.err


@pytest.mark.parametrize(
    "config",
    ["targets:\n  a: [\n", "version: 1\ntargets: [a, b]\n", "version: 1\nparams: nope.yaml\n"],
    ids=["bad-yaml", "targets-not-a-mapping", "missing-params-file"],
)
def test_a_broken_config_completes_no_target_and_prints_nothing_else(
    workspace: Callable[..., Project], config: str
) -> None:
    p = workspace(config)
    assert _bash(p, "mlbuild status ") == []
    assert "status" in _bash(p, "mlbuild ")


def test_completion_prints_clicks_script_for_each_shell(ws: Project) -> None:
    zsh = ws.mlbuild("completion", "zsh")
    assert zsh.code == 0, zsh.err
    assert zsh.out.startswith("#compdef mlbuild\n")
    assert "_MLBUILD_COMPLETE=zsh_complete mlbuild" in zsh.out
    fish = ws.mlbuild("completion", "fish")
    assert "complete --no-files --command mlbuild" in fish.out
    bad = ws.mlbuild("completion", "tcsh")
    assert bad.code == 2 and "'tcsh' is not one of 'bash', 'zsh', 'fish'" in bad.err


@pytest.mark.skipif(
    shutil.which("bash") is None or not (Path(sys.executable).parent / "mlbuild").exists(),
    reason="needs bash and the mlbuild console script next to this Python",
)
def test_the_printed_bash_script_completes_a_target_name_in_real_bash(ws: Project) -> None:
    script = ws.mlbuild("completion", "bash")
    assert script.code == 0, script.err
    assert "complete -o nosort -F _mlbuild_completion mlbuild" in script.out
    # bash splits `mlbuild model:p` into these words; the script calls `mlbuild` on PATH
    drive = 'COMP_WORDS=(mlbuild model : p); COMP_CWORD=3; _mlbuild_completion mlbuild\n'
    drive += 'printf "%s\\n" "${COMPREPLY[@]}"\n'
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script.out + drive],
        cwd=ws.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "prod\n", "")
