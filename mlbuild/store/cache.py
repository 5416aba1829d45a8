"""The local cache: content-addressed objects and the run cache.

Layout under ``.mlbuild/cache/`` (version 1)::

    objects/ab/cdef…          file bytes, addressed by their xxh3-128 hex (read-only, 0444)
    objects/ab/cdef…          a tree object: canonical JSON ``[[relpath, xxh3, "f"|"x"], …]``
                              whose own xxh3-128 is the directory's digest
    runs/ab/cdef….json        run-cache entry: ``{"version", "target", "key", "outs": [...]}``

A run-cache entry is written only after every object it names is stored (objects first,
then the key), so an entry never points to a missing object, even after a kill -9.
Workspace copies are reflinks where the filesystem can, else real copies: never hardlinks,
so editing a workspace file can never corrupt the cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..digest import FileDigest, canonical_json, hash_bytes, hash_file
from ..errors import MlbuildError
from .atomic import atomic_write, fsync_dir

CACHE_VERSION = 1
_FICLONE = 0x40049409


@dataclass(frozen=True)
class OutRecord:
    """What was recorded about one declared out: enough to verify and restore it."""

    path: str
    type: str  # "file" or "dir"
    xxh: str
    sha256: str | None
    size: int
    executable: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OutRecord:
        return cls(
            path=data["path"],
            type=data["type"],
            xxh=data["xxh"],
            sha256=data.get("sha256"),
            size=int(data["size"]),
            executable=bool(data.get("executable", False)),
        )


@dataclass(frozen=True)
class RunEntry:
    """A run-cache entry: the outs a build key produced and that build's manifest id."""

    outs: list[OutRecord]
    manifest: str | None


def clone_file(src: str, dst: str) -> None:
    """Copy ``src`` to ``dst`` as a reflink when the filesystem supports it, else copy.

    Never a hardlink: the workspace copy and the cache object must not share an inode.
    """
    try:
        import fcntl

        with open(src, "rb") as fin, open(dst, "wb") as fout:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
        return
    except (OSError, ImportError):
        pass
    shutil.copyfile(src, dst)  # uses the kernel's sendfile/copy_file_range on Linux


def check_tree_path(rel: str) -> None:
    """A tree entry must stay inside its directory (no absolute paths, no ``..``)."""
    parts = rel.split("/")
    if rel.startswith("/") or not rel or any(p in ("", ".", "..") for p in parts):
        raise MlbuildError(f"refusing to restore tree entry {rel!r}: it would leave its directory")


