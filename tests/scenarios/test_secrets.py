"""Secret env values reach the command and nothing else: not the lock file, manifests,
logs, --json output or error messages. Checked with a canary searched in every file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import Project

Workspace = Callable[..., Project]
CANARY = "canary-7f3a9c1e-do-not-leak"

CONFIG = """\
env:
  TOKEN: {from: MY_TOKEN, secret: true}
  MODE: plain
targets:
  use:shell:
    cmd: echo "using $TOKEN in $MODE"; printf '%s' "$TOKEN" | wc -c > ${outs[0]}
    outs: [shell.txt]
  use:python:
    python: steps:use
    outs: [python.txt]
  leak:fail:
    cmd: echo "oops $TOKEN"; exit 1
"""
STEPS = """\
import os


def use(deps, outs, params):
    print("python sees", os.environ["TOKEN"])
    with open(outs[0], "w") as f:
        f.write(str(len(os.environ["TOKEN"])))
"""


def _files_containing(root: Path, needle: bytes) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and needle in p.read_bytes()
    )


def test_secret_reaches_commands_but_no_file_or_output(workspace: Workspace) -> None:
    p = workspace(CONFIG, {"steps.py": STEPS})
    run = p.mlbuild("--json", "-k", env={"MY_TOKEN": CANARY})
    assert run.code == 1  # leak:fail fails on purpose
    assert p.read("shell.txt").strip() == str(len(CANARY))
    assert p.read("python.txt") == str(len(CANARY))
    assert _files_containing(p.root, CANARY.encode()) == []
    assert CANARY not in run.out and CANARY not in run.err
    assert "using *** in plain" in p.read(".mlbuild/logs/use__shell.log")
    assert "python sees ***" in p.read(".mlbuild/logs/use__python.log")
    tail = [e for e in run.events if e.get("target") == "leak:fail" and "tail" in e]
    assert tail and tail[0]["tail"] == ["oops ***"]
    manifest = p.mlbuild("manifest", "show", "use:shell", "--json", env={"MY_TOKEN": CANARY})
    assert '"TOKEN": {\n        "secret": true,\n        "set": true\n      }' in manifest.out
    verbose = p.mlbuild("-v", "-B", "use:shell", env={"MY_TOKEN": CANARY})
    assert "[use:shell] using *** in plain" in verbose.out
    assert CANARY not in verbose.out + verbose.err


def test_secret_value_is_not_part_of_the_key(workspace: Workspace) -> None:
    p = workspace(CONFIG, {"steps.py": STEPS})
    assert p.mlbuild("use:shell", env={"MY_TOKEN": "first-token"}).code == 0
    again = p.mlbuild("--json", "use:shell", env={"MY_TOKEN": "second-token"})
    assert again.ran == []  # rotating a credential does not rebuild


def test_missing_secret_fails_the_target_clearly(workspace: Workspace) -> None:
    p = workspace(CONFIG, {"steps.py": STEPS})
    run = p.mlbuild("use:shell")
    assert run.code == 1
    assert "secret env TOKEN is read from $MY_TOKEN, which is not set" in run.err


def test_secret_cannot_be_interpolated_into_a_command(workspace: Workspace) -> None:
    p = workspace(
        "env: {TOKEN: {from: MY_TOKEN, secret: true}}\n"
        "targets:\n  t:\n    cmd: curl -H ${env.TOKEN} example.org\n"
    )
    run = p.mlbuild("validate")
    assert run.code == 2
    assert "${env.TOKEN} is a secret: it cannot be written into a command" in run.err


def test_env_from_without_secret_is_refused(workspace: Workspace) -> None:
    p = workspace("env: {TOKEN: {from: MY_TOKEN}}\ntargets:\n  t:\n    cmd: 'true'\n")
    run = p.mlbuild("validate")
    assert run.code == 2
    assert "must be marked secret: true" in run.err
