"""Atomic file writes: temp file in the same directory, fsync, rename, fsync the directory.

One helper family for every "write beside, then rename in" in mlbuild:

- `replacing(path)`: a context manager yielding a temporary path beside ``path``; the
  caller fills it, and on a clean exit it is fsynced, given its mode and renamed over
  ``path`` (then the directory is fsynced); on any error it is removed and ``path`` is
  untouched. Its parameters keep the variants that differ on purpose.
- `atomic_write(path, data)`: the same for a bytes body (state memo, lock file, run-cache
  entries, manifests, signatures, tree objects, the parse cache).
- `fsync_file`, `fsync_dir`: the two durability steps, for writers that cannot use a local
  temp name (the remote upload goes through fsspec).
- `sync_filesystem(path)`: one durability point for many files (``syncfs``), and
  `rename_batch`, which renames a batch of files into place between two of them
  (`Cache.adopt`, a push to a ``file://`` remote).
- `SyncPoint`: the same across a whole build of many small targets: the cache and the
  manifest store write without an fsync per file and sync each filesystem at the points
  where something names what they wrote (see `Cache.put_run`).

Temporary names are what `maintenance.remove_leftovers` (gc) recognises: ``.tmp-*`` under
``.mlbuild/``, ``.tmp-*.part`` beside the lock file and ``.mlbuild-restore-*`` beside
declared outs. Keep them in step when changing a prefix or suffix here.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence


@contextlib.contextmanager
def replacing(
    path: str,
    *,
    mode: int = 0o644,
    prefix: str = ".tmp-",
    suffix: str = "",
    durable: bool = True,
    clear: Callable[[str], None] | None = None,
) -> Iterator[str]:
    """Yield a temporary file path beside ``path`` (created empty, closed) for the caller
    to fill; on a clean exit it is fsynced (``durable``), chmod'ed to ``mode`` and renamed
    over ``path``, then the directory is fsynced (``durable``). On any error the temporary
    file is removed and the error propagates, so ``path`` holds the old or the new bytes.

    ``durable=False`` is for a workspace out restored from the cache: the cache object is
    the durable copy and a torn restore is redone, so it skips both fsyncs (as it always
    has). ``clear(path)`` runs just before the rename, for a target that may be a
    directory (a restore over a directory out) which os.replace cannot overwrite.
    """
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        if durable:
            fsync_file(tmp)  # the bytes are on disk before the name points at them
        os.chmod(tmp, mode)
        if clear is not None:
            clear(path)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(directory)


def atomic_write(path: str, data: bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix.
    The temporary file is ``.tmp-*.part`` (the name gc removes beside the lock file).
    ``durable=False``: no fsync; a `SyncPoint` makes it durable later."""
    with (
        replacing(path, mode=mode, suffix=".part", durable=durable) as tmp,
        open(tmp, "wb") as f,
    ):
        f.write(data)


def fsync_file(path: str) -> None:
    """Flush ``path``'s bytes to disk (before it is renamed into place)."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable (best effort where directories can't be opened)."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def rename_batch(
    pending: list[tuple[str, str]], where: str, dest: Callable[[str], str] | None = None
) -> None:
    """Rename each ``(temporary file, final path)`` of ``pending`` into place, as one batch
    on the filesystem holding ``where``: it is synced before the first rename (the bytes,
    before any name points at them) and after the last (the names, before whatever names
    them), as two fsyncs per file would do. With ``dest``, the second item is a key and
    ``dest(key)`` the final path, made as it is renamed (a batch of 100,000 objects keeps
    no second list of paths). ``pending`` is emptied as the renames happen: on an error,
    what is left in it was not renamed (the caller removes it)."""
    if not pending:
        return
    sync_filesystem(where)
    while pending:
        tmp, final = pending[-1]
        os.replace(tmp, final if dest is None else dest(final))
        pending.pop()
    sync_filesystem(where)


def sync_filesystem(path: str) -> None:
    """Flush every written byte and name of the filesystem holding ``path`` to disk: one
    ``syncfs(2)`` instead of an fsync per file (20,000 objects of a directory out took 20 s
    of fsyncs). Where syncfs is missing (not Linux), ``sync(2)``, which does more."""
    import ctypes

    try:
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


class SyncPoint:
    """Batched durability for one build (issue 13): a target of 20 bytes cost 8 fsyncs
    (its object, manifest, history line and run-cache entry, each file and directory),
    more than running it. Writers given a sync point skip those fsyncs and call `wrote`;
    `sync` then flushes every filesystem written to, once (`sync_filesystem`).

    The crash guarantees hold because the order is kept where it matters: whatever names
    other files is written only after a sync that covers them (a run-cache entry after
    its objects and manifest, `Cache.put_run`; the lock file after all, at the end of the
    build). A kill -9 loses nothing written (the page cache survives it); a power loss may
    lose or tear files written since the last sync, and every reader verifies what it
    reads (objects against their names, records by the strict parsers), so a torn file
    is caught and rebuilt, never trusted."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = tuple(paths)
        self.dirty = False
        self.last = time.monotonic()  # when the last sync finished
        self._lock = threading.Lock()

    def wrote(self) -> None:
        """Something was written without an fsync: the next `sync` flushes it."""
        self.dirty = True

    def sync(self) -> None:
        """Flush each filesystem of ``paths`` once (those that exist)."""
        with self._lock:
            self.dirty = False  # first: a write racing with the sync marks it again
            done: set[int] = set()
            for path in self.paths:
                try:
                    dev = os.stat(path).st_dev
                except FileNotFoundError:
                    continue
                if dev not in done:
                    done.add(dev)
                    sync_filesystem(path)
            self.last = time.monotonic()