class Cache:
    """Objects + run cache under one directory."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        self.objects = os.path.join(directory, "objects")
        self.runs = os.path.join(directory, "runs")

    # -- objects ---------------------------------------------------------------------
    def object_path(self, digest: str) -> str:
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.objects, hexd[:2], hexd[2:])

    def has(self, digest: str) -> bool:
        return os.path.exists(self.object_path(digest))

    def store_file(self, src: str, digest: str) -> None:
        """Copy ``src`` into the object store under ``digest`` (no-op if already there)."""
        if not os.path.exists(self.object_path(digest)):
            self.add_object(digest, lambda tmp: clone_file(src, tmp))

    def add_object(self, digest: str, fill: Callable[[str], None]) -> None:
        """Put an object in place: ``fill(tmp)`` writes (and may verify, raising) a
        temporary file beside it, which is then fsynced, made read-only and renamed into
        place; on any error nothing is left behind."""
        dest = self.object_path(digest)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".tmp-")
        os.close(fd)
        try:
            fill(tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        fsync_dir(os.path.dirname(dest))

    def store_tree(self, full: str, entries: list[tuple[str, FileDigest, bool]]) -> str:
        """Store every file of a directory and its tree object; returns the tree digest."""
        for rel, digest, _ in entries:
            self.store_file(os.path.join(full, rel), digest.xxh)
        ordered = sorted(entries, key=lambda e: e[0])  # the same order as digest.hash_tree
        body = canonical_json([[rel, d.xxh, "x" if ex else "f"] for rel, d, ex in ordered]).encode()
        tree_digest = hash_bytes(body)
        dest = self.object_path(tree_digest)
        if not os.path.exists(dest):
            atomic_write(dest, body, mode=0o444)
        return tree_digest

    def read_tree(self, digest: str) -> list[tuple[str, str, bool]]:
        with open(self.object_path(digest), "rb") as f:
            raw = json.loads(f.read())
        return [(rel, xxh, mode == "x") for rel, xxh, mode in raw]

    def has_out(self, rec: OutRecord) -> bool:
        """True when every object needed to restore ``rec`` is in the store."""
        if rec.type == "file":
            return self.has(rec.xxh)
        if not self.has(rec.xxh):
            return False
        try:
            return all(self.has(xxh) for _, xxh, _ in self.read_tree(rec.xxh))
        except (OSError, ValueError):
            return False

    def restore_out(self, rec: OutRecord, dest: str) -> None:
        """Materialize ``rec`` at ``dest`` atomically (temp next to it, then rename)."""
        parent = os.path.dirname(dest)
        os.makedirs(parent, exist_ok=True)
        if rec.type == "file":
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=".mlbuild-restore-")
            os.close(fd)
            try:
                clone_file(self.object_path(rec.xxh), tmp)
                self._check_copy(tmp, rec.xxh)
                os.chmod(tmp, 0o755 if rec.executable else 0o644)
                _remove(dest)
                os.replace(tmp, dest)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
            return
        tmpdir = tempfile.mkdtemp(dir=parent, prefix=".mlbuild-restore-")
        try:
            for rel, xxh, executable in self.read_tree(rec.xxh):
                check_tree_path(rel)
                target = os.path.join(tmpdir, *rel.split("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                clone_file(self.object_path(xxh), target)
                self._check_copy(target, xxh)
                os.chmod(target, 0o755 if executable else 0o644)
            _remove(dest)
            os.replace(tmpdir, dest)
        except BaseException:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise

    def _check_copy(self, path: str, xxh: str) -> None:
        """A restored copy must hash to its object's name (xxh3 reads at ~30 GiB/s from
        the page cache): a corrupt cache object never reaches the workspace, and is
        dropped (the run-cache entry naming it then fails has_out: not restorable)."""
        got = hash_file(path, want_sha256=False).xxh
        if got != xxh:
            # Provably bad: drop it, so that the build that runs instead stores a good copy.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.object_path(xxh))
            raise MlbuildError(
                f"cache object {os.path.relpath(self.object_path(xxh), self.dir)} is corrupt "
                f"(its bytes hash to {got})",
                hint="dropped; mlbuild cache verify checks the rest",
            )

    # -- run cache -------------------------------------------------------------------
    def run_path(self, key: str) -> str:
        hexd = key.split(":", 1)[1]
        return os.path.join(self.runs, hexd[:2], hexd[2:] + ".json")

    def read_run(self, key: str) -> RunEntry | None:
        """The run-cache entry of ``key``, if there is a valid one."""
        try:
            with open(self.run_path(key), "rb") as f:
                return parse_run(f.read(), key)
        except FileNotFoundError:
            return None

    def run_manifest(self, key: str) -> str | None:
        """The id of the manifest of the build that made the run-cache entry ``key``."""
        entry = self.read_run(key)
        return None if entry is None else entry.manifest

    def get_run(self, key: str) -> list[OutRecord] | None:
        entry = self.read_run(key)
        return None if entry is None else entry.outs

    def put_run(
        self, key: str, target: str, outs: list[OutRecord], manifest: str | None = None
    ) -> None:
        body = {
            "version": CACHE_VERSION,
            "key": key,
            "target": target,
            "outs": [o.to_json() for o in outs],
            "manifest": manifest,
        }
        atomic_write(self.run_path(key), canonical_json(body).encode())


def parse_run(raw: bytes, key: str) -> RunEntry | None:
    """A run-cache entry's bytes (local or remote) → RunEntry; None if unusable."""
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            return None
        if data.get("version") != CACHE_VERSION or data.get("key") != key:
            return None
        manifest = data.get("manifest")
        return RunEntry(
            outs=[OutRecord.from_json(o) for o in data["outs"]],
            manifest=manifest if isinstance(manifest, str) else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
