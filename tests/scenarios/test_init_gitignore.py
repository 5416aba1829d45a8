"""`mlbuild init` ignores .mlbuild/ in .gitignore (created, or appended to, never twice),
points at help a user has, and prints its next step with the -C/-f it was given."""

from __future__ import annotations

import shlex
from pathlib import Path

from tests.conftest import Project


def test_init_writes_a_gitignore_once_and_its_starter_points_at_real_help(
    tmp_path: Path,
) -> None:
    p = Project(tmp_path)
    first = p.mlbuild("init")
    assert first.code == 0, first.err
    assert p.read(".gitignore") == ".mlbuild/\n"
    assert "next: `mlbuild list` shows the targets, `mlbuild` builds them" in first.out
    starter = p.read("mlbuild.yaml")
    assert "`mlbuild schema`" in starter and "`mlbuild --help`" in starter
    assert "docs/" not in starter  # an installed mlbuild ships no docs/ directory

    again = p.mlbuild("init", "--force")
    assert again.code == 0, again.err
    assert p.read(".gitignore") == ".mlbuild/\n"  # idempotent
    assert ".gitignore" not in again.out


def test_init_appends_to_an_existing_gitignore_and_its_hint_keeps_c_and_f(
    tmp_path: Path,
) -> None:
    (tmp_path / "proj dir").mkdir()
    (tmp_path / "proj dir" / ".gitignore").write_text("*.pyc")  # no final newline
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / ".gitignore").write_text("venv/\n/.mlbuild\n")
    outside = Project(tmp_path)

    run = outside.mlbuild("-C", "proj dir", "-f", "ml.yaml", "init")
    assert run.code == 0, run.err
    assert (tmp_path / "proj dir" / ".gitignore").read_text() == "*.pyc\n.mlbuild/\n"
    hint = run.out.splitlines()[-1]
    assert hint == (
        "next: `mlbuild -C 'proj dir' -f ml.yaml list` shows the targets, "
        "`mlbuild -C 'proj dir' -f ml.yaml` builds them"
    )
    listed = outside.mlbuild(*shlex.split(hint.split("`")[1])[1:])  # the hint works as typed
    assert listed.code == 0 and "model:train" in listed.out

    assert outside.mlbuild("-C", "other", "init").code == 0
    assert (tmp_path / "other" / ".gitignore").read_text() == "venv/\n/.mlbuild\n"
