"""The local cache: content-addressed objects and the run cache.

Layout under ``.mlbuild/cache/`` (version 1)::

    objects/ab/cdef…          file bytes, addressed by their xxh3-128 hex (read-only, 0444)
    objects/ab/cdef…          a tree object: canonical JSON ``[[relpath, xxh3, "f"|"x"|"l"], …]``
                              whose own xxh3-128 is the directory's digest
    runs/ab/cdef….json        run-cache entry: ``{"version", "target", "key", "outs": [...]}``

A run-cache entry is written only after every object it names is stored (objects first,
then the key), so an entry never points to a missing object, even after a kill -9.
How bytes move between the workspace and the objects is ``cache: {link: [...]}``
(`LinkType`), the first kind that works on the filesystems at hand: by default a reflink
where the filesystem has them, else a copy, so editing a workspace file can never change
an object. With ``hardlink`` listed, an out and its object are one inode, made read-only
(0444, or 0555 for an executable) so that an in-place write is refused instead of
corrupting the cache; `mlbuild unprotect` gives the workspace a private copy. An object is
only ever hardlinked to the workspace when its mode is exactly what the entry needs, and
every placed file, linked or not, is hashed against its object's name.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from ..digest import FileDigest, TreeEntry, canonical_json, hash_bytes, hash_file, tree_object
from ..errors import MlbuildError
from ..kinds import EntryMode, LinkType, OutType
from .atomic import SyncPoint, atomic_write, fsync_dir, fsync_file, rename_batch
from .records import (
    RUN_VERSION,
    OutRecord,
    RecordError,
    RunEntry,
    check_link_target,
    check_relpath,
    digest_hex,
    parse_run,
    parse_tree,
)

CACHE_VERSION = RUN_VERSION
#: A run-cache entry of a build waits for the next sync only while its target ran, and
#: the last sync was, under this many seconds (`Cache.put_run`).
RUN_SYNC_S = 0.2
_FICLONE = 0x40049409
# `Cache.missing` lists a fan-out directory when its size is under this many bytes per
# object looked for: about 25 entries read per stat saved (an entry of ~40 bytes).
_LIST_BYTES_PER_NAME = 1024


DEFAULT_LINK: tuple[LinkType, ...] = (LinkType.REFLINK, LinkType.COPY)
# os.link's refusals that mean "not here" (another filesystem, one without hardlinks, too
# many links, a kernel that protects links), not "something is wrong": the next kind.
_CANNOT_LINK = frozenset(
    {errno.EXDEV, errno.EMLINK, errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}
)


def clone_file(src: str, dst: str) -> None:
    """Copy ``src`` to ``dst`` as a reflink when the filesystem supports it, else copy:
    never a hardlink, the copy is a file of its own."""
    out_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        _fill(src, out_fd, reflink=True, copy=True)
    finally:
        os.close(out_fd)


def check_tree_path(rel: str) -> None:
    """A tree entry must stay inside its directory (no absolute paths, no ``..``)."""
    check_relpath(rel, "tree entry")


class Cache:
    """Objects + run cache under one directory."""

    def __init__(self, directory: str, link: Sequence[LinkType] = DEFAULT_LINK) -> None:
        self.dir = directory
        self.link = tuple(link)
        self.objects = os.path.join(directory, "objects")
        self.runs = os.path.join(directory, "runs")
        # A build asks for the same tree several times (is it restorable? then restore
        # it): the last one parsed is kept (objects are immutable, so it stays verified),
        # and so is every tree found complete, until an object is dropped.
        self._last_tree: tuple[str, list[TreeEntry]] | None = None
        self._complete: set[str] = set()
        # A build's batched durability (atomic.SyncPoint; None: fsync each write). With
        # it, run-cache entries wait in _runs (path -> body) for a sync (`put_run`).
        self.sync_point: SyncPoint | None = None
        self._runs: dict[str, bytes] = {}
        self._runs_lock = threading.Lock()

    # -- objects ---------------------------------------------------------------------
    def object_path(self, digest: str) -> str:
        """Where the object ``digest`` lives: derived only from checked hex."""
        hexd = digest_hex(digest)
        return os.path.join(self.objects, hexd[:2], hexd[2:])

    def has(self, digest: str) -> bool:
        return os.path.exists(self.object_path(digest))

    def missing(self, digests: Collection[str]) -> list[str]:
        """Those of ``digests`` the store does not hold, in order. Checking the 100,000
        objects of a dataset one `stat` at a time takes about a second; a fan-out
        directory is listed once instead when that reads fewer entries than the stats it
        saves (its size in bytes estimates its entries), so a small cache is never listed
        whole for a few objects, nor a huge one for a few hundred."""
        hexes = [digest_hex(digest) for digest in digests]
        wanted: dict[str, list[str]] = {}
        for hexd in hexes:
            wanted.setdefault(hexd[:2], []).append(hexd[2:])
        present: set[str] = set()
        for prefix, names in wanted.items():
            directory = os.path.join(self.objects, prefix)
            try:
                listable = os.stat(directory).st_size < len(names) * _LIST_BYTES_PER_NAME
                if listable:
                    present.update(prefix + n for n in os.listdir(directory))
                    continue
            except (FileNotFoundError, NotADirectoryError):
                continue
            present.update(prefix + n for n in names if os.path.exists(os.path.join(directory, n)))
        return [d for d, hexd in zip(digests, hexes, strict=True) if hexd not in present]

    def store_file(self, src: str, digest: str, *, share: bool = False) -> None:
        """Put ``src``'s bytes in the object store under ``digest`` (no-op if already
        there), durably. ``share``: ``src`` is an out, which with ``hardlink`` in
        ``cache.link`` becomes the object itself (and read-only); a code file never is."""
        dest = self.object_path(digest)
        if os.path.exists(dest):
            return
        tmp = self._stage(src, dest, share=share)
        point = self.sync_point
        try:
            if point is None:
                fsync_file(tmp)  # the bytes are on disk before the name points at them
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        if point is None:
            fsync_dir(os.path.dirname(dest))
        else:
            point.wrote()  # synced before any run-cache entry names it (put_run)

    def _stage(self, src: str, dest: str, *, share: bool) -> str:
        """A new temporary file beside object ``dest`` with ``src``'s bytes and an
        object's mode, made by the first kind of ``cache.link`` that works; returns its
        path. A hardlink (only with ``share``) is ``src`` itself, made read-only: 0444,
        or 0555 when ``src`` is executable, so the out keeps its mode. Without ``share``
        (a code file, the user's own source) ``cache.link`` does not apply: a reflink,
        else a copy, whatever the list says."""
        for kind, then_copy in _steps(self.link if share else DEFAULT_LINK):
            if kind is LinkType.HARDLINK:
                name = _link_beside(src, dest)
                if name is None:
                    continue
                executable = os.stat(name).st_mode & stat.S_IXUSR
                os.chmod(name, 0o555 if executable else 0o444)
                return name
            if not then_copy and _reflink_refused(src, os.path.dirname(dest)):
                continue  # known to fail here: no temporary file made for nothing
            name, fd = _new_temp(dest)
            try:
                done = _fill(src, fd, reflink=kind is LinkType.REFLINK, copy=then_copy)
            except BaseException:
                os.close(fd)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name)
                raise
            os.close(fd)
            if done is not None:
                os.chmod(name, 0o444)  # shared by every build, never edited in place
                return name
            os.unlink(name)
        raise _no_link(self.link, src)

    def new_temp(self, digest: str) -> str:
        """A new empty temporary file beside the object ``digest`` (a ``.tmp-`` name gc
        removes), for bytes that `adopt` puts in place once verified."""
        return _temp_beside(self.object_path(digest))

    def adopt(self, staged: list[tuple[str, str]]) -> None:
        """Rename each ``(temporary file, digest)`` into place as that object, with two
        durability points for the whole batch instead of two fsyncs per object: the
        filesystem is synced (`sync_filesystem`) before any name points at new bytes and
        again after the renames, so a crash leaves temporary files (gc removes them) or
        whole objects, never a torn one that an existence check would take for stored.
        The caller has verified the bytes and set the mode. On an error, the files not yet
        renamed are removed. ``staged`` is emptied as the renames happen."""
        try:
            rename_batch(staged, self.objects, self.object_path)
        finally:
            for tmp, _ in staged:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    def store_tree(self, full: str, entries: list[tuple[str, FileDigest, str]]) -> str:
        """Store every entry of a directory and its tree object; returns the tree digest.
        A link (mode "l") is stored as an object holding its target text.

        The objects are written as a batch (`adopt`: two durability points instead of two
        fsyncs each), before the tree object that names them."""
        staged: list[tuple[str, str]] = []  # (temporary path, digest)
        wanted: set[str] = set()
        absent = set(self.missing(sorted({digest.xxh for _, digest, _ in entries})))
        try:
            for rel, digest, mode in entries:
                if digest.xxh in wanted or digest.xxh not in absent:
                    continue
                wanted.add(digest.xxh)
                path = os.path.join(full, rel)
                dest = self.object_path(digest.xxh)
                if mode == EntryMode.LINK:
                    tmp = _temp_beside(dest)
                    staged.append((tmp, digest.xxh))
                    _write_bytes(tmp, os.fsencode(os.readlink(path)))
                    os.chmod(tmp, 0o444)
                else:
                    staged.append((self._stage(path, dest, share=True), digest.xxh))
        except BaseException:
            for tmp, _ in staged:  # an error before the renames: nothing half-stored
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            raise
        del absent, wanted  # before the tree object is encoded: the peak of a big out
        self.adopt(staged)
        body = tree_object(entries)
        tree_digest = hash_bytes(body)
        dest = self.object_path(tree_digest)
        if not os.path.exists(dest):
            atomic_write(dest, body, mode=0o444, durable=self.sync_point is None)
            if self.sync_point is not None:
                self.sync_point.wrote()
        return tree_digest

    def read_tree(self, digest: str) -> list[TreeEntry]:
        """The entries of the tree object ``digest``, verified against its name and each
        other (records.parse_tree); a corrupt tree raises RecordError and is dropped."""
        last = self._last_tree
        if last is not None and last[0] == digest:
            return last[1]
        path = self.object_path(digest)
        with open(path, "rb") as f:
            raw = f.read()
        try:
            tree = parse_tree(raw, digest, f"cache object {os.path.relpath(path, self.dir)}")
        except RecordError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # provably bad, and its path derives from checked hex
            raise
        self._last_tree = (digest, tree)
        return tree

    def has_out(self, rec: OutRecord) -> bool:
        """True when every object needed to restore ``rec`` is in the store. A tree object
        that fails its check raises RecordError (and is dropped), so the caller can say why
        the build is not restorable."""
        if rec.type == OutType.FILE:
            return self.has(rec.xxh)
        if rec.xxh in self._complete:
            return True
        if not self.has(rec.xxh):
            return False
        try:
            tree = self.read_tree(rec.xxh)
        except OSError:
            return False  # a corrupt tree raises RecordError (dropped): callers say so
        if self.missing(sorted({xxh for _, xxh, _ in tree})):
            return False
        self._complete.add(rec.xxh)
        return True

    def restore_out(
        self,
        rec: OutRecord,
        dest: str,
        at: str | None = None,
        hash_dir: Callable[[str], dict[str, tuple[str, str]]] | None = None,
    ) -> None:
        """Materialize ``rec`` at ``dest`` atomically (temp next to it, then rename).
        ``at``: ``dest`` relative to the workspace, against which a restored link's target
        is checked (records.check_link_target); without it a link must stay inside the
        directory itself. ``hash_dir`` (a directory out): verify the filled temporary
        directory in one pass after every entry is placed, by this walk and hash of it
        (`StateMemo.hash_restored`, which keeps what it read as a tree record), instead of
        a read of each file just after it is written; either way every file is read and
        compared with its object before the rename."""
        parent = os.path.dirname(dest)
        os.makedirs(parent, exist_ok=True)
        if rec.type == OutType.FILE:
            # Not durable: the cache object is the durable copy, a torn restore is redone.
            word = (EntryMode.EXEC if rec.executable else EntryMode.FILE).value
            self.restore_entry(rec.xxh, word, dest, at or dest, clear=True)
            return
        # A directory out: the same temp-beside-and-rename, with a temporary directory
        # (replacing() is for files; a failed tree needs remove_tree, not unlink).
        tmpdir = tempfile.mkdtemp(dir=parent, prefix=".mlbuild-restore-")
        try:
            tree = self.read_tree(rec.xxh)  # paths checked there
            for rel, xxh, mode in tree:
                target = os.path.join(tmpdir, *rel.split("/"))
                makedirs(os.path.dirname(target))
                self._put(xxh, mode, target, f"{at}/{rel}" if at else rel, check=not hash_dir)
            if hash_dir is not None:
                self._check_restored(tmpdir, tree, hash_dir(tmpdir))
            _remove(dest)
            os.replace(tmpdir, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                remove_tree(tmpdir)
            raise

    def restore_entry(
        self, xxh: str, mode: str, target: str, link: str, *, clear: bool = False
    ) -> None:
        """Put one tree entry at ``target``: written and verified under a temporary name
        beside it, then renamed over what is there (``clear``: also over a directory,
        removed first; else ``target`` must not be one). ``link``: ``target`` relative to
        the workspace (a link's containment)."""
        tmp = _temp_beside(target, ".mlbuild-restore-")
        try:
            os.unlink(tmp)  # _put creates it (a link cannot be made over a file)
            self._put(xxh, mode, tmp, link)
            if clear and os.path.isdir(target) and not os.path.islink(target):
                _remove(target)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _check_restored(
        self, tmpdir: str, tree: list[TreeEntry], found: dict[str, tuple[str, str]]
    ) -> None:
        """Every entry of ``tree`` was read back from ``tmpdir`` as ``found`` says, and
        nothing else is there. A differing file is read again against its object name:
        a corrupt object is dropped and named (`_check_copy`); else the file changed
        under the restore, which is said as such."""
        for rel, xxh, mode in tree:
            if found.get(rel) == (xxh, mode):
                continue
            if mode != EntryMode.LINK:  # a link's object was checked before it was made
                self._check_copy(os.path.join(tmpdir, *rel.split("/")), xxh)
            raise MlbuildError(
                f"{rel} changed while it was restored: read back, it is not the cached entry",
                hint="something else writes into this directory: run the build again",
            )
        if len(found) != len(tree):
            extra = sorted(set(found) - {rel for rel, _, _ in tree})
            raise MlbuildError(
                f"{extra[0]} appeared in {tmpdir} while it was restored",
                hint="something else writes into this directory: run the build again",
            )

    def _put(self, xxh: str, mode: str, target: str, link: str, *, check: bool = True) -> None:
        """Create the tree entry ``xxh`` (mode ``mode``) at the new path ``target``
        (``check``: read it back against its object now; without, the caller does)."""
        if mode == EntryMode.LINK:
            self._restore_link(xxh, target, link)
            return
        executable = mode == EntryMode.EXEC
        kind = self._place(self.object_path(xxh), target, 0o555 if executable else 0o444)
        if check:
            self._check_copy(target, xxh)  # a hardlink too: the object itself is verified
        if kind is not LinkType.HARDLINK:
            os.chmod(target, 0o755 if executable else 0o644)

    def _place(self, obj: str, target: str, shared_mode: int) -> LinkType:
        """Create ``target`` with the bytes of object ``obj`` by the first kind of
        ``cache.link`` that works; returns it. A hardlink only where the object's mode is
        ``shared_mode`` (what the entry needs, read-only): an executable entry is never
        linked to a 0444 object, nor a plain one to 0555, which would change its mode."""
        for kind, then_copy in _steps(self.link):
            if kind is LinkType.HARDLINK:
                if stat.S_IMODE(os.stat(obj).st_mode) != shared_mode:
                    continue
                try:
                    os.link(obj, target)
                except OSError as exc:
                    if exc.errno in _CANNOT_LINK:
                        continue
                    raise
                return kind
            if not then_copy and _reflink_refused(obj, os.path.dirname(target)):
                continue  # known to fail here: no file made for nothing
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                done = _fill(obj, fd, reflink=kind is LinkType.REFLINK, copy=then_copy)
            finally:
                os.close(fd)
            if done is not None:
                return done
            os.unlink(target)
        raise _no_link(self.link, target)

    def _restore_link(self, xxh: str, target: str, link: str) -> None:
        """Create the symlink whose target text is the object ``xxh`` (verified against its
        name) at ``target``; ``link`` is where it lands, for the containment check."""
        with open(self.object_path(xxh), "rb") as f:
            text = f.read()
        if hash_bytes(text) != xxh:
            self._check_copy(self.object_path(xxh), xxh)  # drops it and raises
        os.symlink(check_link_target(os.fsdecode(text), link, "tree entry"), target)

    def _check_copy(self, path: str, xxh: str) -> None:
        """A restored copy must hash to its object's name (xxh3 reads at ~30 GiB/s from
        the page cache): a corrupt cache object never reaches the workspace, and is
        dropped (the run-cache entry naming it then fails has_out: not restorable)."""
        got = hash_file(path, want_sha256=False).xxh
        if got != xxh:
            # Provably bad: drop it, so that the build that runs instead stores a good copy.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.object_path(xxh))
            self._complete.clear()
            raise MlbuildError(
                f"cache object {os.path.relpath(self.object_path(xxh), self.dir)} is corrupt "
                f"(its bytes hash to {got})",
                hint="dropped; mlbuild cache verify checks the rest",
            )

    # -- run cache -------------------------------------------------------------------
    def run_path(self, key: str) -> str:
        hexd = digest_hex(key)
        return os.path.join(self.runs, hexd[:2], hexd[2:] + ".json")

    def read_run(self, key: str, declared: Collection[str] | None = None) -> RunEntry | None:
        """The run-cache entry of ``key`` (None: there is none). A present but invalid
        entry raises RecordError (records.parse_run); with ``declared``, an entry must
        list exactly those outs."""
        path = self.run_path(key)
        with self._runs_lock:
            raw = self._runs.get(path)  # written by this build, waiting for a sync
        try:
            if raw is None:
                with open(path, "rb") as f:
                    raw = f.read()
        except FileNotFoundError:
            return None
        return parse_run(raw, key, f"run-cache entry {os.path.relpath(path, self.dir)}", declared)

    def run_manifest(self, key: str) -> str | None:
        """The id of the manifest of the build that made the run-cache entry ``key``
        (None: no entry, or one that fails the strict parser)."""
        try:
            entry = self.read_run(key)
        except RecordError:
            return None
        return None if entry is None else entry.manifest

    def get_run(self, key: str, declared: Collection[str] | None = None) -> list[OutRecord] | None:
        """The outs of a usable run-cache entry of ``key`` (an invalid one counts as none)."""
        try:
            entry = self.read_run(key, declared)
        except RecordError:
            return None
        return None if entry is None else entry.outs

    def put_run(
        self,
        key: str,
        target: str,
        outs: list[OutRecord],
        manifest: str | None = None,
        undeclared: Mapping[str, str] | None = None,
        *,
        ran_for: float | None = None,
    ) -> None:
        """Record that ``key`` built ``outs`` (the per-target commit point a build after a
        kill -9 restores from). With a `sync_point` (a build), the entry waits for the
        next sync unless its target ran for `RUN_SYNC_S` or more (``ran_for``, seconds;
        None: unknown) or the last sync is that old: a kill -9 then costs at most the
        re-run of targets that together ran for about that long per job, never an hour
        of training whose entry sat waiting."""
        body: dict[str, Any] = {
            "version": CACHE_VERSION,
            "key": key,
            "target": target,
            "outs": [o.to_json() for o in outs],
            "manifest": manifest,
        }
        if undeclared:
            body["undeclared"] = dict(undeclared)
        path, data = self.run_path(key), canonical_json(body).encode()
        point = self.sync_point
        if point is None:
            atomic_write(path, data)
            return
        with self._runs_lock:
            self._runs[path] = data
        if ran_for is None or ran_for >= RUN_SYNC_S or time.monotonic() - point.last >= RUN_SYNC_S:
            self.flush_runs()

    def flush_runs(self) -> None:
        """Write the run-cache entries waiting for a sync: the sync first, so that each
        names objects and a manifest already durable (a crash never leaves an entry
        whose objects were lost with it), then the entries, without an fsync each (the
        next sync, at the latest `settle` at the end of the build, covers them)."""
        point = self.sync_point
        with self._runs_lock:
            waiting, self._runs = self._runs, {}
        if not waiting or point is None:
            return
        point.sync()
        for path, data in sorted(waiting.items()):
            atomic_write(path, data, durable=False)
        point.wrote()

    def settle(self) -> None:
        """The end of a build, before the lock file names what it made: every waiting
        run-cache entry written and everything written since the last sync durable."""
        point = self.sync_point
        if point is None:
            return
        self.flush_runs()
        if point.dirty:
            point.sync()


_temps = itertools.count()  # temporary names: pid + this counter (next() is atomic)
_NO_CLONE: set[tuple[int, int]] = set()  # (src, dst) st_dev pairs where FICLONE failed
_DEVS: dict[str, int] = {}  # directory → st_dev, for `_reflink_refused` only


def _new_temp(dest: str, prefix: str = ".tmp-") -> tuple[str, int]:
    """A new temporary file beside ``dest`` (beside an object: a ``.tmp-`` name gc
    removes), open for writing: cheaper than mkstemp's random names, which cost a third of
    storing 20,000 small objects."""
    directory = os.path.dirname(dest)
    while True:
        name = os.path.join(directory, f"{prefix}{os.getpid()}-{next(_temps)}")
        try:
            return name, os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileNotFoundError:
            os.makedirs(directory, exist_ok=True)
        except FileExistsError:
            continue  # left by a dead process that had this pid


def _link_beside(src: str, dest: str) -> str | None:
    """A hardlink to ``src`` under a new temporary name beside object ``dest``; None when
    this filesystem pair refuses hardlinks (`_CANNOT_LINK`)."""
    directory = os.path.dirname(dest)
    while True:
        name = os.path.join(directory, f".tmp-{os.getpid()}-{next(_temps)}")
        try:
            os.link(src, name)
            return name
        except FileExistsError:
            continue  # left by a dead process that had this pid
        except FileNotFoundError:
            if os.path.isdir(directory):
                raise  # src is gone
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            if exc.errno in _CANNOT_LINK:
                return None
            raise


def _reflink_refused(src: str, dst_dir: str) -> bool:
    """Whether FICLONE already failed from ``src``'s filesystem to ``dst_dir``'s.

    Asked once per file of a directory out: the filesystems are those of the two
    directories, each stat'ed once (two stats per file cost 1.2 s of storing 100,000
    files). Only a hint: a wrong answer (a directory become a mount point since) costs a
    failed clone, or a hardlink or copy where a clone would have worked; the bytes are
    the same either way."""
    if not _NO_CLONE:
        return False
    try:
        return (_dev(os.path.dirname(src) or "."), _dev(dst_dir)) in _NO_CLONE
    except OSError:
        return False  # let the attempt say what is wrong


def _dev(directory: str) -> int:
    """The st_dev of ``directory``, remembered (at most 4096 directories at a time)."""
    dev = _DEVS.get(directory)
    if dev is None:
        if len(_DEVS) >= 4096:
            _DEVS.clear()
        dev = _DEVS[directory] = os.stat(directory).st_dev
    return dev


def _steps(kinds: Sequence[LinkType]) -> list[tuple[LinkType, bool]]:
    """``cache.link`` as the steps `_fill` takes: a reflink directly followed by copy is
    one step (the copy reuses the open files), flagged by the bool."""
    steps: list[tuple[LinkType, bool]] = []
    for i, kind in enumerate(kinds):
        if kind is LinkType.COPY and i and kinds[i - 1] is LinkType.REFLINK:
            continue
        following = kinds[i + 1] if i + 1 < len(kinds) else None
        copy = kind is LinkType.COPY or (kind is LinkType.REFLINK and following is LinkType.COPY)
        steps.append((kind, copy))
    return steps


def _no_link(kinds: Sequence[LinkType], path: str) -> MlbuildError:
    """The error when no kind of ``cache.link`` works for ``path``: the fix in the
    message itself, since a failed target shows its error's message only."""
    listed = ", ".join(k.value for k in kinds)
    return MlbuildError(
        f"no kind in cache.link ({listed}) works between the workspace and the cache "
        f"for {os.path.basename(path)}: add copy to cache.link in mlbuild.yaml "
        "(it works everywhere)"
    )


def _fill(src: str, out_fd: int, *, reflink: bool, copy: bool) -> LinkType | None:
    """Put ``src``'s bytes in the empty file open at ``out_fd``, opening ``src`` once:
    with ``reflink``, a clone (FICLONE) unless it already failed between these two
    filesystems; with ``copy``, else the kernel's copy_file_range, else read/write.
    Returns the kind that worked; None: neither was allowed to. A file that grows or
    shrinks meanwhile is caught later: a copy is verified against its digest when read."""
    in_fd = os.open(src, os.O_RDONLY)
    try:
        st = os.fstat(in_fd)
        pair = (st.st_dev, os.fstat(out_fd).st_dev)
        if reflink and pair not in _NO_CLONE:
            try:
                import fcntl

                fcntl.ioctl(out_fd, _FICLONE, in_fd)
                return LinkType.REFLINK
            except (OSError, ImportError):
                _NO_CLONE.add(pair)
        if not copy:
            return None
        done = 0
        with contextlib.suppress(AttributeError, OSError):  # not Linux, or a refused pair
            while done < st.st_size:
                n = os.copy_file_range(in_fd, out_fd, st.st_size - done)
                if n == 0:
                    break
                done += n
        os.lseek(in_fd, done, os.SEEK_SET)
        os.lseek(out_fd, done, os.SEEK_SET)
        while chunk := os.read(in_fd, 1 << 20):  # the rest (all of it if the kernel refused)
            view = memoryview(chunk)
            while view:
                view = view[os.write(out_fd, view) :]
        return LinkType.COPY
    finally:
        os.close(in_fd)


def _temp_beside(dest: str, prefix: str = ".tmp-") -> str:
    """A new empty temporary file beside ``dest``."""
    name, fd = _new_temp(dest, prefix)
    os.close(fd)
    return name


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def makedirs(path: str) -> None:
    """``os.makedirs(path, exist_ok=True)`` without recursion: os.makedirs recurses once
    per missing level, so a tree nested ~1000 deep would raise RecursionError."""
    missing: list[str] = []
    while path and not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory)


def remove_tree(path: str) -> None:
    """Remove ``path`` (a file, a link, or a whole directory, never following links)
    without recursion: shutil.rmtree recurses once per level, so a tree nested ~1000 deep
    would raise RecursionError. A missing path is fine."""
    if not os.path.isdir(path) or os.path.islink(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    stack = [(path, False)]
    while stack:
        directory, emptied = stack.pop()
        if emptied:
            os.rmdir(directory)
            continue
        stack.append((directory, True))
        with os.scandir(directory) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, False))
                else:
                    os.unlink(entry.path)


def _remove(path: str) -> None:
    remove_tree(path)
