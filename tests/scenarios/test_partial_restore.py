"""Restoring a directory out touches only what differs (a partial restore), and whatever
the workspace held that the cached tree does not is kept in `.mlbuild/aside/`, never lost.

A dataset directory of 100,000 files with one file edited must not be restored by copying
100,000 files: only the edited file is replaced, strays are moved aside, and the files
that match the tree keep their inodes (they are not touched at all)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Project

ASIDE = ".mlbuild/aside/data__images/data/images"


def _inodes(root: Path) -> dict[str, int]:
    """Every file and link below ``root`` (relative path → inode)."""
    found = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            full = Path(dirpath, name)
            found[full.relative_to(root).as_posix()] = full.lstat().st_ino
    return found


@pytest.fixture
def built(project: Callable[[str], Project]) -> Project:
    p = project("datadir")
    assert p.build().ran == ["data:images", "features:count"]
    return p


def _restore(p: Project) -> dict[str, int]:
    """Build, which must restore data:images only; returns the inodes after."""
    run = p.build()
    assert run.restored == ["data:images"], run.out
    assert run.ran == []
    assert p.mlbuild("status", "--json").code == 0
    again = p.build()
    assert again.ran == [] and again.restored == [], "the restore left the out stale"
    return _inodes(p.path("data/images"))


def test_one_edited_file_is_the_only_file_restored(built: Project) -> None:
    p = built
    before = _inodes(p.path("data/images"))
    p.write("data/images/cat/003.bin", "my edit\n")
    after = _restore(p)
    assert p.read("data/images/cat/003.bin") == "cat 3\n" * 4
    assert p.read(f"{ASIDE}/cat/003.bin") == "my edit\n"  # kept, never deleted
    changed = sorted(k for k in before if before[k] != after.get(k))
    assert changed == ["cat/003.bin"]
    assert sorted(after) == sorted(before)
    # Only the edited file was set aside, not the whole directory.
    assert _inodes(p.path(ASIDE)).keys() == {"cat/003.bin"}


def test_strays_are_moved_aside_and_emptied_directories_removed(built: Project) -> None:
    p = built
    before = _inodes(p.path("data/images"))
    p.write("data/images/notes.txt", "mine\n")
    p.write("data/images/wolf/001.bin", "a new class\n")
    p.path("data/images/dog/007.bin").unlink()
    after = _restore(p)
    assert after == {k: v for k, v in before.items() if k != "dog/007.bin"} | {
        "dog/007.bin": after["dog/007.bin"]
    }
    assert not p.path("data/images/wolf").exists()
    assert p.read(f"{ASIDE}/notes.txt") == "mine\n"
    assert p.read(f"{ASIDE}/wolf/001.bin") == "a new class\n"
    assert p.read("data/images/dog/007.bin") == "dog 7\n" * 8


def test_a_file_where_a_directory_was_and_the_reverse(built: Project) -> None:
    p = built
    p.path("data/images/cat/003.bin").unlink()
    p.write("data/images/cat/003.bin/inner.txt", "a dir now\n")
    for f in p.path("data/images/dog").iterdir():
        f.unlink()
    p.path("data/images/dog").rmdir()
    p.write("data/images/dog", "a file now\n")
    after = _restore(p)
    assert p.read("data/images/cat/003.bin") == "cat 3\n" * 4
    assert len([k for k in after if k.startswith("dog/")]) == 20
    assert p.read(f"{ASIDE}/cat/003.bin/inner.txt") == "a dir now\n"
    assert p.read(f"{ASIDE}/dog") == "a file now\n"


def test_mode_and_link_changes_are_restored(built: Project) -> None:
    p = built
    script = p.path("data/images/fetch.sh")
    script.chmod(0o644)
    link = p.path("data/images/first.bin")
    link.unlink()
    link.symlink_to("dog/000.bin")
    _restore(p)
    assert script.stat().st_mode & stat.S_IXUSR
    assert os.readlink(link) == "cat/000.bin"
    assert os.readlink(p.path(f"{ASIDE}/first.bin")) == "dog/000.bin"


def test_a_link_leading_outside_is_moved_aside_whole_never_followed(
    built: Project, tmp_path: Path
) -> None:
    p = built
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "keep.txt").write_text("outside\n")
    p.path("data/images/cat").rename(p.path("cat-moved"))
    p.path("data/images/cat").symlink_to(secret)
    _restore(p)
    assert (secret / "keep.txt").read_text() == "outside\n"  # never reached through
    assert sorted(os.listdir(secret)) == ["keep.txt"]
    assert not p.path("data/images/cat").is_symlink()
    assert len(os.listdir(p.path("data/images/cat"))) == 20


def _rot(p: Project, good: bytes, bad: bytes) -> Path:
    """Overwrite the cache object holding ``good`` with ``bad``; returns its path."""
    [obj] = [
        o
        for o in p.path(".mlbuild/cache/objects").rglob("*")
        if o.is_file() and o.read_bytes() == good
    ]
    obj.chmod(0o644)
    obj.write_bytes(bad)
    return obj


def test_an_edit_survives_a_restore_that_fails_on_a_corrupt_object(built: Project) -> None:
    """The edited file goes aside, the restore then finds the cached copy corrupt and the
    target runs instead: the run's own move aside must not drop what the restore kept."""
    p = built
    good = p.path("data/images/cat/003.bin").read_bytes()
    _rot(p, good, b"rotten\n")
    p.write("data/images/cat/003.bin", "my edit\n")
    run = p.build()
    assert run.ran == ["data:images"]
    assert "is corrupt" in run.out
    assert p.path("data/images/cat/003.bin").read_bytes() == good
    kept = [f for f in p.path(".mlbuild/aside").rglob("*") if f.is_file()]
    assert "my edit\n" in [f.read_text() for f in kept], kept


