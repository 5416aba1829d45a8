"""Persistent state: the stat/digest memo, the cache, the lock file, the workspace lock, and
`Layout`, every path under ``.mlbuild/`` (layout.py).

Every write goes through `atomic.replacing`/`atomic_write` (temp file + fsync + rename), so a
kill -9 at any moment leaves either the old or the new version of a file, never a torn one.
"""

from __future__ import annotations

from .atomic import atomic_write
from .cache import Cache
from .layout import STATE_DIR, Layout, target_file_name
from .lockfile import LockEntry, LockFile
from .records import OutRecord, RecordError, RunEntry
from .state import StateMemo
from .wslock import WorkspaceLock

__all__ = [
    "STATE_DIR",
    "Cache",
    "Layout",
    "LockEntry",
    "LockFile",
    "OutRecord",
    "RecordError",
    "RunEntry",
    "StateMemo",
    "WorkspaceLock",
    "atomic_write",
    "target_file_name",
]
