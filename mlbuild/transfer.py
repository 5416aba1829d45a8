"""Moving builds between the local cache and a remote (store/remote.py): pull and push.

Pull (by build key), every byte verified before use::

    runs/<key>.json ──▶ each out: file object (xxh3-128 of its name + the out's sha256)
                        or tree object + its files (each xxh3; the tree's xxh3 and sha256
                        recomputed from them) ──▶ manifest (id recomputed) + signature
                    ──▶ local run-cache entry, last

A corrupt, truncated or missing object raises `RemoteError` naming it; nothing of that
build is recorded locally, so the caller builds the target instead.

Push (by build key), the reverse order: objects, manifest and signature, then the run-cache
entry last; objects already on the remote are not sent again.

The objects of one out (the 100,000 files of a dataset directory) move in parallel, on
``jobs`` threads of the transfer (the I/O and the remote's round trips release the GIL),
and are made durable as a batch: a pull downloads and verifies them under temporary
names, then `Cache.adopt` renames them in with two filesystem syncs in all; a push to a
``file://`` remote does the same on the remote's side (`Remote.upload_many`). The order
that makes a transfer safe to kill is kept: every object before its tree, every tree
before the run-cache entry.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from .digest import FileDigest, hash_file, hash_tree
from .kinds import OutType
from .plural import counted
from .provenance.parse import parse_manifest
from .provenance.records import ManifestError
from .provenance.store import ManifestStore
from .store import Cache, OutRecord
from .store.atomic import atomic_write
from .store.records import RecordError, RunEntry, parse_run
from .store.remote import RefusedRecord, Remote, RemoteError, object_rel

__all__ = ["Transfer", "TransferStats"]

T = TypeVar("T")
R = TypeVar("R")
OBJECT_JOBS = 8  # object transfers at a time within one out: I/O and round trips overlap


@dataclass
class TransferStats:
    """What one pull or push moved (objects already present are not counted)."""

    builds: int = 0
    objects: int = 0
    bytes: int = 0
    manifests: int = 0

    def add(self, other: TransferStats) -> None:
        self.builds += other.builds
        self.objects += other.objects
        self.bytes += other.bytes
        self.manifests += other.manifests

    def describe(self) -> str:
        mib = self.bytes / 2**20
        return (
            f"{counted(self.builds, 'build')}, {counted(self.objects, 'object')} "
            f"({mib:.1f} MiB), {counted(self.manifests, 'manifest')}"
        )


class Transfer:
    """Pull and push builds between ``cache`` / ``manifests`` and ``remote``."""

    def __init__(
        self, cache: Cache, manifests: ManifestStore, remote: Remote, jobs: int = OBJECT_JOBS
    ) -> None:
        self.cache = cache
        self.manifests = manifests
        self.remote = remote
        self.jobs = jobs
        self._pool: ThreadPoolExecutor | None = None
        self.scratch = os.path.join(cache.dir, "tmp")
        self._lock = threading.Lock()
        self._sent: dict[str, threading.Event] = {}  # object uploads started (set: done)
        self._failed: set[str] = set()
        self._runs: dict[str, bytes] = {}  # run-cache entries read from the remote
        self.pulled = TransferStats()  # what came from the remote
        self.pushed = TransferStats()  # what went to it

    # ----------------------------------------------------------------- paths
    def _rel(self, local: str, base: str, prefix: str) -> str:
        return prefix + os.path.relpath(local, base).replace(os.sep, "/")

    def object_rel(self, digest: str) -> str:
        return object_rel(digest)

    def run_rel(self, key: str) -> str:
        return self._rel(self.cache.run_path(key), self.cache.dir, "")

    def manifest_rel(self, mid: str) -> str:
        return self._rel(self.manifests.path(mid), self.manifests.dir, "manifests/")

    def _count(self, stats: TransferStats, *, pushed: bool = False) -> None:
        with self._lock:
            (self.pushed if pushed else self.pulled).add(stats)

    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(x) for x in items]`` on the transfer's object threads; every call has
        finished when it returns, and the first error (in order) is raised. Several
        builds' transfers share the threads; ``fn`` never calls `_map` itself."""
        if len(items) < 2 or self.jobs < 2:
            return [fn(item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="mlbuild-transfer")
            pool = self._pool
        futures = [pool.submit(fn, item) for item in items]
        errors = [f.exception() for f in futures]  # waits for every one
        for error in errors:
            if error is not None:
                raise error
        return [f.result() for f in futures]

    # ----------------------------------------------------------------- pull
    def _run_bytes(self, key: str) -> bytes | None:
        """The remote's run-cache entry of ``key``, read once per transfer when present
        (a build asks when deciding, then again when restoring)."""
        with self._lock:
            if key in self._runs:
                return self._runs[key]
        data = self.remote.read(self.run_rel(key))
        if data is not None:
            with self._lock:
                self._runs[key] = data
        return data

    def remote_run(self, key: str, declared: Collection[str] | None = None) -> RunEntry | None:
        """The remote's run-cache entry for ``key`` (None: not there). An entry that fails
        the strict parser (records.parse_run; with ``declared``, one that lists anything
        but the target's declared outs) raises RefusedRecord naming it: it is never used."""
        data = self._run_bytes(key)
        if data is None:
            return None
        try:
            return parse_run(data, key, f"remote {self.run_rel(key)}", declared)
        except RecordError as exc:
            raise RefusedRecord(f"refused {exc.message}") from None

    def pull(self, key: str, declared: Collection[str] | None = None) -> RunEntry:
        """Fetch and verify the build ``key`` into the local cache; its entry last."""
        entry = self.remote_run(key, declared)
        data = self._run_bytes(key)
        if entry is None or data is None:
            raise RemoteError(f"the remote has no run-cache entry for {key}")
        stats = TransferStats(builds=1)
        for rec in entry.outs:
            self._pull_out(rec, stats)
        if entry.manifest is not None:
            self._pull_manifest(entry.manifest, stats)
        atomic_write(self.cache.run_path(key), data)
        self._count(stats)
        return entry

    def close(self) -> None:
        """Stop the object threads (a transfer used again starts new ones)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()

    def fetch_out(self, rec: OutRecord) -> None:
        """Bring one out's objects into the local cache, verified (a staged Dask job's outs)."""
        stats = TransferStats()
        self._pull_out(rec, stats)
        self._count(stats)

    def push_file(self, path: str, xxh: str) -> None:
        """Send one workspace file to the remote as the object ``xxh`` (a staged job's input),
        unless the remote has it. Returns only once the object is there."""
        stats = TransferStats()
        self._send([(xxh, path)], stats)
        self._count(stats, pushed=True)

    def _send(self, items: Sequence[tuple[str, str]], stats: TransferStats) -> None:
        """Upload each ``(xxh, path)`` as the object ``xxh`` unless the remote has it, once
        per transfer even when several threads need it (two builds sharing an object, two
        jobs sharing an input): objects whose upload another caller started are waited
        for, so what this caller commits next (a tree, a run-cache entry, a job) never
        precedes its objects."""
        mine: list[tuple[str, str, threading.Event]] = []
        theirs: list[tuple[str, threading.Event]] = []
        with self._lock:
            for xxh, path in dict(items).items():
                done = self._sent.get(xxh)
                if done is None:
                    done = self._sent[xxh] = threading.Event()
                    self._failed.discard(xxh)
                    mine.append((xxh, path, done))
                else:
                    theirs.append((xxh, done))
        try:
            self._upload([(xxh, path) for xxh, path, _ in mine], stats)
        except BaseException:
            with self._lock:
                for xxh, _, _ in mine:
                    self._failed.add(xxh)
                    self._sent.pop(xxh, None)  # a later caller may try again
            raise
        finally:
            for _, _, done in mine:
                done.set()
        for xxh, done in theirs:
            done.wait()
            if xxh in self._failed:
                raise RemoteError(f"uploading {self.object_rel(xxh)} failed in another thread")

    def _upload(self, items: Sequence[tuple[str, str]], stats: TransferStats) -> None:
        """The objects of ``items`` the remote lacks, verified, then uploaded together."""

        absent = set(self.remote.missing([self.object_rel(xxh) for xxh, _ in items], self._map))

        def needed(item: tuple[str, str]) -> tuple[str, str, int] | None:
            xxh, path = item
            rel = self.object_rel(xxh)
            if rel not in absent:
                return None
            got = hash_file(path, want_sha256=False)  # never upload unverified bytes
            if got.xxh != xxh:
                raise RemoteError(
                    f"not uploading {path}: its bytes hash to {got.xxh}, not to {xxh} "
                    "(changed since it was hashed, or a corrupt cache object: "
                    "see mlbuild cache verify)"
                )
            return path, rel, got.size

        todo = [t for t in self._map(needed, items) if t is not None]
        self.remote.upload_many([(path, rel) for path, rel, _ in todo], self._map)
        stats.objects += len(todo)
        stats.bytes += sum(size for _, _, size in todo)

    def _pull_out(self, rec: OutRecord, stats: TransferStats) -> None:
        if rec.type == OutType.FILE:
            self._pull_objects([(rec.xxh, rec.sha256, f"out {rec.path}")], stats)
            return
        self._pull_objects([(rec.xxh, None, f"tree of {rec.path}")], stats)
        try:
            tree = self.cache.read_tree(rec.xxh)  # checked: name, paths, order
        except RecordError as exc:
            raise RefusedRecord(f"refused the tree of {rec.path}: {exc.message}") from None
        got = self._pull_objects([(xxh, None, f"{rec.path}/{rel}") for rel, xxh, _ in tree], stats)
        # A link's object is its target text.
        entries = [(rel, got[xxh], mode) for rel, xxh, mode in tree]
        whole = hash_tree(entries)
        if whole.xxh != rec.xxh or whole.sha256 != rec.sha256:
            raise RemoteError(
                f"remote directory {rec.path} does not match its record "
                f"(sha256 {whole.sha256}, expected {rec.sha256})"
            )

    def _pull_objects(
        self, items: Sequence[tuple[str, str | None, str]], stats: TransferStats
    ) -> dict[str, FileDigest]:
        """Each ``(xxh, sha256 or None, what)`` into the local cache unless present and
        intact, downloaded and verified (xxh3, and sha256 when known) on the object
        threads, then put in place together (`Cache.adopt`). A local copy that does not
        hash to its name is dropped and fetched again. Returns every object's digest."""
        unique = list({xxh: (xxh, sha, what) for xxh, sha, what in items}.values())

        def local(item: tuple[str, str | None, str]) -> FileDigest | None:
            dest = self.cache.object_path(item[0])  # raises on anything but a checked digest
            try:
                digest = hash_file(dest, want_sha256=True)
            except FileNotFoundError:
                return None
            if digest.xxh == item[0]:
                return digest
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest)  # provably corrupt, and its path derives from checked hex
            return None

        found = dict(zip([x for x, _, _ in unique], self._map(local, unique), strict=True))
        missing = [item for item in unique if found[item[0]] is None]
        staged: list[tuple[str, str]] = []

        def fetch(item: tuple[str, str | None, str]) -> FileDigest:
            xxh, sha256, what = item
            rel = self.object_rel(xxh)
            tmp = self.cache.new_temp(xxh)
            with self._lock:
                staged.append((tmp, xxh))  # removed below if anything fails
            if not self.remote.download(rel, tmp):
                raise RemoteError(f"remote object {rel} ({what}) is missing")
            got = hash_file(tmp, want_sha256=True)
            if got.xxh != xxh or (sha256 is not None and got.sha256 != sha256):
                bad = got.xxh if got.xxh != xxh else got.sha256
                raise RemoteError(
                    f"remote object {rel} ({what}) is corrupt: its bytes hash to {bad}"
                )
            os.chmod(tmp, 0o444)  # shared by every build, never edited in place
            return got

        try:
            fetched = self._map(fetch, missing)
        except BaseException:
            for tmp, _ in staged:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            raise
        self.cache.adopt(staged)
        for item, digest in zip(missing, fetched, strict=True):
            found[item[0]] = digest
            stats.objects += 1
            stats.bytes += digest.size
        return {xxh: digest for xxh, digest in found.items() if digest is not None}

    def _pull_manifest(self, mid: str, stats: TransferStats) -> None:
        """The manifest of the pulled build (id recomputed) and its signature, if any."""
        if os.path.exists(self.manifests.path(mid)):
            return
        rel = self.manifest_rel(mid)
        data = self.remote.read(rel)
        if data is None:
            raise RemoteError(f"remote manifest {rel} is missing")
        try:
            parse_manifest(data, mid, f"remote {rel}")  # the strict manifest parser
        except ManifestError as exc:
            raise RefusedRecord(f"refused {exc.message}") from None
        sig = self.remote.read(rel[: -len(".json")] + ".sig.json")
        if sig is not None:
            atomic_write(self.manifests.sig_path(mid), sig)
        atomic_write(self.manifests.path(mid), data)
        stats.manifests += 1

    # ----------------------------------------------------------------- push
    def push(self, key: str) -> bool:
        """Upload the local build ``key``; False when the remote already has it."""
        run_rel = self.run_rel(key)
        if self.remote.exists(run_rel):
            return False
        entry = self.cache.read_run(key)  # strict: a corrupt entry raises RecordError
        if entry is None:
            raise RemoteError(f"no local run-cache entry for {key} to push")
        stats = TransferStats(builds=1)
        for rec in entry.outs:
            try:
                complete = self.cache.has_out(rec)
            except RecordError as exc:
                raise RemoteError(f"cannot push {rec.path}: {exc.message}") from None
            if not complete:
                raise RemoteError(
                    f"cannot push {rec.path}: its objects are not in the local cache, or "
                    "are corrupt (built with --no-cache? see mlbuild cache verify)"
                )
            if rec.type == OutType.DIR:  # its files first, then the tree naming them
                tree = self.cache.read_tree(rec.xxh)  # verified against its name
                self._send([(xxh, self.cache.object_path(xxh)) for _, xxh, _ in tree], stats)
            self._send([(rec.xxh, self.cache.object_path(rec.xxh))], stats)
        if entry.manifest is not None and os.path.exists(self.manifests.path(entry.manifest)):
            rel = self.manifest_rel(entry.manifest)
            sig = self.manifests.sig_path(entry.manifest)
            if os.path.exists(sig):
                self.remote.upload(sig, rel[: -len(".json")] + ".sig.json")
            self.remote.upload(self.manifests.path(entry.manifest), rel)
            stats.manifests += 1
        self.remote.upload(self.cache.run_path(key), run_rel)  # the commit point: last
        self._count(stats, pushed=True)
        return True
