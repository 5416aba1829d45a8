"""Push and pull order: the run-cache entry is the commit point, sent last and written
last, so an interrupted transfer never leaves an entry naming missing objects. The
remote here is a real file:// remote wrapped to record (or break) uploads."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from mlbuild.digest import hash_file, walk_tree
from mlbuild.provenance.records import Identity, build_manifest
from mlbuild.provenance.store import ManifestStore
from mlbuild.store import Cache, OutRecord
from mlbuild.store.remote import Remote, RemoteError
from mlbuild.transfer import Transfer


class RecordingRemote(Remote):
    """A file:// remote that records uploads and can fail the N-th one (a killed push)."""

    def __init__(self, url: str, fail_at: int | None = None) -> None:
        super().__init__(url)
        self.uploads: list[str] = []
        self.fail_at = fail_at
        self.lock = threading.Lock()

    def upload(self, local: str, rel: str) -> None:
        self._record(rel)
        super().upload(local, rel)

    def _stage_upload(self, local: str, rel: str) -> str:  # an object of a batch
        self._record(rel)
        return super()._stage_upload(local, rel)

    def _record(self, rel: str) -> None:
        with self.lock:
            if self.fail_at is not None and len(self.uploads) == self.fail_at:
                raise RemoteError(f"connection lost while uploading {rel}")
            self.uploads.append(rel)


def _build(tmp_path: Path) -> tuple[Cache, ManifestStore, str]:
    """A local cache with one build: a file out and a directory out of 3 files."""
    cache = Cache(str(tmp_path / "ws/.mlbuild/cache"))
    store = ManifestStore(str(tmp_path / "ws/.mlbuild/manifests"))
    ws = tmp_path / "ws"
    (ws / "d").mkdir(parents=True)
    (ws / "a.txt").write_text("alpha\n")
    for i in range(3):
        (ws / "d" / f"{i}.txt").write_text(f"part {i}\n")
    fd = hash_file(ws / "a.txt", want_sha256=True)
    cache.store_file(str(ws / "a.txt"), fd.xxh)
    entries = [
        (rel, hash_file(ws / "d" / rel, want_sha256=True), "f")
        for rel in sorted(p.name for p in (ws / "d").iterdir())
    ]
    tree = cache.store_tree(str(ws / "d"), entries)
    from mlbuild.digest import hash_tree

    whole = hash_tree(entries)
    assert whole.xxh == tree
    key = "xxh3-128:" + "ab" * 16
    outs = [
        {"path": "a.txt", "type": "file", "size": fd.size, "xxh3": fd.xxh, "sha256": fd.sha256},
        {"path": "d", "type": "dir", "size": whole.size, "xxh3": tree, "sha256": whole.sha256},
    ]
    identity = Identity("u", "h", "3.11", "linux", {"commit": None, "dirty": False})
    manifest = build_manifest(
        target="t:x",
        status="built",
        key=key,
        components={"cmd": None, "deps": {}, "params": {}, "code": {}, "env": {}},
        started=0.0,
        finished=1.0,
        identity=identity,
        deps=[],
        outs=outs,
        log_digest=None,
        env={},
    )
    mid = store.put(manifest)
    cache.put_run(
        key,
        "t:x",
        [
            OutRecord("a.txt", "file", fd.xxh, fd.sha256, fd.size),
            OutRecord("d", "dir", tree, whole.sha256, whole.size),
        ],
        mid,
    )
    return cache, store, key


def _spoil(remote: Path, data: bytes, bad: bytes) -> Path:
    """Overwrite the remote object holding ``data`` with ``bad`` (a corrupt remote)."""
    found = next(
        p for p in (remote / "objects").rglob("*") if p.is_file() and p.read_bytes() == data
    )
    found.chmod(0o644)
    found.write_bytes(bad)
    return found


def test_push_sends_objects_then_the_manifest_then_the_entry(tmp_path: Path) -> None:
    cache, store, key = _build(tmp_path)
    remote = RecordingRemote(str(tmp_path / "remote"))
    transfer = Transfer(cache, store, remote)
    assert transfer.push(key) is True
    kinds = [rel.split("/", 1)[0] for rel in remote.uploads]
    assert kinds == ["objects"] * 5 + ["manifests", "runs"]
    assert transfer.push(key) is False  # the remote has it: nothing sent again
    assert len(remote.uploads) == 7


@pytest.mark.parametrize("fail_at", range(7))
def test_an_interrupted_push_never_leaves_an_entry_naming_missing_objects(
    tmp_path: Path, fail_at: int
) -> None:
    cache, store, key = _build(tmp_path)
    url = str(tmp_path / "remote")
    with pytest.raises(RemoteError):
        Transfer(cache, store, RecordingRemote(url, fail_at=fail_at)).push(key)
    # A fresh workspace pulling from this remote finds no build, not a broken one.
    other = Cache(str(tmp_path / "other/cache"))
    pulled = Transfer(other, ManifestStore(str(tmp_path / "other/m")), Remote(url))
    assert pulled.remote_run(key) is None
    # Pushing again completes it, and then a pull gets every byte.
    Transfer(cache, store, RecordingRemote(url)).push(key)
    entry = pulled.pull(key)
    assert all(other.has_out(rec) for rec in entry.outs)
    assert not [p for p in walk_tree(str(tmp_path / "remote")) if ".tmp-" in p[0]]


