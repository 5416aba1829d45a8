"""Cache maintenance: `mlbuild cache verify` and `mlbuild gc`, locally or on the remote.

verify
    Re-hash every object (its name is its xxh3-128) and report the ones whose bytes do not
    match, and every run-cache entry that names an object that is not there. ``--repair``
    drops those entries first, then the corrupt objects, so no entry is ever left pointing
    at a missing object: those builds can no longer be restored from this cache (intact
    workspace copies stay fresh; a push sends such a build again after a rebuild).

gc
    Keeps what the lock file's builds and each target's last ``keep`` builds (from the
    manifest history) need: their run-cache entries, their outs' objects (trees with
    every file), and the code files their keys name (for ``explain`` diffs). Everything
    else in ``objects/`` and ``runs/`` goes: run-cache entries first, then objects.
    Manifests are never collected (provenance is append-only; they are small).
    Leftovers of interrupted writes go too: ``.tmp-*`` files under ``.mlbuild/`` and
    ``.tmp-*.part`` beside the lock file (gc holds the workspace lock, so no local writer
    is running), ``.mlbuild-restore-*`` beside the declared outs, and on the remote
    ``*.tmp-*`` uploads older than `REMOTE_TMP_AGE` (another machine may be uploading
    right now).

On the remote, gc keeps what *this* workspace's lock file and history need: other
branches' and machines' builds are collected too unless they share those keys. Preview
with ``--dry-run`` (see docs/remote.md).

clean
    The workspace side: removes the declared outs of the chosen targets whose current
    bytes the cache holds (the lock entry's digests, a run-cache entry of its key naming
    them, and every object), so a plain build restores them without running anything.
    An out the cache cannot give back is kept and named (``--force`` removes it anyway).
    Only declared outs are ever removed (a directory out as a whole), never a path
    through a symlink that leads out of the workspace; `.mlbuild/` and sources cannot be
    declared outs (config/paths.py `OutGuard`).
"""

from __future__ import annotations

import contextlib
import enum
import os
import posixpath
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .config import Pipeline, check_inside
from .digest import LinkOutside, hash_file
from .kinds import OutType
from .provenance.store import ManifestStore
from .store import Cache, LockFile, OutRecord, StateMemo
from .store.cache import remove_tree
from .store.layout import Layout
from .store.records import RecordError, parse_run, parse_tree
from .store.remote import Remote, object_rel

__all__ = [
    "CleanReport",
    "CleanedOut",
    "GcReport",
    "Uncached",
    "VerifyReport",
    "clean",
    "collect",
    "verify",
]

XXH = "xxh3-128:"
REMOTE_TMP_AGE = 3600.0  # seconds before a remote upload's temporary file counts as dead


@dataclass
class VerifyReport:
    """Objects checked, the corrupt ones (relative path, what their bytes hash to), and
    what --repair dropped."""

    checked: int = 0
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (run entry, object)
    dropped_objects: int = 0
    dropped_runs: int = 0

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing


@dataclass
class GcReport:
    kept_objects: int = 0
    removed_objects: int = 0
    removed_bytes: int = 0
    kept_runs: int = 0
    removed_runs: int = 0
    removed_temporaries: int = 0


