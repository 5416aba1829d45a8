"""Tree records (store/trees.py): a directory digested once is, while every name and stat
is unchanged and old enough, digested again from its record without reading one file; any
change a stat can show (content, mode, a file added, removed or renamed, a link retargeted)
is seen; a file inside the racy window is hashed again; a damaged record is ignored."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from mlbuild.digest import FileDigest, hash_file, hash_tree
from mlbuild.store import state as state_mod
from mlbuild.store.state import StateMemo
from mlbuild.store.trees import decode


class Reads:
    """Counts the files whose content the memo reads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []

        def counting(path: Any, *, want_sha256: bool) -> FileDigest:
            self.paths.append(os.path.basename(str(path)))
            return hash_file(path, want_sha256=want_sha256)

        monkeypatch.setattr(state_mod, "hash_file", counting)


def _tree(root: Path, files: dict[str, bytes], age: float = 10.0) -> None:
    past = time.time_ns() - int(age * 1e9)
    for rel, data in files.items():
        path = root / "ds" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, ns=(past, past))


def _memo(root: Path) -> StateMemo:
    return StateMemo(str(root), str(root / ".mlbuild" / "state.json"), str(root / "trees"))


def _truth(root: Path, *, out: bool = True) -> str:
    """The directory's digest from a memo that has no record (every file read)."""
    return StateMemo(str(root), None).digest("ds", out=out)[0].xxh


FILES = {"a.txt": b"alpha", "sub/b.txt": b"beta", "sub/c.bin": b"\0" * 100}


@pytest.mark.parametrize("out", [True, False])
def test_an_unchanged_directory_is_digested_from_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: bool
) -> None:
    _tree(tmp_path, FILES)
    first = _memo(tmp_path)
    digest, is_dir = first.digest("ds", out=out)
    first.save()
    assert is_dir and digest.xxh == _truth(tmp_path, out=out)
    reads = Reads(monkeypatch)
    again = _memo(tmp_path)
    assert again.digest("ds", out=out)[0] == digest
    entries = again.tree_entries("ds", want_sha256=False, confine=out)
    assert hash_tree(entries) == digest
    assert reads.paths == []


def test_tree_entries_with_sha256_come_from_a_record_that_has_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path, FILES)
    memo = _memo(tmp_path)
    made = memo.tree_entries("ds", want_sha256=True, confine=True)
    memo.save()
    reads = Reads(monkeypatch)
    again = _memo(tmp_path).tree_entries("ds", want_sha256=True, confine=True)
    assert again == made and all(d.sha256 for _, d, _ in again)
    assert reads.paths == []


@pytest.mark.parametrize(
    "change",
    ["content", "same_size_same_mtime", "added", "removed", "renamed", "mode", "link"],
)
def test_every_change_a_stat_shows_is_seen_and_only_changed_files_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    _tree(tmp_path, FILES)
    os.symlink("a.txt", tmp_path / "ds" / "link")
    memo = _memo(tmp_path)
    before = memo.digest("ds", out=True)[0]
    memo.save()
    b = tmp_path / "ds" / "sub" / "b.txt"
    if change == "content":
        b.write_bytes(b"BETA!")
    elif change == "same_size_same_mtime":  # only the ctime (and the inode) can tell
        mtime = b.stat().st_mtime_ns
        b.write_bytes(b"BETA")
        os.utime(b, ns=(mtime, mtime))
    elif change == "added":
        (tmp_path / "ds" / "new.txt").write_bytes(b"new")
    elif change == "removed":
        b.unlink()
    elif change == "renamed":
        b.rename(tmp_path / "ds" / "sub" / "b2.txt")
    elif change == "mode":
        b.chmod(0o755)
    else:
        (tmp_path / "ds" / "link").unlink()
        os.symlink("sub/b.txt", tmp_path / "ds" / "link")
    reads = Reads(monkeypatch)
    after = _memo(tmp_path).digest("ds", out=True)[0]
    read = set(reads.paths)
    assert after != before
    assert after.xxh == _truth(tmp_path)
    assert read <= {"b.txt", "b2.txt", "new.txt"}


def test_a_file_written_within_the_racy_window_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path, FILES)
    (tmp_path / "ds" / "a.txt").write_bytes(b"just now")  # mtime: now
    memo = _memo(tmp_path)
    memo.digest("ds", out=True)
    memo.save()
    reads = Reads(monkeypatch)
    _memo(tmp_path).digest("ds", out=True)
    assert reads.paths == ["a.txt"]  # the others were old when hashed: trusted


def _record_file(root: Path) -> Path:
    (found,) = (root / "trees").iterdir()
    return found


