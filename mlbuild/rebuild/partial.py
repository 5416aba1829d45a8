"""Partial restore: bring a directory out in the workspace back to a cached tree by
touching only the entries that differ.

Restoring the whole directory (`Cache.restore_out`) moves it aside and copies every object:
for one edited file among 100,000 that is 100,000 copies, and the user's whole directory in
``aside/``. Here the directory is walked through the memo (its tree record: only files
whose stat changed are hashed) and compared with the tree object, entry by entry::

    in the workspace, not in the tree (a stray)       → moved to aside/, same relative path
    in both, other digest or mode (edited, chmod-ed)  → moved to aside/, then restored
    in the tree, not in the workspace                 → restored
    in both, same digest and mode                     → not touched (same inode)

Each restored entry is written and verified under a temporary name beside it, then
renamed (`Cache.restore_entry`), so a file is either the user's (moved aside whole) or the
cached bytes, never a mixture. What stands in the way of a tree entry and is not a walked
file (a directory where a file belongs, a FIFO) is moved aside too, and directories that
only held strays are removed once empty. Nothing the user made is deleted.

A kill -9 halfway leaves some entries restored and the lock entry not yet written: the
next build finds the out modified and restores again, touching what is still different.

A directory that is not a plain directory (a symlink, a file), or whose walk fails or
finds a link leading out of the workspace, is not handled here: the caller moves the whole
out aside and restores it whole, as before.
"""

from __future__ import annotations

import contextlib
import os
import stat

from ..digest import LinkOutside, TreeEntry
from ..store import Cache
from ..store.cache import makedirs
from ..store.state import StateMemo

__all__ = ["set_aside", "sync_dir"]


def sync_dir(cache: Cache, memo: StateMemo, root: str, rel: str, tree: str, aside: str) -> bool:
    """Make the directory out ``rel`` hold exactly the tree object ``tree`` (a digest),
    moving what differs to ``aside`` (the out's place in the target's aside directory).
    False: ``rel`` is not a directory this can sync, and nothing was changed."""
    full = os.path.join(root, rel)
    try:
        if not stat.S_ISDIR(os.lstat(full).st_mode):
            return False
        current = memo.out_entries(rel)
    except (OSError, LinkOutside):
        return False
    want = cache.read_tree(tree)  # verified; RecordError when corrupt (dropped)
    wanted = {name: (xxh, mode) for name, xxh, mode in want}
    gone = [name for name, key in current.items() if wanted.get(name) != key]
    put = [entry for entry in want if current.get(entry[0]) != (entry[1], entry[2])]
    if not gone and not put:
        return True
    for name in gone:
        _set_aside(full, name, aside)
    for name, xxh, mode in put:
        target = _clear_way(full, name, aside)
        cache.restore_entry(xxh, mode, target, f"{rel}/{name}")
    _remove_emptied(full, gone, want)
    # The memo's record still holds the stats the walk saw: the next walk finds the
    # restored entries' stats changed and hashes those few (it must: they are racy).
    return True


def _path(top: str, name: str) -> str:
    return os.path.join(top, *name.split("/"))


def set_aside(path: str, dest: str) -> None:
    """Move ``path`` (if there) to ``dest``, or beside it (``dest.1``, …) when something is
    there already, e.g. put there earlier in this build: nothing set aside is overwritten."""
    if not os.path.lexists(path):
        return
    makedirs(os.path.dirname(dest))
    n, candidate = 0, dest
    while os.path.lexists(candidate):
        n += 1
        candidate = f"{dest}.{n}"
    os.replace(path, candidate)


def _set_aside(full: str, name: str, aside: str) -> None:
    """`set_aside` entry ``name`` of the directory ``full`` to its place under ``aside``."""
    set_aside(_path(full, name), _path(aside, name))


def _clear_way(full: str, name: str, aside: str) -> str:
    """The path of tree entry ``name`` in ``full``, with every parent a real directory and
    the path itself free: whatever stands in the way and the walk did not list as a file
    (a FIFO where a directory belongs, a directory where a file belongs) is set aside, an
    empty directory simply removed. Returns the path."""
    parts = name.split("/")
    for i in range(1, len(parts)):
        parent = "/".join(parts[:i])
        try:
            st = os.lstat(_path(full, parent))
        except FileNotFoundError:
            break
        if not stat.S_ISDIR(st.st_mode):
            _set_aside(full, parent, aside)
            break
    target = _path(full, name)
    makedirs(os.path.dirname(target))
    if os.path.lexists(target):  # not a walked entry (those are aside or equal by now)
        try:
            os.rmdir(target)  # an empty directory
        except OSError:  # anything else is not ours to delete
            _set_aside(full, name, aside)
    return target


def _remove_emptied(full: str, gone: list[str], want: list[TreeEntry]) -> None:
    """Remove the directories that held entries moved aside, once empty, unless the tree
    needs them (a directory the user made empty is not ours: only those the moves
    emptied are looked at)."""
    needed: set[str] = set()
    for name, _, _ in want:
        parts = name.split("/")
        needed.update("/".join(parts[:i]) for i in range(1, len(parts)))
    emptied: set[str] = set()
    for name in gone:
        parts = name.split("/")
        emptied.update("/".join(parts[:i]) for i in range(1, len(parts)))
    for directory in sorted(emptied - needed, key=lambda d: -d.count("/")):
        with contextlib.suppress(OSError):  # not empty, or gone: leave it
            os.rmdir(_path(full, directory))