def test_a_pull_that_fails_records_nothing_locally(tmp_path: Path) -> None:
    cache, store, key = _build(tmp_path)
    url = tmp_path / "remote"
    Transfer(cache, store, Remote(str(url))).push(key)
    part = _spoil(url, b"part 1\n", b"part X\n")
    other = Cache(str(tmp_path / "other/cache"))
    transfer = Transfer(other, ManifestStore(str(tmp_path / "other/m")), Remote(str(url)))
    with pytest.raises(RemoteError, match=r"\(d/1.txt\) is corrupt"):
        transfer.pull(key)
    assert other.read_run(key) is None
    corrupt = os.path.join(other.objects, os.path.relpath(part, url / "objects"))
    assert not os.path.exists(corrupt)


def test_a_second_push_of_a_shared_object_waits_for_the_first_upload(tmp_path: Path) -> None:
    """Two builds (or two staged jobs) needing one object: the one that finds its upload
    in flight returns only when it is on the remote."""
    import threading

    cache, store, key = _build(tmp_path)
    started, release = threading.Event(), threading.Event()

    class SlowRemote(Remote):
        def _stage_upload(self, local: str, rel: str) -> str:  # an object's upload
            started.set()
            release.wait(10)
            return super()._stage_upload(local, rel)

    remote = SlowRemote(str(tmp_path / "remote"))
    transfer = Transfer(cache, store, remote)
    path = tmp_path / "ws/a.txt"
    xxh = hash_file(path, want_sha256=False).xxh
    first = threading.Thread(target=transfer.push_file, args=(str(path), xxh))
    first.start()
    assert started.wait(10)
    returned = threading.Event()

    def push_then_flag() -> None:
        transfer.push_file(str(path), xxh)
        returned.set()

    second = threading.Thread(target=push_then_flag)
    second.start()
    assert not returned.wait(0.3)  # still uploading: the second caller must not go on
    release.set()
    first.join(10)
    second.join(10)
    assert returned.is_set()
    assert remote.exists(transfer.object_rel(xxh))
    assert transfer.pushed.objects == 1


def _wide(tmp_path: Path, n: int) -> tuple[Cache, ManifestStore, str]:
    """A local cache with one build whose out is a directory of ``n`` files."""
    from mlbuild.digest import hash_tree

    ws = tmp_path / "wide"
    (ws / "d").mkdir(parents=True)
    for i in range(n):
        (ws / "d" / f"{i:03d}.bin").write_text(f"file {i}\n")
    cache = Cache(str(ws / ".mlbuild/cache"))
    store = ManifestStore(str(ws / ".mlbuild/manifests"))
    entries = [
        (p.name, hash_file(p, want_sha256=True), "f") for p in sorted((ws / "d").iterdir())
    ]
    tree = cache.store_tree(str(ws / "d"), entries)
    whole = hash_tree(entries)
    key = "xxh3-128:" + "cd" * 16
    cache.put_run(key, "t:wide", [OutRecord("d", "dir", tree, whole.sha256, whole.size)])
    return cache, store, key


class ConcurrentRemote(Remote):
    """A file:// remote that measures how many object transfers overlap."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.lock = threading.Lock()
        self.now = self.most = 0

    def _busy(self) -> None:
        import time

        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.005)
        with self.lock:
            self.now -= 1

    def download(self, rel: str, local: str) -> bool:
        self._busy()
        return super().download(rel, local)

    def _stage_upload(self, local: str, rel: str) -> str:
        self._busy()
        return super()._stage_upload(local, rel)


def test_the_objects_of_one_out_move_in_parallel_and_durable_as_a_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlbuild.store import atomic

    cache, store, key = _wide(tmp_path, 60)
    syncs: list[str] = []
    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(atomic, "sync_filesystem", lambda path: syncs.append(path))
    def counting_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    remote = ConcurrentRemote(str(tmp_path / "remote"))
    assert Transfer(cache, store, remote).push(key)
    assert remote.most > 1, "the uploads of one out went one after another"
    pushed_syncs, pushed_fsyncs = len(syncs), len(fsyncs)
    assert pushed_fsyncs <= 4  # the run-cache entry, not one or two per object
    other = Cache(str(tmp_path / "other/cache"))
    remote.most = 0
    entry = Transfer(other, ManifestStore(str(tmp_path / "other/m")), remote).pull(key)
    assert remote.most > 1, "the downloads of one out went one after another"
    assert other.has_out(entry.outs[0])
    assert len(fsyncs) - pushed_fsyncs <= 4 and len(syncs) - pushed_syncs <= 4
    objects = [p for p in Path(other.objects).rglob("*") if p.is_file()]
    assert len(objects) == 61 and all(p.stat().st_mode & 0o777 == 0o444 for p in objects)


def test_a_corrupt_object_in_a_batch_leaves_nothing_of_the_batch(tmp_path: Path) -> None:
    cache, store, key = _wide(tmp_path, 40)
    url = tmp_path / "remote"
    Transfer(cache, store, Remote(str(url))).push(key)
    _spoil(url, b"file 17\n", b"file 71\n")
    other = Cache(str(tmp_path / "other/cache"))
    transfer = Transfer(other, ManifestStore(str(tmp_path / "other/m")), Remote(str(url)))
    with pytest.raises(RemoteError, match=r"\(d/017.bin\) is corrupt"):
        transfer.pull(key)
    left = [p for p in Path(other.objects).rglob("*") if p.is_file()]
    assert [p.name for p in left] == [next(iter(left)).name]  # the tree object alone
    assert other.read_run(key) is None
