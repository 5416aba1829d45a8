"""Batched durability (atomic.SyncPoint): a build of many small targets syncs the
filesystem a few times instead of fsyncing each object, manifest, history line and
run-cache entry, and keeps the order that makes a crash safe: a run-cache entry is
written only after a sync that covers the objects and manifest it names, and the lock
file only after the last sync.

The page cache survives a kill -9, so what a killed build wrote is all there (the fault
suite kills builds at every step); these tests pin the order that a power loss needs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from mlbuild.store import atomic
from mlbuild.store.atomic import SyncPoint
from mlbuild.store.cache import Cache
from mlbuild.store.records import OutRecord
from tests.conftest import Project

N = 30


def _chain(n: int) -> str:
    lines = ["version: 1", "targets:"]
    for i in range(n):
        dep = f"out/t{i - 1}.txt" if i else "src.txt"
        lines += [
            f"  t{i}:",
            f'    cmd: "{{ cat {dep}; echo t{i}; }} > out/t{i}.txt"',
            f"    deps: [{dep}]",
            f"    outs: [out/t{i}.txt]",
        ]
    return "\n".join(lines) + "\n"


def _events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every fsync, filesystem sync and rename into place, in order."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace, real_sync = os.fsync, os.replace, atomic.sync_filesystem

    def fsync(fd: int) -> None:
        events.append(("fsync", ""))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        real_replace(src, dst)
        events.append(("replace", os.fspath(dst)))

    def sync(path: str) -> None:
        real_sync(path)
        events.append(("sync", path))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(atomic, "sync_filesystem", sync)
    return events


def test_a_build_of_small_targets_syncs_a_few_times_not_per_file(
    workspace: Callable[..., Project], monkeypatch: pytest.MonkeyPatch
) -> None:
    p = workspace(_chain(N), {"src.txt": "s\n", "out/.keep": ""})
    events = _events(monkeypatch)
    assert len(p.build("-j", "2").ran) == N
    fsyncs = sum(1 for kind, _ in events if kind == "fsync")
    syncs = [i for i, (kind, _) in enumerate(events) if kind == "sync"]
    # Before: 8 fsyncs per target (object, manifest, history line, run entry: each file
    # and its directory), 240 here. Now: the lock file and the memo, 2 each.
    assert fsyncs <= 6, fsyncs
    assert syncs, "nothing was made durable"
    [lock] = [i for i, (kind, dst) in enumerate(events) if dst.endswith("mlbuild.lock")]
    assert syncs[-1] < lock, "the lock file named what no sync had covered yet"


def test_each_run_entry_follows_a_sync_covering_its_objects_and_manifest(
    workspace: Callable[..., Project], monkeypatch: pytest.MonkeyPatch
) -> None:
    p = workspace(_chain(N), {"src.txt": "s\n", "out/.keep": ""})
    events = _events(monkeypatch)
    p.build("-j", "2")
    where = {dst: i for i, (kind, dst) in enumerate(events) if kind == "replace"}
    syncs = [i for i, (kind, _) in enumerate(events) if kind == "sync"]
    cache = Cache(str(p.path(".mlbuild/cache")))
    entries = [d for d in where if "/cache/runs/" in d]
    assert len(entries) == N
    for entry in entries:
        body = json.loads(Path(entry).read_text())
        named = [cache.object_path(o["xxh"]) for o in body["outs"]]
        mid = body["manifest"].split(":", 1)[1]
        named.append(str(p.path(f".mlbuild/manifests/{mid[:2]}/{mid[2:]}.json")))
        assert len(named) == 2, named
        newest = max(where[path] for path in named)
        assert any(newest < s < where[entry] for s in syncs), (entry, named)


def test_a_long_target_has_its_run_entry_written_before_the_next_target_starts(
    workspace: Callable[..., Project],
) -> None:
    """A kill -9 must not cost the re-run of a long target whose entry sat waiting for a
    batch: one that ran for `RUN_SYNC_S` or more is written (and synced) at once."""
    config = (
        "version: 1\ntargets:\n"
        "  long:\n    cmd: sleep 0.3 && echo done > a.txt\n    outs: [a.txt]\n"
        "  next:\n    cmd: find .mlbuild/cache/runs -name '*.json' | wc -l > b.txt\n"
        "    deps: [a.txt]\n    outs: [b.txt]\n"
    )
    p = workspace(config)
    p.build("-j", "1")
    assert p.read("b.txt").strip() == "1"


def test_a_waiting_run_entry_is_read_back_by_its_build_and_written_at_settle(
    tmp_path: Path,
) -> None:
    cache = Cache(str(tmp_path / "cache"))
    cache.sync_point = SyncPoint([str(tmp_path)])
    out = OutRecord("a.txt", "file", "xxh3-128:" + "0" * 32, None, 1)
    key = "xxh3-128:" + "1" * 32
    cache.put_run(key, "t", [out], None, ran_for=0.0)  # quick, and a sync just now
    assert not os.path.exists(cache.run_path(key))
    assert cache.get_run(key) == [out]  # the build that wrote it sees it
    cache.settle()
    assert os.path.exists(cache.run_path(key))
    assert Cache(str(tmp_path / "cache")).get_run(key) == [out]
    assert not cache.sync_point.dirty
