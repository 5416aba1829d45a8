"""A glob dep means the same thing for an out a target produces and for a file on disk."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Project

CONFIG = """\
version: 1
targets:
  hidden:
    cmd: echo h > ${outs[0]}
    outs: [data/.h]
  visible:
    cmd: echo v > ${outs[0]}
    outs: [data/v.txt]
  all:
    cmd: echo ${deps} > ${outs[0]}
    deps: ['data/*']
    outs: [all.txt]
"""


def test_a_hidden_out_and_a_hidden_file_are_both_left_out_of_a_star_dep(
    workspace: Callable[..., Project],
) -> None:
    p = workspace(CONFIG, {"data/s.txt": "s\n", "data/.s": "hidden source\n"})
    first = p.build("all")
    # data/.h is produced, data/.s is on disk: ``*`` matches neither, so 'hidden' is not
    # a dep of 'all' and neither path is in ${deps}.
    assert first.ran == ["all", "visible"]
    assert p.read("all.txt") == "data/s.txt data/v.txt\n"
    assert p.build("hidden").ran == ["hidden"]  # data/.h now exists on disk too
    assert p.build("all").ran == []
