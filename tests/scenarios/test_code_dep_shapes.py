"""Editing a script reruns its target whatever shape the command has (issue 10, part 1):
a subshell, a group, a multi-line block, `cd`, a launcher, `sh -c`."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Project

Workspace = Callable[..., Project]

PIPELINE = """
targets:
  subshell:
    cmd: (python a.py > ${outs[0]}) 2> /dev/null
    outs: [a.txt]
  group:
    cmd: "{ python b.py; } > ${outs[0]}"
    outs: [b.txt]
  block:
    cmd: |
      echo start > ${outs[0]}
      python c.py >> ${outs[0]}
    outs: [c.txt]
  cd:
    cmd: cd sub && python d.py > ../${outs[0]}
    outs: [d.txt]
  launcher:
    cmd: timeout 60 nice -n 1 python e.py > ${outs[0]}
    outs: [e.txt]
  inner:
    cmd: sh -c 'python f.py' > ${outs[0]}
    outs: [f.txt]
"""
SCRIPTS = {"a.py": "a", "b.py": "b", "c.py": "c", "sub/d.py": "d", "e.py": "e", "f.py": "f"}
TARGETS = {
    "a.py": "subshell",
    "b.py": "group",
    "c.py": "block",
    "sub/d.py": "cd",
    "e.py": "launcher",
    "f.py": "inner",
}


def test_editing_a_script_reruns_its_target_in_every_command_shape(workspace: Workspace) -> None:
    p = workspace(PIPELINE, {path: f"print({name!r})\n" for path, name in SCRIPTS.items()})
    assert sorted(p.build().ran) == sorted(TARGETS.values())
    for path, target in TARGETS.items():
        p.write(path, f"print({SCRIPTS[path]!r} * 2)\n")
        run = p.build()
        assert run.ran == [target], (path, run.ran)
    assert p.build().ran == []


def test_show_names_the_code_deps_or_says_none_were_found(workspace: Workspace) -> None:
    p = workspace(
        PIPELINE + "  opaque:\n    cmd: bash run.sh > ${outs[0]}\n    outs: [g.txt]\n",
        {"sub/d.py": "print(1)\n", "run.sh": "python hidden.py\n"},
    )
    shown = p.mlbuild("show", "cd")
    assert shown.code == 0, shown.err
    assert 'code      ["sub/d.py"]' in shown.out
    opaque = p.mlbuild("show", "opaque")
    assert "code      none found in this command; list the scripts it runs in deps" in opaque.out
    as_json = p.mlbuild("show", "cd", "--json")
    assert '"code": ["sub/d.py"]' in as_json.out.replace("\n", "").replace("  ", "")
