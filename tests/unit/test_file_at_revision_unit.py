"""`experiments.file_at_revision`, the one reader of a file as committed at a git REV
(`metrics diff REV`, `params diff REV`, `plots diff REV`): a REV is text from the command
line or a CI variable, and git must never read it as one of its options; git's messages are
matched in the C locale whatever the user's language."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlbuild.errors import UsageError
from mlbuild.experiments import file_at_revision


def _repo(root: Path) -> None:
    (root / "mlbuild.lock").write_text("{}\n")
    for args in (
        ["init", "-q"],
        ["add", "mlbuild.lock"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one"],
    ):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


@pytest.mark.parametrize("rev", ["--output={out}", "-p", "--ext-diff"])
def test_a_rev_that_git_would_take_for_an_option_is_refused(tmp_path: Path, rev: str) -> None:
    _repo(tmp_path)
    out = tmp_path / "written-by-git"
    with pytest.raises(UsageError, match="is not a git revision"):
        file_at_revision(str(tmp_path), "mlbuild.lock", rev.format(out=out))
    assert not out.exists()


def test_a_file_missing_at_a_revision_is_none_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _repo(tmp_path)
    # A translated git (where this locale is installed) must not hide "does not exist".
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    monkeypatch.setenv("LANGUAGE", "de")
    assert file_at_revision(str(tmp_path), "mlbuild.lock", "HEAD") == b"{}\n"
    assert file_at_revision(str(tmp_path), "plots/x.csv", "HEAD", missing_ok=True) is None