@pytest.mark.parametrize(
    "damage",
    ["truncate", "flip_digest", "flip_stat", "garbage", "empty", "other_dir", "swap_names"],
)
def test_a_damaged_record_is_ignored_and_the_digest_is_still_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    _tree(tmp_path, FILES)
    memo = _memo(tmp_path)
    truth = memo.digest("ds", out=True)[0]
    memo.save()
    path = _record_file(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip_digest":  # a hex digit of the tree digest in the header
        at = data.index(b'"xxh":"xxh3-128:') + len(b'"xxh":"xxh3-128:')
        data[at] = ord("0") if data[at] != ord("0") else ord("1")
    elif damage == "flip_stat":
        data[-40] ^= 0x01
    elif damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    elif damage == "empty":
        data = bytearray()
    elif damage == "other_dir":  # a record of another directory under this one's name
        data = data.replace(b'"rel":"ds"', b'"rel":"dz"')
    else:
        data = data.replace(b"a.txt\0", b"z.txt\0")
    path.write_bytes(bytes(data))
    reads = Reads(monkeypatch)
    again = _memo(tmp_path).digest("ds", out=True)[0]
    assert again == truth
    assert sorted(reads.paths) == ["a.txt", "b.txt", "c.bin"]
    assert decode(path.read_bytes(), "ds", True) is None


def test_the_record_replaces_the_per_file_entries_of_state_json(tmp_path: Path) -> None:
    _tree(tmp_path, FILES)
    legacy = StateMemo(str(tmp_path), str(tmp_path / "state.json"))  # an older mlbuild
    legacy.digest("ds", out=True)
    legacy.save()
    assert "ds/sub/b.txt" in (tmp_path / "state.json").read_text()
    memo = StateMemo(str(tmp_path), str(tmp_path / "state.json"), str(tmp_path / "trees"))
    memo.digest("ds", out=True)
    memo.save()
    assert "ds/" not in (tmp_path / "state.json").read_text()
    assert len(list((tmp_path / "trees").iterdir())) == 1


@pytest.mark.parametrize("out", [True, False])
def test_a_touched_file_is_read_once_and_the_recorded_tree_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: bool
) -> None:
    """Same names, one stat changed, same bytes (a touch, a copy back): only that file is
    read, the digest is the recorded one, and the new record takes the new stat, so the
    next walk reads nothing. Made with sha256 (as a commit makes an out's record) and
    checked without, as a decision checks."""
    _tree(tmp_path, FILES)
    memo = _memo(tmp_path)
    before = memo.tree_entries("ds", want_sha256=True, confine=out)
    memo.save()
    digest = hash_tree(before)
    later = time.time_ns() - 5_000_000_000
    os.utime(tmp_path / "ds" / "sub" / "b.txt", ns=(later, later))
    reads = Reads(monkeypatch)
    touched = _memo(tmp_path)
    assert touched.digest("ds", out=out)[0].xxh == digest.xxh
    touched.save()
    assert reads.paths == ["b.txt"]
    reads.paths.clear()
    assert _memo(tmp_path).digest("ds", out=out)[0].xxh == digest.xxh
    assert reads.paths == []
    # The record kept its sha256 column: a commit's entries still come from it.
    assert _memo(tmp_path).tree_entries("ds", want_sha256=True, confine=out) == before
    assert reads.paths == []


def test_an_edited_file_under_the_same_names_is_read_once_and_changes_the_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path, FILES)
    memo = _memo(tmp_path)
    digest = memo.digest("ds", out=True)[0]
    memo.save()
    _tree(tmp_path, {"sub/b.txt": b"BETA"})  # same size, another stat and content
    reads = Reads(monkeypatch)
    changed = _memo(tmp_path).digest("ds", out=True)[0]
    assert reads.paths == ["b.txt"]  # not once to compare and again to compute
    assert changed.xxh != digest.xxh and changed.xxh == _truth(tmp_path)


@pytest.mark.parametrize("out", [True, False])
def test_a_tree_record_is_trusted_only_with_its_digest_and_every_file_settled(
    tmp_path: Path, out: bool
) -> None:
    """`trusted_tree` (what the no-op stamp records a directory through): the memo's own
    record, with the digest asked, made after every file had settled. A file written within
    the racy window leaves a record that must not be trusted: the same stat could later
    hide other bytes."""
    _tree(tmp_path, FILES)
    memo = _memo(tmp_path)
    xxh = memo.digest("ds", out=out)[0].xxh
    assert memo.trusted_tree("ds", out, xxh)
    assert not memo.trusted_tree("ds", out, "xxh3-128:" + "0" * 32)
    assert not memo.trusted_tree("ds", not out, xxh)  # another record: not walked so
    assert not memo.trusted_tree("other", out, xxh)
    _tree(tmp_path, {"sub/b.txt": b"BETA"}, age=0.0)  # written now: racy
    racy = _memo(tmp_path)
    new = racy.digest("ds", out=out)[0].xxh
    assert new != xxh
    assert not racy.trusted_tree("ds", out, new)
