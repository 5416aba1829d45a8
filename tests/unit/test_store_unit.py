"""Persistent state: atomic writes, the stat memo, the cache, the lock file, the ws lock."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mlbuild.digest import FileDigest, canonical_json, hash_bytes, hash_file, hash_tree, walk_tree
from mlbuild.errors import ConfigError, LockHeldError, MlbuildError
from mlbuild.store import Cache, LockEntry, LockFile, OutRecord, StateMemo, WorkspaceLock
from mlbuild.store import state as state_mod
from mlbuild.store.atomic import atomic_write

# --------------------------------------------------------------------------- atomic_write


def test_atomic_write_replaces_content_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "mlbuild.lock"
    path.write_bytes(b"old content that is longer")
    atomic_write(str(path), b"new")
    assert path.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["mlbuild.lock"]


def test_atomic_write_creates_missing_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "f.json"
    atomic_write(str(path), b"{}")
    assert path.read_bytes() == b"{}"


def test_atomic_write_applies_the_requested_mode(tmp_path: Path) -> None:
    path = tmp_path / "obj"
    atomic_write(str(path), b"x", mode=0o444)
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_failed_atomic_write_keeps_old_file_and_removes_temp(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"old")
    with pytest.raises(TypeError):
        atomic_write(str(path), "not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["state.json"]


# --------------------------------------------------------------------------- StateMemo


class HashCounter:
    """Counts real reads of file content by the memo."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        real = hash_file  # what mlbuild.store.state imports and calls

        def counting(path: Any, *, want_sha256: bool) -> FileDigest:
            self.calls.append(str(path))
            return real(path, want_sha256=want_sha256)

        monkeypatch.setattr(state_mod, "hash_file", counting)


def _age(path: Path, seconds: float) -> int:
    mtime_ns = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return mtime_ns


def test_memo_rehashes_same_size_rewrite_with_same_mtime_inside_racy_window(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"aaaa")
    memo = StateMemo(str(tmp_path), None)
    first = memo.file_digest("data.csv")
    mtime_ns = path.stat().st_mtime_ns
    # Same size, same mtime: stat (apart from maybe ctime) cannot tell the files apart.
    path.write_bytes(b"bbbb")
    os.utime(path, ns=(mtime_ns, mtime_ns))
    second = memo.file_digest("data.csv")
    assert first.xxh == hash_bytes(b"aaaa")
    assert second.xxh == hash_bytes(b"bbbb")