class _Store:
    """Objects and run-cache entries of the local cache or of the remote, by relative path
    (``objects/ab/cd…``, ``runs/ab/cd….json``): one interface for verify and gc."""

    def __init__(self, cache: Cache, remote: Remote | None) -> None:
        self.cache = cache
        self.remote = remote

    def list(self, top: str) -> Iterator[str]:
        if self.remote is not None:
            base = self.remote.path(top)
            try:
                found = self.remote.fs.find(base)
            except FileNotFoundError:
                return
            for path in sorted(found):
                rel = top + "/" + path[len(base) :].lstrip("/")
                if ".tmp-" not in rel:
                    yield rel
            return
        root = os.path.join(self.cache.dir, top)
        for dirpath, _, files in sorted(os.walk(root)):
            for name in sorted(files):
                if not name.startswith(".tmp-"):
                    full = os.path.join(dirpath, name)
                    yield top + "/" + os.path.relpath(full, root).replace(os.sep, "/")

    def temporaries(self, top: str, now: float) -> Iterator[str]:
        """Leftovers of interrupted writes under ``top`` (see the module doc)."""
        if self.remote is not None:
            base = self.remote.path(top)
            try:
                found = self.remote.fs.find(base, detail=True)
            except FileNotFoundError:
                return
            for path, info in sorted(found.items()):
                if ".tmp-" in path.rsplit("/", 1)[-1] and now - _mtime(info) > REMOTE_TMP_AGE:
                    yield top + "/" + path[len(base) :].lstrip("/")
            return
        root = os.path.join(self.cache.dir, top)
        for dirpath, _, files in sorted(os.walk(root)):
            for name in sorted(files):
                if name.startswith(".tmp-"):
                    full = os.path.join(dirpath, name)
                    yield top + "/" + os.path.relpath(full, root).replace(os.sep, "/")

    def digest_of(self, rel: str) -> tuple[str, int]:
        """The xxh3-128 of the bytes at ``rel``, and their size ("unreadable: …" when the
        file cannot be read: reported as corrupt, never a traceback)."""
        if self.remote is None:
            try:
                got = hash_file(os.path.join(self.cache.dir, rel), want_sha256=False)
            except OSError as exc:
                return f"unreadable: {exc.strerror}", 0
            return got.xxh, got.size
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, "object")
            if not self.remote.download(rel, local):
                return "missing", 0
            got = hash_file(local, want_sha256=False)
            return got.xxh, got.size

    def read(self, rel: str) -> bytes | None:
        if self.remote is not None:
            return self.remote.read(rel)
        try:
            with open(os.path.join(self.cache.dir, rel), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def size(self, rel: str) -> int:
        if self.remote is not None:
            return int(self.remote.fs.size(self.remote.path(rel)))
        return os.path.getsize(os.path.join(self.cache.dir, rel))

    def delete(self, rel: str) -> None:
        if self.remote is not None:
            self.remote.delete(rel)
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.cache.dir, rel))


def _mtime(info: dict[str, Any]) -> float:
    """A listing entry's modification time in epoch seconds (fsspec backends differ);
    unknown counts as now, so an entry of unknown age is never taken for dead."""
    import datetime as dt

    value = info.get("mtime", info.get("LastModified", info.get("created")))
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return float(value) if isinstance(value, (int, float)) else time.time()


def _object_digest(rel: str) -> str:
    """``objects/ab/cdef…`` → ``xxh3-128:abcdef…``."""
    _, a, b = rel.split("/", 2)
    return XXH + a + b


def _run_key(rel: str) -> str:
    """``runs/ab/cdef….json`` → ``xxh3-128:abcdef…``."""
    _, a, b = rel.split("/", 2)
    return XXH + a + b[: -len(".json")]


def _run_objects(store: _Store, rel: str) -> set[str] | None:
    """The object digests a run-cache entry needs (None: the entry is unreadable)."""
    data = store.read(rel)
    if data is None:
        return None
    try:
        entry = parse_run(data, _run_key(rel), rel)
    except RecordError:
        return None
    return _outs_objects(store, entry.outs)


def _outs_objects(store: _Store, outs: Iterable[OutRecord]) -> set[str]:
    needed: set[str] = set()
    for rec in outs:
        needed.add(rec.xxh)
        if rec.type == OutType.DIR:
            needed |= _tree_files(store, rec.xxh)
    return needed


def _tree_files(store: _Store, digest: str) -> set[str]:
    """The file objects of a tree (none when it is missing or fails the strict parser:
    its own hash check reports it as corrupt)."""
    rel = object_rel(digest)
    data = store.read(rel)
    try:
        return {xxh for _, xxh, _ in parse_tree(data, digest, rel)} if data is not None else set()
    except RecordError:
        return set()


def verify(cache: Cache, remote: Remote | None, *, repair: bool) -> VerifyReport:
    """Re-hash every object of the local cache (or of ``remote``); see the module doc."""
    store = _Store(cache, remote)
    report = VerifyReport()
    bad: set[str] = set()
    present: set[str] = set()
    for rel in store.list("objects"):
        report.checked += 1
        present.add(_object_digest(rel))
        got, _ = store.digest_of(rel)
        if got != _object_digest(rel):
            report.corrupt.append((rel, got))
            bad.add(_object_digest(rel))
    broken: list[str] = []  # run-cache entries that name a corrupt or missing object
    for rel in store.list("runs"):
        needed = _run_objects(store, rel)
        if needed is None:
            broken.append(rel)
            continue
        report.missing += [(rel, d) for d in sorted(needed - present)]
        if needed & bad or needed - present:
            broken.append(rel)
    if repair:
        for rel in broken:
            store.delete(rel)  # entries first: none may name a missing object
            report.dropped_runs += 1
        for rel, _ in report.corrupt:
            store.delete(rel)
            report.dropped_objects += 1
    return report


