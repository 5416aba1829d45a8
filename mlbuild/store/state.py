"""The stat memo: unchanged files are never re-read.

Format of ``.mlbuild/state.json`` (version 1; discarded and rebuilt on any other version)::

    {"version": 1,
     "files": {"<relpath>": [ino, size, mtime_ns, ctime_ns, seen_ns, xxh, sha256|null]},
     "imports": {"<xxh of a .py file>": ["module", ...]}}

An entry is trusted only if the file's (ino, size, mtime_ns, ctime_ns) are unchanged *and*
its mtime was older than the moment it was hashed (``seen_ns``) by more than one timestamp
tick: a file modified within the same tick as it was hashed could change again without its
stat changing ("racy git"). Untrusted entries are simply re-hashed.

The tick is not known, so it is bounded: a timestamp with a sub-millisecond part comes from
a nanosecond filesystem (ext4, xfs, btrfs, tmpfs), whose kernel clock ticks at most every
10 ms, so `FINE_RACY_NS` (50 ms) is safe; a timestamp in whole milliseconds or seconds may
come from a coarse filesystem (FAT: 2 s), so `RACY_NS` (2 s) applies. With the short window
an out written by a build is trusted by the next one, not hashed again.
"""

from __future__ import annotations

import json
import os
import stat
import time
from typing import Any

from ..digest import FileDigest, hash_file, hash_tree, link_digest, walk_tree_stat
from .atomic import atomic_write
from .records import SHA_PATTERN, XXH_PATTERN

STATE_VERSION = 1
RACY_NS = 2_000_000_000
FINE_RACY_NS = 50_000_000


def racy_window(mtime_ns: int) -> int:
    """How long after its mtime a file's hash stays untrusted (see the module docstring)."""
    return RACY_NS if mtime_ns % 1_000_000 == 0 else FINE_RACY_NS


def _entry(raw: Any) -> list[Any] | None:
    """A memo entry if it has the documented shape (state.json is only a cache: a damaged
    entry is re-hashed, never trusted, never a crash). ``type(v) is int`` on purpose: a
    bool is not a stat field, and this runs once per file of a no-op."""
    if type(raw) is not list or len(raw) != 7:
        return None
    ino, size, mtime, ctime, seen, xxh, sha = raw
    if not (
        type(ino) is int
        and type(size) is int
        and type(mtime) is int
        and type(ctime) is int
        and type(seen) is int
        and type(xxh) is str
        and XXH_PATTERN.fullmatch(xxh)
        and (sha is None or (type(sha) is str and SHA_PATTERN.fullmatch(sha)))
    ):
        return None
    return raw


class StateMemo:
    """Path → digest memo keyed by stat; thread-safe enough for one writer per path."""

    def __init__(self, root: str, path: str | None) -> None:
        self.root = root
        self.path = path
        self.files: dict[str, list[Any]] = {}
        self.imports: dict[str, list[str]] = {}
        self.dirty = False
        if path is not None:
            try:
                with open(path, "rb") as f:
                    data = json.loads(f.read())
                files, imports = data.get("files"), data.get("imports")
                if (
                    data.get("version") == STATE_VERSION
                    and isinstance(files, dict)
                    and isinstance(imports, dict)
                ):
                    self.files = files  # each entry is checked where it is used (_entry)
                    self.imports = imports
            except (OSError, ValueError, AttributeError):
                pass  # only a cache: anything unreadable or of the wrong shape is rebuilt

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        body = {"version": STATE_VERSION, "files": self.files, "imports": self.imports}
        atomic_write(self.path, json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
        self.dirty = False

    def file_digest(
        self, rel: str, *, want_sha256: bool = False, st: os.stat_result | None = None
    ) -> FileDigest:
        """Digest of one regular file, from the memo when its stat proves it unchanged."""
        full = os.path.join(self.root, rel) if st is None else ""
        if st is None:
            st = os.stat(full)
        entry = _entry(self.files.get(rel))
        if (
            entry is not None
            and entry[0] == st.st_ino
            and entry[1] == st.st_size
            and entry[2] == st.st_mtime_ns
            and entry[3] == st.st_ctime_ns
            and st.st_mtime_ns + racy_window(st.st_mtime_ns) < entry[4]
            and (entry[6] is not None or not want_sha256)
        ):
            return FileDigest(size=entry[1], xxh=entry[5], sha256=entry[6])
        full = full or os.path.join(self.root, rel)
        seen = time.time_ns()
        digest = hash_file(full, want_sha256=want_sha256)
        st2 = os.stat(full)
        if (st2.st_mtime_ns, st2.st_size) == (st.st_mtime_ns, st.st_size):
            self.files[rel] = [
                st.st_ino,
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
                seen,
                digest.xxh,
                digest.sha256,
            ]
            self.dirty = True
        return digest

    def digest(
        self, rel: str, *, want_sha256: bool = False, out: bool = False
    ) -> tuple[FileDigest, bool]:
        """Digest of a file or directory (a tree); the bool is True for a directory. With
        ``out`` (a declared out), a directory is walked as outs are (links stored as links,
        see `tree_entries`), so the digest compares with the recorded one.

        One stat decides both the kind and the memo lookup (this is the no-op hot path)."""
        st = os.stat(os.path.join(self.root, rel))
        if stat.S_ISDIR(st.st_mode):
            entries = self.tree_entries(rel, want_sha256=want_sha256, confine=out)
            return hash_tree(entries), True
        return self.file_digest(rel, want_sha256=want_sha256, st=st), False

    def tree_entries(
        self, rel: str, *, want_sha256: bool, confine: bool = False
    ) -> list[tuple[str, FileDigest, str]]:
        """Per-entry digests and modes of a directory, sorted by relative path. With
        ``confine`` (an out) symlinks are entries of their own, digested by their target
        text (never followed), and one leading out of the workspace raises
        `digest.LinkOutside`."""
        full = os.path.join(self.root, rel)
        return [
            (
                sub,
                link_digest(path, want_sha256=want_sha256)
                if st is None
                else self.file_digest(f"{rel}/{sub}", want_sha256=want_sha256, st=st),
                mode,
            )
            for sub, path, mode, st in walk_tree_stat(
                full, confine=self.root if confine else None
            )
        ]

    def remember(self, rel: str, digest: FileDigest) -> None:
        """Record a digest we already know (a file we just restored or hashed)."""
        st = os.stat(os.path.join(self.root, rel))
        self.files[rel] = [
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            time.time_ns(),
            digest.xxh,
            digest.sha256,
        ]
        self.dirty = True