def test_a_corrupt_tree_object_is_not_restored_from_and_the_edit_is_kept(
    built: Project,
) -> None:
    """The tree object a partial restore compares with is read back through the strict
    parser: flipped bytes make it unusable (dropped, said), the target runs instead, and
    the hand edit is kept aside."""
    p = built
    tree_id = p.lock_entries()["data:images"]["outs"][0]["xxh"].split(":", 1)[1]
    tree = p.path(f".mlbuild/cache/objects/{tree_id[:2]}/{tree_id[2:]}")
    raw = tree.read_bytes()
    tree.chmod(0o644)
    tree.write_bytes(raw.replace(b"cat/003.bin", b"../x/03.bin", 1))
    p.write("data/images/cat/003.bin", "my edit\n")
    run = p.build()
    assert run.ran == ["data:images"] and run.restored == []
    assert "corrupt tree object" in run.out + run.err
    assert p.read("data/images/cat/003.bin") == "cat 3\n" * 4
    kept = [f for f in p.path(".mlbuild/aside").rglob("*") if f.is_file()]
    assert "my edit\n" in [f.read_text() for f in kept]


def _count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from mlbuild.digest import FileDigest, hash_file
    from mlbuild.store import state as state_mod

    hashed: list[str] = []

    def counting(path: str, *, want_sha256: bool) -> FileDigest:
        hashed.append(path)
        return hash_file(path, want_sha256=want_sha256)

    monkeypatch.setattr(state_mod, "hash_file", counting)
    return hashed


def test_a_whole_directory_restore_leaves_a_record_the_next_no_op_trusts(
    built: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restore's verification read becomes the out's tree record: the build after it
    walks the restored files and reads none of them."""
    import shutil

    p = built
    shutil.rmtree(p.path("data/images"))
    hashed = _count_hashes(monkeypatch)
    assert p.build().restored == ["data:images"]
    verified = [h for h in hashed if ".mlbuild-restore-" in h]  # before the rename
    assert len(verified) == len(set(verified)) == 61  # each file once (not the link)
    hashed.clear()
    again = p.build()
    assert again.ran == [] and again.restored == []
    assert [h for h in hashed if "images" in h] == []
    p.write("data/images/cat/003.bin", "my edit\n")  # the record is no blanket "fresh"
    assert p.build().restored == ["data:images"]
    assert hashed == [str(p.path("data/images/cat/003.bin"))]
    assert p.read("data/images/cat/003.bin") == "cat 3\n" * 4


def test_a_whole_directory_restore_still_reads_every_file_against_its_object(
    built: Project,
) -> None:
    """Verification moved to one pass after the files are placed: a rotten object is still
    caught before the directory is renamed into place, dropped, and the target runs."""
    import shutil

    p = built
    good = p.path("data/images/dog/007.bin").read_bytes()
    obj = _rot(p, good, good[:-1] + b"X")  # same size: only a read finds it
    shutil.rmtree(p.path("data/images"))
    run = p.build()
    assert run.ran == ["data:images"] and run.restored == []
    assert "is corrupt" in run.out
    assert not obj.exists() or obj.read_bytes() == good  # dropped (or stored anew)
    assert p.path("data/images/dog/007.bin").read_bytes() == good
    assert not [n for n in os.listdir(p.path("data")) if n.startswith(".mlbuild-restore")]
    assert p.build().ran == []