def collect(
    cache: Cache,
    manifests: ManifestStore,
    lock: LockFile,
    targets: Iterable[str],
    remote: Remote | None,
    *,
    keep: int,
    dry_run: bool,
) -> GcReport:
    """Remove what the lock file and each target's last ``keep`` builds do not need."""
    store = _Store(cache, remote)
    keys: set[str] = set()
    code: set[str] = set()
    for entry in lock.entries.values():
        keys.add(entry.key)
        code |= set((entry.components.get("code") or {}).values())
    for target in targets:
        builds: list[str] = []
        for mid in reversed(manifests.history(target)):
            doc = manifests.get_usable(mid)
            if doc is None or doc.get("key") in builds:
                continue
            builds.append(doc["key"])
            code |= set((doc.get("components", {}).get("code") or {}).values())
            if len(builds) >= keep:
                break
        keys |= set(builds)
    report = GcReport()
    needed = set(code)
    doomed_runs: list[str] = []
    for rel in store.list("runs"):
        objects = _run_objects(store, rel)
        if _run_key(rel) in keys and objects is not None:
            report.kept_runs += 1
            needed |= objects
        else:
            doomed_runs.append(rel)
    for entry in lock.entries.values():  # outs recorded without a run entry (--no-cache)
        needed |= _outs_objects(store, entry.outs)
    doomed_objects = [rel for rel in store.list("objects") if _object_digest(rel) not in needed]
    report.kept_objects = sum(1 for _ in store.list("objects")) - len(doomed_objects)
    report.removed_runs = len(doomed_runs)
    report.removed_objects = len(doomed_objects)
    report.removed_bytes = sum(store.size(rel) for rel in doomed_objects)
    now = time.time()
    temporaries = [rel for top in ("objects", "runs") for rel in store.temporaries(top, now)]
    report.removed_temporaries = len(temporaries)
    if not dry_run:
        for rel in doomed_runs:  # entries first: none may name a missing object
            store.delete(rel)
        for rel in doomed_objects:
            store.delete(rel)
        for rel in temporaries:
            store.delete(rel)
    return report


def remove_leftovers(
    layout: Layout, out_dirs: Iterable[str], lock_dir: str, *, dry_run: bool
) -> int:
    """Local leftovers of interrupted writes outside the cache: ``.tmp-*`` files anywhere
    under ``layout.state_dir`` (manifests, state) but in the copies of users' outs
    (`Layout.user_copy_dirs`, skipped by name), ``.tmp-*.part`` beside the lock file (what
    atomic_write names its temporary file) and ``.mlbuild-restore-*`` beside declared outs.
    Only names mlbuild itself gives its temporary files are touched. Returns how many
    there were."""
    found: list[str] = []
    with contextlib.suppress(OSError):
        found += [
            os.path.join(lock_dir, n)
            for n in sorted(os.listdir(lock_dir))
            if n.startswith(".tmp-") and n.endswith(".part")
        ]
    for dirpath, dirnames, files in os.walk(layout.state_dir):
        dirnames[:] = [d for d in dirnames if d not in layout.user_copy_dirs]
        found += [os.path.join(dirpath, n) for n in files if n.startswith(".tmp-")]
    for directory in sorted(set(out_dirs)):
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        found += [os.path.join(directory, n) for n in names if n.startswith(".mlbuild-restore-")]
    if not dry_run:
        for path in found:
            with contextlib.suppress(OSError):
                remove_tree(path)
    return len(found)


