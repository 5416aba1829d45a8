"""`Cache.store_tree` stores a directory's objects as one batch with two durability points
(store/cache.py): no object's name exists before the filesystem has been synced with its
bytes, a failure midway leaves neither objects nor temporary files, and identical files
become one object."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlbuild.digest import FileDigest, hash_bytes
from mlbuild.store import atomic
from mlbuild.store import cache as cache_mod
from mlbuild.store.cache import Cache
from mlbuild.store.state import StateMemo


def _dir(root: Path) -> Path:
    d = root / "ws" / "d"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_bytes(b"alpha")
    (d / "sub" / "b.txt").write_bytes(b"beta")
    (d / "sub" / "same.txt").write_bytes(b"alpha")  # the same object as a.txt
    os.symlink("a.txt", d / "link")
    return d


def _entries(root: Path) -> list[tuple[str, FileDigest, str]]:
    memo = StateMemo(str(root / "ws"), None)
    return memo.tree_entries("d", want_sha256=True, confine=True)


def _leftovers(cache: Cache) -> list[str]:
    return [
        os.path.join(dirpath, name)
        for dirpath, _, names in os.walk(cache.objects)
        for name in names
        if name.startswith(".tmp-")
    ]


def test_no_object_is_named_before_the_filesystem_is_synced_with_its_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = _dir(tmp_path)
    cache = Cache(str(tmp_path / "cache"))
    entries = _entries(tmp_path)
    syncs: list[list[bool]] = []
    dests = [cache.object_path(digest.xxh) for _, digest, _ in entries]

    def sync(path: str) -> None:
        syncs.append([os.path.exists(p) for p in dests])

    monkeypatch.setattr(atomic, "sync_filesystem", sync)
    tree = cache.store_tree(str(d), entries)
    assert len(syncs) == 2
    assert not any(syncs[0])  # first sync: bytes only, under temporary names
    assert all(syncs[1])  # second sync: every name, before the tree object names them
    assert all(os.path.exists(p) for p in dests) and cache.has(tree)
    assert Path(cache.object_path(hash_bytes(b"alpha"))).read_bytes() == b"alpha"
    assert Path(cache.object_path(hash_bytes(b"a.txt"))).read_bytes() == b"a.txt"  # the link
    assert len(set(dests)) == 3 and _leftovers(cache) == []
    assert all(os.stat(p).st_mode & 0o777 == 0o444 for p in dests)


def test_a_failure_midway_leaves_no_object_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = _dir(tmp_path)
    cache = Cache(str(tmp_path / "cache"))
    entries = _entries(tmp_path)
    real = Cache._stage
    calls: list[str] = []

    def failing(self: Cache, src: str, dest: str, *, share: bool) -> str:
        calls.append(src)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(self, src, dest, share=share)

    monkeypatch.setattr(Cache, "_stage", failing)
    with pytest.raises(OSError, match="No space"):
        cache.store_tree(str(d), entries)
    assert _leftovers(cache) == []
    assert not any(cache.has(digest.xxh) for _, digest, _ in entries)


@pytest.mark.parametrize("kernel", ["copy_file_range", "refused_midway", "absent"])
def test_a_copy_is_whole_whichever_way_the_kernel_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: str
) -> None:
    src = tmp_path / "src"
    data = os.urandom(3_000_000)
    src.write_bytes(data)
    real = getattr(os, "copy_file_range", None)
    if kernel == "refused_midway" and real is not None:

        def partial(in_fd: int, out_fd: int, count: int) -> int:
            if os.lseek(out_fd, 0, os.SEEK_CUR) > 0:
                raise OSError(18, "Invalid cross-device link")
            copied: int = real(in_fd, out_fd, min(count, 1000))
            return copied

        monkeypatch.setattr(os, "copy_file_range", partial)
    elif kernel == "absent":
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    cache_mod.clone_file(str(src), str(tmp_path / "copy"))
    assert (tmp_path / "copy").read_bytes() == data
    staged = Cache(str(tmp_path))._stage(
        str(src), str(tmp_path / "objects" / "ab" / "cd"), share=False
    )
    assert Path(staged).read_bytes() == data and Path(staged).name.startswith(".tmp-")


def test_a_refused_reflink_is_known_per_directory_not_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`_reflink_refused`, asked once per file stored with ``link: [reflink, hardlink,
    ...]``: while no clone has failed it stats nothing; after one has, it stats each of the
    two directories once, not both paths of every file (1.2 s of storing 100,000 files)."""
    src_dir, dst_dir = tmp_path / "src", tmp_path / "objects"
    src_dir.mkdir()
    dst_dir.mkdir()
    files = [src_dir / f"f{i:03d}" for i in range(50)]
    for f in files:
        f.write_bytes(b"x")
    monkeypatch.setattr(cache_mod, "_DEVS", {})
    calls: list[str] = []
    real_stat = os.stat

    def counting(path: str) -> os.stat_result:
        calls.append(path)
        return real_stat(path)

    monkeypatch.setattr(cache_mod, "_NO_CLONE", set())
    monkeypatch.setattr(os, "stat", counting)
    assert not any(cache_mod._reflink_refused(str(f), str(dst_dir)) for f in files)
    assert calls == []
    dev = real_stat(tmp_path).st_dev
    monkeypatch.setattr(cache_mod, "_NO_CLONE", {(dev, dev)})
    assert all(cache_mod._reflink_refused(str(f), str(dst_dir)) for f in files)
    assert sorted(calls) == sorted([str(src_dir), str(dst_dir)])
