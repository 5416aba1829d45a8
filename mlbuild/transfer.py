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
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Collection
from dataclasses import dataclass

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

    def __init__(self, cache: Cache, manifests: ManifestStore, remote: Remote) -> None:
        self.cache = cache
        self.manifests = manifests
        self.remote = remote
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

    def fetch_out(self, rec: OutRecord) -> None:
        """Bring one out's objects into the local cache, verified (a staged Dask job's outs)."""
        stats = TransferStats()
        self._pull_out(rec, stats)
        self._count(stats)

    def push_file(self, path: str, xxh: str) -> None:
        """Send one workspace file to the remote as the object ``xxh`` (a staged job's input),
        unless the remote has it. Returns only once the object is there."""
        stats = TransferStats()
        self._send_once(xxh, path, stats)
        self._count(stats, pushed=True)

    def _send_once(self, xxh: str, path: str, stats: TransferStats) -> None:
        """Upload ``path`` as the object ``xxh`` unless the remote has it, once per transfer
        even when several threads need it (two builds sharing an object, two jobs sharing
        an input): a caller that finds the upload in flight waits for it to finish, so
        what it commits next (a run-cache entry, a job) never precedes its object."""
        with self._lock:
            done = self._sent.get(xxh)
            mine = done is None
            if mine:
                done = self._sent[xxh] = threading.Event()
                self._failed.discard(xxh)
        assert done is not None
        if not mine:
            done.wait()
            if xxh in self._failed:
                raise RemoteError(f"uploading {self.object_rel(xxh)} failed in another thread")
            return
        try:
            rel = self.object_rel(xxh)
            if not self.remote.exists(rel):
                got = hash_file(path, want_sha256=False).xxh  # never upload unverified bytes
                if got != xxh:
                    raise RemoteError(
                        f"not uploading {path}: its bytes hash to {got}, not to {xxh} "
                        "(changed since it was hashed, or a corrupt cache object: "
                        "see mlbuild cache verify)"
                    )
                self.remote.upload(path, rel)
                stats.objects += 1
                stats.bytes += os.path.getsize(path)
        except BaseException:
            with self._lock:
                self._failed.add(xxh)
                del self._sent[xxh]  # a later caller may try again
            raise
        finally:
            done.set()

    def _pull_out(self, rec: OutRecord, stats: TransferStats) -> None:
        if rec.type == OutType.FILE:
            self._pull_object(rec.xxh, rec.sha256, stats, f"out {rec.path}")
            return
        self._pull_object(rec.xxh, None, stats, f"tree of {rec.path}")
        entries: list[tuple[str, FileDigest, str]] = []
        try:
            tree = self.cache.read_tree(rec.xxh)  # checked: name, paths, order
        except RecordError as exc:
            raise RefusedRecord(f"refused the tree of {rec.path}: {exc.message}") from None
        for rel, xxh, mode in tree:
            digest = self._pull_object(xxh, None, stats, f"{rec.path}/{rel}")
            entries.append((rel, digest, mode))  # a link's object is its target text
        whole = hash_tree(entries)
        if whole.xxh != rec.xxh or whole.sha256 != rec.sha256:
            raise RemoteError(
                f"remote directory {rec.path} does not match its record "
                f"(sha256 {whole.sha256}, expected {rec.sha256})"
            )

    def _pull_object(
        self, xxh: str, sha256: str | None, stats: TransferStats, what: str
    ) -> FileDigest:
        """Download one object unless present and intact; verify xxh3 (and sha256 when
        known). A local copy that does not hash to its name is dropped and fetched again."""
        dest = self.cache.object_path(xxh)  # raises on anything but a checked digest
        if os.path.exists(dest):
            local = hash_file(dest, want_sha256=True)
            if local.xxh == xxh:
                return local
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest)  # provably corrupt, and its path derives from checked hex
        rel = self.object_rel(xxh)
        verified: list[FileDigest] = []

        def fetch(tmp: str) -> None:
            if not self.remote.download(rel, tmp):
                raise RemoteError(f"remote object {rel} ({what}) is missing")
            got = hash_file(tmp, want_sha256=True)
            if got.xxh != xxh or (sha256 is not None and got.sha256 != sha256):
                bad = got.xxh if got.xxh != xxh else got.sha256
                raise RemoteError(
                    f"remote object {rel} ({what}) is corrupt: its bytes hash to {bad}"
                )
            verified.append(got)

        self.cache.add_object(xxh, fetch)
        stats.objects += 1
        stats.bytes += verified[0].size
        return verified[0]

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
            self._push_object(rec.xxh, stats)
            if rec.type == OutType.DIR:
                for _, xxh, _ in self.cache.read_tree(rec.xxh):  # verified against its name
                    self._push_object(xxh, stats)
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

    def _push_object(self, xxh: str, stats: TransferStats) -> None:
        self._send_once(xxh, self.cache.object_path(xxh), stats)
