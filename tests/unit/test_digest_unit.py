"""Content digests, trees, canonical JSON and build keys (mlbuild.digest)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import stat
import tempfile
from pathlib import Path

import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from mlbuild.digest import (
    STAT,
    FileDigest,
    build_key,
    canonical_json,
    hash_bytes,
    hash_file,
    hash_tree,
    walk_packed,
    walk_tree,
)


def _reference(data: bytes) -> tuple[str, str]:
    return (
        "xxh3-128:" + xxhash.xxh3_128(data).hexdigest(),
        "sha256:" + hashlib.sha256(data).hexdigest(),
    )


def _tree_digest(root: Path) -> FileDigest:
    return hash_tree(
        [(rel, hash_file(full, want_sha256=True), ex) for rel, full, ex in walk_tree(str(root))]
    )


# --------------------------------------------------------------------------- files


def test_small_file_digests_match_reference_xxh3_and_sha256(tmp_path: Path) -> None:
    data = b"age,income,label\n42,1000.5,1\n"
    path = tmp_path / "raw.csv"
    path.write_bytes(data)
    digest = hash_file(path, want_sha256=True)
    assert (digest.xxh, digest.sha256) == _reference(data)
    assert digest.size == len(data)


def test_empty_file_digests_match_reference(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    digest = hash_file(path, want_sha256=True)
    assert (digest.xxh, digest.sha256) == _reference(b"")
    assert digest.size == 0


def test_large_file_read_through_mmap_matches_reference(tmp_path: Path) -> None:
    # > 4 MiB takes the mmap path; a size that is not a multiple of any chunk size.
    data = random.Random(7).randbytes(5 * 1024 * 1024 + 12345)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    digest = hash_file(path, want_sha256=True)
    assert (digest.xxh, digest.sha256) == _reference(data)
    assert digest.size == len(data)


def test_file_just_below_and_above_mmap_threshold_both_match_reference(tmp_path: Path) -> None:
    rng = random.Random(3)
    for size in (4 * 1024 * 1024 - 1, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1):
        data = rng.randbytes(size)
        path = tmp_path / f"f{size}"
        path.write_bytes(data)
        digest = hash_file(path, want_sha256=True)
        assert (digest.xxh, digest.sha256) == _reference(data), size


def test_source_hash_without_sha256_gives_same_xxh3(tmp_path: Path) -> None:
    path = tmp_path / "s.py"
    path.write_bytes(b"print('hi')\n")
    fast = hash_file(path, want_sha256=False)
    full = hash_file(path, want_sha256=True)
    assert fast.sha256 is None
    assert fast.xxh == full.xxh


def test_hash_bytes_matches_hash_file_of_same_bytes(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"same bytes")
    assert hash_bytes(b"same bytes") == hash_file(path, want_sha256=False).xxh


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=4096))
def test_any_bytes_hash_like_the_reference_libraries(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "blob")
        with open(path, "wb") as f:
            f.write(data)
        digest = hash_file(path, want_sha256=True)
    assert (digest.xxh, digest.sha256) == _reference(data)


# --------------------------------------------------------------------------- trees


def _make_tree(root: Path) -> None:
    (root / "b").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "b" / "c.txt").write_text("gamma")
    (root / "b" / "d.txt").write_text("delta")


def test_tree_digest_does_not_depend_on_file_creation_order(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _make_tree(one)
    # Same content created in the reverse order (directory entry order differs).
    (two / "b").mkdir(parents=True)
    (two / "b" / "d.txt").write_text("delta")
    (two / "b" / "c.txt").write_text("gamma")
    (two / "a.txt").write_text("alpha")
    assert _tree_digest(one) == _tree_digest(two)


def test_tree_digest_does_not_depend_on_entry_list_order(tmp_path: Path) -> None:
    root = tmp_path / "t"
    _make_tree(root)
    entries = [
        (rel, hash_file(full, want_sha256=True), ex) for rel, full, ex in walk_tree(str(root))
    ]
    assert hash_tree(entries) == hash_tree(list(reversed(entries)))


def test_tree_digest_changes_when_a_file_is_renamed(tmp_path: Path) -> None:
    root = tmp_path / "t"
    _make_tree(root)
    before = _tree_digest(root)
    (root / "a.txt").rename(root / "a2.txt")
    assert _tree_digest(root).xxh != before.xxh


def test_tree_digest_changes_when_one_byte_changes(tmp_path: Path) -> None:
    root = tmp_path / "t"
    _make_tree(root)
    before = _tree_digest(root)
    (root / "b" / "c.txt").write_text("gammA")
    after = _tree_digest(root)
    assert after.xxh != before.xxh
    assert after.sha256 != before.sha256


def test_tree_digest_changes_when_executable_bit_changes(tmp_path: Path) -> None:
    root = tmp_path / "t"
    _make_tree(root)
    before = _tree_digest(root)
    path = root / "a.txt"
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    after = _tree_digest(root)
    assert after.xxh != before.xxh
    assert after.sha256 != before.sha256


def test_tree_digest_changes_when_a_file_moves_to_another_subdirectory(tmp_path: Path) -> None:
    root = tmp_path / "t"
    _make_tree(root)
    before = _tree_digest(root)
    (root / "b" / "c.txt").rename(root / "c.txt")
    assert _tree_digest(root).xxh != before.xxh


def test_empty_directory_has_a_stable_digest(tmp_path: Path) -> None:
    first, second = tmp_path / "e1", tmp_path / "e2"
    first.mkdir()
    second.mkdir()
    d1, d2 = _tree_digest(first), _tree_digest(second)
    assert d1 == d2
    assert d1.size == 0
    # The digest of an empty directory is that of the empty tree, not of an empty file.
    assert d1.xxh == hash_bytes(b"[]")
    assert d1.xxh != hash_bytes(b"")


def test_empty_subdirectories_do_not_change_the_tree_digest(tmp_path: Path) -> None:
    root = tmp_path / "t"
    _make_tree(root)
    before = _tree_digest(root)
    (root / "nothing" / "here").mkdir(parents=True)
    assert _tree_digest(root) == before


def test_tree_size_is_the_sum_of_file_sizes(tmp_path: Path) -> None:
    root = tmp_path / "t"
    _make_tree(root)
    assert _tree_digest(root).size == len("alpha") + len("gamma") + len("delta")


def test_walk_tree_lists_nested_files_with_posix_relpaths_sorted(tmp_path: Path) -> None:
    root = tmp_path / "t"
    _make_tree(root)
    rels = [rel for rel, _, _ in walk_tree(str(root))]
    assert rels == ["a.txt", "b/c.txt", "b/d.txt"]


def test_walk_tree_follows_file_symlinks_and_skips_dangling_ones(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    target = tmp_path / "outside.txt"
    target.write_text("pointed to")
    (root / "link.txt").symlink_to(target)
    (root / "dangling").symlink_to(tmp_path / "nope")
    found = walk_tree(str(root))
    assert [rel for rel, _, _ in found] == ["link.txt"]
    linked = hash_file(found[0][1], want_sha256=False)
    assert linked.xxh == hash_bytes(b"pointed to")


def test_walk_tree_does_not_descend_directory_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "t"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f").write_text("x")
    (root / "loop").symlink_to(root)  # would recurse forever if followed
    assert [rel for rel, _, _ in walk_tree(str(root))] == ["sub/f"]


def test_walk_packed_orders_paths_as_one_global_sort_of_the_relative_paths(
    tmp_path: Path,
) -> None:
    """Each directory is sorted on its own with subdirectories keyed ``name/``; the result
    must still be the order of sorting every relative path at once, which tree objects and
    records rely on. Names around '/' (0x2f) are the ones that could go wrong."""
    root = tmp_path / "t"
    rels = ["a", "a.b/x", "a-b", "a0", "b/c/d", "b/c.d", "b/c-d/e", "b/c/d0", "b.c", "é/ü"]
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    walk = walk_packed(str(root))
    assert walk.names == sorted(rels)
    assert len(walk.stats) == STAT.size * len(rels)


def test_walk_packed_packs_each_stat_and_its_mode_and_settles_after_the_newest(
    tmp_path: Path,
) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    (root / "data").write_text("abc")
    os.utime(root / "data", ns=(0, 5_000_000_123))
    (root / "link").symlink_to("data")
    walk = walk_packed(str(root), confine=str(tmp_path), window=lambda m: 7)
    assert walk.names == ["data", "link", "run.sh"]
    assert [walk.mode(i) for i in range(3)] == ["f", "l", "x"]
    fields = list(STAT.iter_unpack(walk.stats))
    data = os.stat(root / "data")
    assert fields[0] == (data.st_ino, 3, 5_000_000_123, data.st_ctime_ns, ord("f"))
    link = os.lstat(root / "link")
    assert fields[1][:3] == (link.st_ino, link.st_size, link.st_mtime_ns)
    newest = max(f[2] for f in fields)
    assert walk.settled == newest + 7
    # a dep walk (no confine) follows the link: it is the file it points to
    dep = walk_packed(str(root))
    assert list(STAT.iter_unpack(dep.stats))[1][:2] == (data.st_ino, 3)


# ------------------------------------------------------------------ canonical JSON, keys


def test_canonical_json_sorts_keys_at_every_level_and_has_no_spaces() -> None:
    a = {"b": 1, "a": {"z": [1, 2], "y": None}}
    b = {"a": {"y": None, "z": [1, 2]}, "b": 1}
    assert canonical_json(a) == canonical_json(b)
    assert " " not in canonical_json(a)
    assert json.loads(canonical_json(a)) == a


def test_canonical_json_keeps_unicode_as_is() -> None:
    assert canonical_json({"name": "café"}) == '{"name":"café"}'


def test_canonical_json_keeps_list_order() -> None:
    assert canonical_json([2, 1]) != canonical_json([1, 2])


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8),
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
        max_size=8,
    )
)
def test_canonical_json_is_independent_of_insertion_order(value: dict[str, object]) -> None:
    reordered = dict(reversed(list(value.items())))
    assert canonical_json(value) == canonical_json(reordered)


def test_build_key_ignores_dict_ordering_at_every_level() -> None:
    one = {
        "cmd": ["python train.py"],
        "deps": {"a.csv": "xxh3-128:1", "b.csv": "xxh3-128:2"},
        "params": {"train": {"lr": 0.1, "epochs": 3}},
    }
    two = {
        "params": {"train": {"epochs": 3, "lr": 0.1}},
        "deps": {"b.csv": "xxh3-128:2", "a.csv": "xxh3-128:1"},
        "cmd": ["python train.py"],
    }
    assert build_key(one) == build_key(two)


def test_build_key_changes_with_any_component_value() -> None:
    base = {"params": {"lr": 0.1}, "deps": {"a": "xxh3-128:1"}}
    assert build_key(base) != build_key({"params": {"lr": 0.2}, "deps": {"a": "xxh3-128:1"}})
    assert build_key(base) != build_key({"params": {"lr": 0.1}, "deps": {"a": "xxh3-128:2"}})


def test_build_key_distinguishes_types_of_equal_looking_values() -> None:
    assert build_key({"p": {"x": 1}}) != build_key({"p": {"x": "1"}})
    assert build_key({"p": {"x": False}}) != build_key({"p": {"x": 0}})
    assert build_key({"p": {"x": None}}) != build_key({"p": {}})


def test_build_key_is_a_named_xxh3_digest() -> None:
    key = build_key({"cmd": ["true"]})
    algo, _, hexd = key.partition(":")
    assert algo == "xxh3-128"
    assert len(hexd) == 32
    int(hexd, 16)