class _CoarseStat:
    """``os`` as seen on a filesystem with 1-second timestamps (ext3, HFS+, some NFS)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def stat(path: Any) -> Any:
        st = os.stat(path)
        second = 1_000_000_000
        return SimpleNamespace(
            st_ino=st.st_ino,
            st_size=st.st_size,
            st_mode=st.st_mode,
            st_mtime_ns=st.st_mtime_ns // second * second,
            st_ctime_ns=st.st_ctime_ns // second * second,
        )


def test_memo_detects_same_size_rewrite_on_a_coarse_timestamp_filesystem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Within one timestamp tick, stat cannot tell the two versions apart; only the racy
    # rule (an entry hashed too soon after its mtime is not trusted) catches the change.
    monkeypatch.setattr(state_mod, "os", _CoarseStat())
    path = tmp_path / "data.csv"
    path.write_bytes(b"aaaa")
    memo = StateMemo(str(tmp_path), None)
    assert memo.file_digest("data.csv").xxh == hash_bytes(b"aaaa")
    path.write_bytes(b"bbbb")
    assert memo.file_digest("data.csv").xxh == hash_bytes(b"bbbb")


def test_memo_entry_recorded_within_racy_window_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "f").write_bytes(b"fresh")
    memo = StateMemo(str(tmp_path), None)
    counter = HashCounter(monkeypatch)
    memo.file_digest("f")
    memo.file_digest("f")
    assert len(counter.calls) == 2


def test_memo_trusts_an_old_unchanged_file_without_rereading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"settled")
    _age(path, 10)
    memo = StateMemo(str(tmp_path), None)
    counter = HashCounter(monkeypatch)
    first = memo.file_digest("f")
    second = memo.file_digest("f")
    assert first == second
    assert first.xxh == hash_bytes(b"settled")
    assert len(counter.calls) == 1


def test_memo_detects_size_change_of_an_old_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"one")
    mtime = _age(path, 10)
    memo = StateMemo(str(tmp_path), None)
    memo.file_digest("f")
    path.write_bytes(b"three")
    os.utime(path, ns=(mtime, mtime))
    assert memo.file_digest("f").xxh == hash_bytes(b"three")


def test_memo_detects_same_size_same_mtime_rewrite_of_an_old_file_by_ctime(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"aaaa")
    mtime = _age(path, 10)
    memo = StateMemo(str(tmp_path), None)
    memo.file_digest("f")
    time.sleep(0.05)  # coarser than any kernel's ctime granularity
    path.write_bytes(b"bbbb")
    os.utime(path, ns=(mtime, mtime))
    assert memo.file_digest("f").xxh == hash_bytes(b"bbbb")


def test_memo_detects_a_file_replaced_by_rename(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"aaaa")
    mtime = _age(path, 10)
    memo = StateMemo(str(tmp_path), None)
    memo.file_digest("f")
    other = tmp_path / "g"
    other.write_bytes(b"bbbb")
    os.utime(other, ns=(mtime, mtime))
    os.replace(other, path)
    assert memo.file_digest("f").xxh == hash_bytes(b"bbbb")


def test_memo_hashes_sha256_when_an_entry_only_has_xxh3(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"out")
    _age(path, 10)
    memo = StateMemo(str(tmp_path), None)
    assert memo.file_digest("f").sha256 is None
    full = memo.file_digest("f", want_sha256=True)
    assert full == hash_file(path, want_sha256=True)


def test_memo_persists_across_save_and_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"persisted")
    _age(path, 10)
    state_file = tmp_path / ".mlbuild" / "state.json"
    memo = StateMemo(str(tmp_path), str(state_file))
    digest = memo.file_digest("f", want_sha256=True)
    memo.save()
    assert state_file.exists()

    counter = HashCounter(monkeypatch)
    again = StateMemo(str(tmp_path), str(state_file))
    assert again.file_digest("f", want_sha256=True) == digest
    assert counter.calls == []


def test_memo_save_without_changes_does_not_write(tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    StateMemo(str(tmp_path), str(state_file)).save()
    assert not state_file.exists()


@pytest.mark.parametrize("content", [b"not json", b'{"version": 999, "files": {"f": [1]}}'])
def test_memo_discards_corrupt_or_foreign_state_file(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "f").write_bytes(b"x")
    state_file = tmp_path / "state.json"
    state_file.write_bytes(content)
    memo = StateMemo(str(tmp_path), str(state_file))
    assert memo.files == {}
    assert memo.file_digest("f").xxh == hash_bytes(b"x")


def test_memo_digest_of_directory_equals_tree_digest(tmp_path: Path) -> None:
    d = tmp_path / "out"
    (d / "sub").mkdir(parents=True)
    (d / "a").write_bytes(b"1")
    (d / "sub" / "b").write_bytes(b"2")
    memo = StateMemo(str(tmp_path), None)
    digest, is_dir = memo.digest("out", want_sha256=True)
    expected = hash_tree(
        [(rel, hash_file(full, want_sha256=True), ex) for rel, full, ex in walk_tree(str(d))]
    )
    assert is_dir is True
    assert digest == expected


def test_memo_remembered_digest_is_used_without_rereading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"restored")
    _age(path, 10)
    memo = StateMemo(str(tmp_path), None)
    known = hash_file(path, want_sha256=True)
    counter = HashCounter(monkeypatch)
    memo.remember("f", known)
    assert memo.file_digest("f", want_sha256=True) == known
    assert counter.calls == []


# --------------------------------------------------------------------------- Cache: objects


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(str(tmp_path / ".mlbuild" / "cache"))


def _store_file(cache: Cache, path: Path) -> OutRecord:
    d = hash_file(path, want_sha256=True)
    cache.store_file(str(path), d.xxh)
    executable = bool(path.stat().st_mode & stat.S_IXUSR)
    return OutRecord(path.name, "file", d.xxh, d.sha256, d.size, executable)


def _store_dir(cache: Cache, root: Path, rel: str) -> OutRecord:
    entries = [(r, hash_file(full, want_sha256=True), ex) for r, full, ex in walk_tree(str(root))]
    digest = hash_tree(entries)
    tree = cache.store_tree(str(root), entries)
    assert tree == digest.xxh
    return OutRecord(rel, "dir", digest.xxh, digest.sha256, digest.size)


def test_stored_file_restores_with_identical_bytes_as_a_copy(tmp_path: Path, cache: Cache) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights" * 1000)
    rec = _store_file(cache, src)
    assert cache.has(rec.xxh)
    dest = tmp_path / "restored" / "model.bin"
    cache.restore_out(rec, str(dest))
    assert dest.read_bytes() == src.read_bytes()
    obj = Path(cache.object_path(rec.xxh))
    assert dest.stat().st_ino != obj.stat().st_ino
    assert dest.stat().st_nlink == 1
    # Editing the workspace copy never corrupts the cache object.
    dest.write_bytes(b"edited")
    assert hash_file(obj, want_sha256=False).xxh == rec.xxh


def test_cache_objects_are_read_only(tmp_path: Path, cache: Cache) -> None:
    src = tmp_path / "x"
    src.write_bytes(b"x")
    rec = _store_file(cache, src)
    mode = stat.S_IMODE(os.stat(cache.object_path(rec.xxh)).st_mode)
    assert mode & 0o222 == 0


def test_object_path_is_sharded_by_first_two_hex_digits(cache: Cache) -> None:
    digest = hash_bytes(b"abc")
    hexd = digest.split(":", 1)[1]
    path = Path(cache.object_path(digest))
    assert path.name == hexd[2:]
    assert path.parent.name == hexd[:2]


def test_restore_keeps_the_executable_bit(tmp_path: Path, cache: Cache) -> None:
    src = tmp_path / "run.sh"
    src.write_bytes(b"#!/bin/sh\n")
    src.chmod(0o755)
    rec = _store_file(cache, src)
    assert rec.executable
    dest = tmp_path / "out" / "run.sh"
    cache.restore_out(rec, str(dest))
    assert dest.stat().st_mode & stat.S_IXUSR


def test_restore_replaces_an_existing_file(tmp_path: Path, cache: Cache) -> None:
    src = tmp_path / "a"
    src.write_bytes(b"cached")
    rec = _store_file(cache, src)
    dest = tmp_path / "ws" / "a"
    dest.parent.mkdir()
    dest.write_bytes(b"stale workspace copy")
    cache.restore_out(rec, str(dest))
    assert dest.read_bytes() == b"cached"
    assert sorted(os.listdir(dest.parent)) == ["a"]


def test_directory_round_trips_through_a_tree_object(tmp_path: Path, cache: Cache) -> None:
    src = tmp_path / "features"
    (src / "part").mkdir(parents=True)
    (src / "a.csv").write_bytes(b"a,b\n1,2\n")
    (src / "part" / "b.csv").write_bytes(b"c\n3\n")
    (src / "tool").write_bytes(b"#!/bin/sh\n")
    (src / "tool").chmod(0o755)
    rec = _store_dir(cache, src, "features")
    assert cache.has_out(rec)

    dest = tmp_path / "ws" / "features"
    cache.restore_out(rec, str(dest))
    restored = {rel: Path(full).read_bytes() for rel, full, _ in walk_tree(str(dest))}
    assert restored == {"a.csv": b"a,b\n1,2\n", "part/b.csv": b"c\n3\n", "tool": b"#!/bin/sh\n"}
    assert os.stat(dest / "tool").st_mode & stat.S_IXUSR
    assert not os.stat(dest / "a.csv").st_mode & stat.S_IXUSR
    again = hash_tree(
        [(r, hash_file(full, want_sha256=True), ex) for r, full, ex in walk_tree(str(dest))]
    )
    assert again.xxh == rec.xxh
    for rel, full, _ in walk_tree(str(dest)):
        obj = cache.object_path(hash_file(full, want_sha256=False).xxh)
        assert os.stat(full).st_ino != os.stat(obj).st_ino, rel


def test_tree_object_is_the_canonical_sorted_listing(tmp_path: Path, cache: Cache) -> None:
    src = tmp_path / "d"
    src.mkdir()
    (src / "b").write_bytes(b"2")
    (src / "a").write_bytes(b"1")
    rec = _store_dir(cache, src, "d")
    body = json.loads(Path(cache.object_path(rec.xxh)).read_bytes())
    assert body == [["a", hash_bytes(b"1"), "f"], ["b", hash_bytes(b"2"), "f"]]


def test_empty_directory_out_round_trips(tmp_path: Path, cache: Cache) -> None:
    src = tmp_path / "empty"
    src.mkdir()
    rec = _store_dir(cache, src, "empty")
    dest = tmp_path / "ws" / "empty"
    cache.restore_out(rec, str(dest))
    assert dest.is_dir()
    assert os.listdir(dest) == []


def test_restore_directory_replaces_existing_contents(tmp_path: Path, cache: Cache) -> None:
    src = tmp_path / "d"
    src.mkdir()
    (src / "keep").write_bytes(b"k")
    rec = _store_dir(cache, src, "d")
    dest = tmp_path / "ws" / "d"
    dest.mkdir(parents=True)
    (dest / "leftover").write_bytes(b"old")
    cache.restore_out(rec, str(dest))
    assert sorted(os.listdir(dest)) == ["keep"]
    assert sorted(os.listdir(dest.parent)) == ["d"]


def test_has_out_is_false_when_a_tree_member_object_is_missing(
    tmp_path: Path, cache: Cache
) -> None:
    src = tmp_path / "d"
    src.mkdir()
    (src / "x").write_bytes(b"member")
    rec = _store_dir(cache, src, "d")
    obj = cache.object_path(hash_bytes(b"member"))
    os.chmod(obj, 0o644)
    os.unlink(obj)
    assert not cache.has_out(rec)


def _evil_tree(cache: Cache, rel: str) -> OutRecord:
    """A tree object (as a hostile remote could serve it) naming ``rel``."""
    payload = b"pwned"
    blob = hash_bytes(payload)
    obj = Path(cache.object_path(blob))
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_bytes(payload)
    body = canonical_json([["ok.txt", blob, "f"], [rel, blob, "f"]]).encode()
    tree = hash_bytes(body)
    atomic_write(cache.object_path(tree), body)
    return OutRecord("d", "dir", tree, None, 10)


@pytest.mark.parametrize("rel", ["../evil", "sub/../../evil", "/ABS/evil", "a/./b", "a//b", ""])
def test_tree_entry_escaping_its_directory_is_refused_and_writes_nothing(
    tmp_path: Path, cache: Cache, rel: str
) -> None:
    rel = rel.replace("/ABS", str(tmp_path))
    rec = _evil_tree(cache, rel)
    ws = tmp_path / "ws"
    ws.mkdir()
    dest = ws / "d"
    with pytest.raises(MlbuildError):
        cache.restore_out(rec, str(dest))
    assert not (tmp_path / "evil").exists()
    assert not (ws / "evil").exists()
    assert os.listdir(ws) == []  # no half-restored directory or temp dir left behind


def test_refused_tree_keeps_the_existing_workspace_copy(tmp_path: Path, cache: Cache) -> None:
    rec = _evil_tree(cache, "../evil")
    dest = tmp_path / "ws" / "d"
    dest.mkdir(parents=True)
    (dest / "mine").write_bytes(b"precious")
    with pytest.raises(MlbuildError):
        cache.restore_out(rec, str(dest))
    assert (dest / "mine").read_bytes() == b"precious"


# --------------------------------------------------------------------------- Cache: run cache


def test_run_cache_round_trips_out_records(cache: Cache) -> None:
    key = hash_bytes(b"key-1")
    outs = [
        OutRecord("models/a.joblib", "file", hash_bytes(b"a"), "sha256:" + "0" * 64, 1, True),
        OutRecord("data", "dir", hash_bytes(b"[]"), None, 0),
    ]
    cache.put_run(key, "model:a", outs)
    assert cache.get_run(key) == outs


def test_run_cache_miss_is_none(cache: Cache) -> None:
    assert cache.get_run(hash_bytes(b"never built")) is None


def test_corrupt_run_cache_entry_is_a_miss(cache: Cache) -> None:
    key = hash_bytes(b"k")
    cache.put_run(key, "t", [])
    Path(cache.run_path(key)).write_bytes(b"{truncated")
    assert cache.get_run(key) is None


def test_run_cache_entry_recorded_for_another_key_is_a_miss(cache: Cache) -> None:
    key, other = hash_bytes(b"k1"), hash_bytes(b"k2")
    cache.put_run(key, "t", [])
    os.makedirs(os.path.dirname(cache.run_path(other)), exist_ok=True)
    os.replace(cache.run_path(key), cache.run_path(other))
    assert cache.get_run(other) is None


# --------------------------------------------------------------------------- LockFile


def _entry(key: bytes, comps: dict[str, Any]) -> LockEntry:
    return LockEntry(
        key=hash_bytes(key),
        components=comps,
        outs=(OutRecord("o", "file", hash_bytes(b"o"), "sha256:" + "1" * 64, 1),),
    )


def test_lock_file_render_does_not_depend_on_insertion_order(tmp_path: Path) -> None:
    one = LockFile(str(tmp_path / "one.lock"))
    two = LockFile(str(tmp_path / "two.lock"))
    comps_a = {"params": {"lr": 0.1, "epochs": 3}, "cmd": ["x"]}
    comps_b = {"cmd": ["x"], "params": {"epochs": 3, "lr": 0.1}}
    one.record("model:b", _entry(b"b", comps_a))
    one.record("data:a", _entry(b"a", comps_a))
    two.record("data:a", _entry(b"a", comps_b))
    two.record("model:b", _entry(b"b", comps_b))
    assert one.render() == two.render()


def test_lock_file_holds_no_timestamps_hosts_or_users(tmp_path: Path) -> None:
    lock = LockFile(str(tmp_path / "mlbuild.lock"))
    lock.record("t", _entry(b"t", {"cmd": ["x"]}))
    first = lock.render()
    time.sleep(0.01)
    assert lock.render() == first
    doc = json.loads(first)
    assert set(doc) == {"version", "targets"}
    assert set(doc["targets"]["t"]) == {"key", "components", "outs"}
    assert set(doc["targets"]["t"]["outs"][0]) == {
        "path",
        "type",
        "xxh",
        "sha256",
        "size",
        "executable",
    }


def test_lock_file_is_diff_friendly_text_ending_in_newline(tmp_path: Path) -> None:
    lock = LockFile(str(tmp_path / "mlbuild.lock"))
    lock.record("t", _entry(b"t", {"cmd": ["x"]}))
    text = lock.render().decode()
    assert text.endswith("}\n")
    assert len(text.splitlines()) > 5


def test_lock_file_save_and_reload_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "mlbuild.lock"
    lock = LockFile(str(path))
    lock.record("t", _entry(b"t", {"cmd": ["x"], "params": {"p": None}}))
    lock.save()
    again = LockFile(str(path))
    assert again.entries == lock.entries
    assert again.render() == path.read_bytes()


def test_lock_file_save_without_change_does_not_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "mlbuild.lock"
    lock = LockFile(str(path))
    lock.record("t", _entry(b"t", {}))
    lock.save()
    inode = path.stat().st_ino
    again = LockFile(str(path))
    again.record("t", _entry(b"t", {}))  # a no-op build records the same entry again
    again.save()
    assert path.stat().st_ino == inode


def test_lock_file_with_nothing_recorded_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "mlbuild.lock"
    LockFile(str(path)).save()
    assert not path.exists()


def test_lock_file_rerecorded_with_a_new_key_is_saved(tmp_path: Path) -> None:
    path = tmp_path / "mlbuild.lock"
    lock = LockFile(str(path))
    lock.record("t", _entry(b"old", {}))
    lock.save()
    again = LockFile(str(path))
    again.record("t", _entry(b"new", {}))
    again.save()
    assert LockFile(str(path)).entries["t"].key == hash_bytes(b"new")


def test_corrupt_lock_file_is_a_config_error_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "mlbuild.lock"
    path.write_text('{"version": 1, "targets": {"t": {"key": "x"}}}')
    with pytest.raises(ConfigError) as info:
        LockFile(str(path))
    assert "mlbuild.lock" in str(info.value)


def test_lock_file_of_another_version_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "mlbuild.lock"
    path.write_text('{"version": 0, "targets": {"t": {}}}')
    assert LockFile(str(path)).entries == {}


# --------------------------------------------------------------------------- WorkspaceLock


def test_second_lock_without_wait_raises_lock_held(tmp_path: Path) -> None:
    path = str(tmp_path / ".mlbuild" / "lock")
    with WorkspaceLock(path, wait=False):
        with pytest.raises(LockHeldError) as info, WorkspaceLock(path, wait=False):
            pass
        assert info.value.exit_code == 5
    # Released on exit: it can be taken again.
    with WorkspaceLock(path, wait=False):
        pass


def test_lock_held_by_another_process_is_reported_and_freed_when_it_dies(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / ".mlbuild" / "lock")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from mlbuild.store import WorkspaceLock\n"
            f"l = WorkspaceLock({path!r}, wait=False).__enter__()\n"
            "print('locked', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockHeldError), WorkspaceLock(path, wait=False):
            pass
    finally:
        holder.kill()  # like kill -9: the kernel drops the flock
        holder.wait()
    with WorkspaceLock(path, wait=False):
        pass


def test_waiting_lock_is_acquired_once_the_holder_releases(tmp_path: Path) -> None:
    path = str(tmp_path / ".mlbuild" / "lock")
    acquired = threading.Event()

    def second() -> None:
        with WorkspaceLock(path, wait=True):
            acquired.set()

    with WorkspaceLock(path, wait=False):
        thread = threading.Thread(target=second)
        thread.start()
        assert not acquired.wait(0.2)
    thread.join(5)
    assert acquired.is_set()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff\xfe not utf-8",
        b'{"pid": "4242", "since": 1}',
        b'{"pid": true, "since": 1}',
        b'{"pid": 4242}',
        b'{"pid": 4242, "since": "soon"}',
        b'{"pid": 4242, "since": 1e400}',
        b"[1, 2]",
        b'{"pid": 42',
    ],
)
def test_a_hostile_lock_holder_record_only_makes_the_message_vaguer(
    tmp_path: Path, content: bytes
) -> None:
    """The holder's pid/since in .mlbuild/lock is read for a message only: whatever the file
    holds, the waiter says "another mlbuild" and --no-wait still exits 5, never crashes."""
    from mlbuild.store.wslock import holder_text

    path = tmp_path / ".mlbuild" / "lock"
    path.parent.mkdir()
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert holder_text(fd) is None
    finally:
        os.close(fd)
    with WorkspaceLock(str(path), wait=True):
        path.write_bytes(content)  # the holder's record replaced by the hostile bytes
        # flock belongs to an open file: a second open in this process is refused as another
        # mlbuild would be
        with pytest.raises(LockHeldError) as info, WorkspaceLock(str(path), wait=False):
            pass
        assert str(info.value).startswith("another mlbuild is running in this workspace")
        assert "PID" not in str(info.value)
