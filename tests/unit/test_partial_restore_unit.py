"""The pieces of a partial restore (rebuild/partial.py) below the CLI: which objects the
cache holds (`Cache.missing`, listing a fan-out directory or stat-ing each name), the
memo's view of an out directory (`StateMemo.out_entries`), and `sync_dir` on shapes a
scenario cannot make portably (a FIFO in the way)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mlbuild.digest import hash_bytes
from mlbuild.rebuild.partial import set_aside, sync_dir
from mlbuild.store import cache as cache_mod
from mlbuild.store.cache import Cache
from mlbuild.store.records import RecordError
from mlbuild.store.state import StateMemo


def _store(cache: Cache, data: bytes) -> str:
    digest = hash_bytes(data)
    tmp = cache.new_temp(digest)
    Path(tmp).write_bytes(data)
    cache.adopt([(tmp, digest)])
    return digest


@pytest.mark.parametrize("list_bytes", [0, 1 << 30], ids=["stat-each", "list-dir"])
def test_missing_names_exactly_the_absent_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, list_bytes: int
) -> None:
    monkeypatch.setattr(cache_mod, "_LIST_BYTES_PER_NAME", list_bytes)
    cache = Cache(str(tmp_path / "cache"))
    held = [_store(cache, f"object {i}".encode()) for i in range(40)]
    absent = [hash_bytes(f"never stored {i}".encode()) for i in range(40)]
    # A temporary file in a fan-out directory is not an object.
    Path(cache.object_path(held[0])).with_name(".tmp-1-1").write_bytes(b"x")
    asked = [d for pair in zip(held, absent, strict=True) for d in pair]
    assert cache.missing(asked) == absent
    assert cache.missing([]) == []


def test_missing_refuses_a_digest_that_is_not_one(tmp_path: Path) -> None:
    cache = Cache(str(tmp_path / "cache"))
    with pytest.raises(RecordError):
        cache.missing(["xxh3-128:../../etc/passwd"])


def _ws(tmp_path: Path) -> tuple[Path, Cache, StateMemo, str]:
    """A workspace with the out ``d`` stored in the cache; returns its tree digest."""
    root = tmp_path / "ws"
    d = root / "d"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_bytes(b"alpha")
    (d / "sub" / "b.txt").write_bytes(b"beta")
    cache = Cache(str(tmp_path / "cache"))
    memo = StateMemo(str(root), None, str(tmp_path / "trees"))
    entries = memo.tree_entries("d", want_sha256=False, confine=True)
    return root, cache, memo, cache.store_tree(str(d), entries)


def test_out_entries_reuses_the_decision_walk_once(tmp_path: Path) -> None:
    root, _, memo, tree = _ws(tmp_path)
    memo.forget_walks(["d"])
    memo.digest("d", out=True)
    (root / "d" / "a.txt").write_bytes(b"changed after the walk")
    # The walk the decision made is what is compared (used once) ...
    first = memo.out_entries("d")
    assert first["a.txt"] == (hash_bytes(b"alpha"), "f")
    # ... and the next call walks again.
    assert memo.out_entries("d")["a.txt"][0] == hash_bytes(b"changed after the walk")


def test_out_entries_never_reuses_a_walk_from_before_the_decision(tmp_path: Path) -> None:
    root, _, memo, tree = _ws(tmp_path)
    memo.digest("d", out=True)  # an earlier check, e.g. of another build step
    (root / "d" / "a.txt").write_bytes(b"edited since")
    memo.forget_walks(["d"])  # the decision about d starts; its check finds nothing
    assert memo.out_entries("d")["a.txt"][0] == hash_bytes(b"edited since")
    # The commit's walk (entries of an out just written) is never reused either.
    memo.tree_entries("d", want_sha256=False, confine=True)
    (root / "d" / "a.txt").write_bytes(b"edited again")
    assert memo.out_entries("d")["a.txt"][0] == hash_bytes(b"edited again")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_where_a_directory_belongs_is_set_aside(tmp_path: Path) -> None:
    root, cache, memo, tree = _ws(tmp_path)
    (root / "d" / "sub" / "b.txt").unlink()
    (root / "d" / "sub").rmdir()
    os.mkfifo(root / "d" / "sub")
    memo.forget_walks(["d"])
    aside = tmp_path / "aside"
    assert sync_dir(cache, memo, str(root), "d", tree, str(aside))
    assert (root / "d" / "sub" / "b.txt").read_bytes() == b"beta"
    assert (aside / "sub").is_fifo()  # not ours to delete


def test_a_path_that_is_not_a_directory_is_left_to_the_whole_restore(tmp_path: Path) -> None:
    root, cache, memo, tree = _ws(tmp_path)
    (root / "e").symlink_to("d")
    assert not sync_dir(cache, memo, str(root), "e", tree, str(tmp_path / "aside"))
    assert not sync_dir(cache, memo, str(root), "missing", tree, str(tmp_path / "aside"))
    assert not (tmp_path / "aside").exists()


def test_set_aside_never_overwrites(tmp_path: Path) -> None:
    for text in ("one", "two", "three"):
        (tmp_path / "f").write_text(text)
        set_aside(str(tmp_path / "f"), str(tmp_path / "aside" / "f"))
    kept = {p.name: p.read_text() for p in (tmp_path / "aside").iterdir()}
    assert kept == {"f": "one", "f.1": "two", "f.2": "three"}
    set_aside(str(tmp_path / "nothing"), str(tmp_path / "aside" / "nothing"))  # no error


def test_an_entry_whose_stat_was_zeroed_never_compares_equal(tmp_path: Path) -> None:
    """A record entry whose file changed while it was hashed has a zeroed stat, hence no
    mode: `entry_map` gives NUL, so a partial restore replaces it rather than trust it."""
    from mlbuild.digest import STAT, FileDigest
    from mlbuild.store.trees import TreeRecord

    digest = hash_bytes(b"alpha")
    record = TreeRecord(
        "d",
        True,
        0,
        ["a.txt"],
        bytes(STAT.size),
        bytes.fromhex(digest.split(":", 1)[1]),
        None,
        FileDigest(5, digest, None),
    )
    assert record.entry_map() == {"a.txt": (digest, "\0")}


@pytest.mark.parametrize(
    ("tamper", "said"),
    [
        (lambda found: found.update({"a.txt": (hash_bytes(b"other"), "f")}), "a.txt changed"),
        (lambda found: found.update({"a.txt": (found["a.txt"][0], "x")}), "a.txt changed"),
        (lambda found: found.pop("sub/b.txt"), "sub/b.txt changed"),
        (lambda found: found.update({"z.txt": (hash_bytes(b"z"), "f")}), "z.txt appeared"),
    ],
    ids=["bytes", "mode", "gone", "stray"],
)
def test_a_whole_restore_whose_read_back_differs_is_never_renamed_into_place(
    tmp_path: Path, tamper: Callable[[dict[str, tuple[str, str]]], object], said: str
) -> None:
    """What the one verification pass read (`hash_dir`) must be the tree, entry for entry:
    a file that changed under the restore, or one that appeared, fails the restore with
    the name said; the destination is not made, no temporary directory stays, and the
    cache objects (good) are kept."""
    from mlbuild.errors import MlbuildError
    from mlbuild.kinds import OutType
    from mlbuild.store.records import OutRecord

    root, cache, memo, tree = _ws(tmp_path)
    rec = OutRecord(path="r", type=OutType.DIR.value, xxh=tree, sha256=None, size=9)

    def reading(tmp: str) -> dict[str, tuple[str, str]]:
        found = memo.hash_restored("r", tmp)
        assert found == {
            "a.txt": (hash_bytes(b"alpha"), "f"),
            "sub/b.txt": (hash_bytes(b"beta"), "f"),
        }
        tamper(found)
        return found

    with pytest.raises(MlbuildError, match=said):
        cache.restore_out(rec, str(root / "r"), at="r", hash_dir=reading)
    assert sorted(os.listdir(root)) == ["d"]
    assert cache.has(hash_bytes(b"alpha")) and cache.has(hash_bytes(b"beta"))