# ------------------------------------------------------------------------------ clean
class Uncached(enum.Enum):
    """Why `clean` keeps an out: the cache could not give its current bytes back."""

    NOT_BUILT = "not-built"  # no record of a build of it (never built, or made by hand)
    NOT_CACHED = "not-cached"  # its build is not in the cache (--no-cache, gc, repair)
    MODIFIED = "modified"  # its bytes are not those its build recorded
    OUTSIDE = "outside"  # a symlinked parent leads out of the workspace: never removed

    def describe(self, target: str) -> str:
        return {
            Uncached.NOT_BUILT: f"no build of {target} recorded it",
            Uncached.NOT_CACHED: f"the build of {target} is not in the cache",
            Uncached.MODIFIED: f"modified since {target} was built",
            Uncached.OUTSIDE: "its directory leads out of the workspace",
        }[self]


@dataclass(frozen=True)
class CleanedOut:
    """One existing declared out `clean` looked at: ``removed`` (or, on a dry run, would
    be) or kept; ``why`` is None when the cache can restore it, else why it cannot (kept,
    or removed by ``force``)."""

    target: str
    path: str
    removed: bool
    why: Uncached | None = None

    def to_json(self) -> dict[str, str]:
        data = {"target": self.target, "path": self.path}
        if self.why is not None:
            data |= {"reason": self.why.value, "text": self.why.describe(self.target)}
        return data


@dataclass(frozen=True)
class CleanReport:
    """Every existing declared out of the chosen targets, in build order, then in the
    order the target declares them."""

    dry_run: bool
    outs: tuple[CleanedOut, ...]

    @property
    def removed(self) -> list[CleanedOut]:
        return [o for o in self.outs if o.removed]

    @property
    def kept(self) -> list[CleanedOut]:
        return [o for o in self.outs if not o.removed]

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "removed": [o.to_json() for o in self.removed],
            "kept": [o.to_json() for o in self.kept],
        }


def clean(
    pipeline: Pipeline,
    targets: Iterable[str],
    cache: Cache,
    lock: LockFile,
    memo: StateMemo,
    *,
    force: bool,
    dry_run: bool,
) -> CleanReport:
    """Remove the declared outs of ``targets`` that the cache can restore (all of them
    with ``force``, but one whose directory leads out of the workspace); an out that
    does not exist is left out of the report."""
    seen: list[CleanedOut] = []
    for name in targets:
        spec = pipeline.targets[name]
        for rel in spec.outs:
            full = os.path.join(pipeline.root, rel)
            if not os.path.lexists(full):
                continue
            why = _uncached(spec.outs, name, rel, cache, lock, memo, pipeline.root)
            remove = why is None or (force and why is not Uncached.OUTSIDE)
            seen.append(CleanedOut(name, rel, remove, why))
            if remove and not dry_run:
                remove_tree(full)  # a link is unlinked, never followed
    return CleanReport(dry_run, tuple(seen))


def _uncached(
    declared: tuple[str, ...],
    target: str,
    rel: str,
    cache: Cache,
    lock: LockFile,
    memo: StateMemo,
    root: str,
) -> Uncached | None:
    """Why the cache cannot give back the bytes at ``rel`` (None: it can). Those bytes
    must be the ones the lock entry recorded, and a restore needs what a plain build
    restores from (rebuild/decide.py): the run-cache entry of the entry's key, listing
    exactly the ``declared`` outs and this one with the same digest, and every object."""
    parent = posixpath.dirname(rel)
    if parent and not check_inside(root, parent):
        return Uncached.OUTSIDE
    entry = lock.entries.get(target)
    rec = next((r for r in entry.outs if r.path == rel), None) if entry is not None else None
    if entry is None or rec is None:
        return Uncached.NOT_BUILT
    try:
        digest, is_dir = memo.digest(rel, out=True)
    except (OSError, LinkOutside):
        return Uncached.MODIFIED
    if digest.xxh != rec.xxh or is_dir != (rec.type == OutType.DIR):
        return Uncached.MODIFIED
    run = cache.get_run(entry.key, declared)  # one the strict parser refuses is none
    wanted = (rel, rec.xxh, rec.type)
    same = run is not None and any((r.path, r.xxh, r.type) == wanted for r in run)
    if not same or not _has_out(cache, rec):
        return Uncached.NOT_CACHED
    return None


def _has_out(cache: Cache, rec: OutRecord) -> bool:
    try:
        return cache.has_out(rec)
    except RecordError:  # a corrupt tree object (dropped by the cache)
        return False
