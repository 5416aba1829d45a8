"""Content digests, canonical encoding and build keys.

A digest is a string that always names its algorithm: ``xxh3-128:<32 hex>`` (the cache
address, fast) or ``sha256:<64 hex>`` (for provenance and attestations).

Files are hashed by streaming reads into one reused buffer (no mmap: see `hash_file`).
Outputs get both digests from one read; sources only need xxh3 to decide
staleness.

A directory is described by a *tree*: the sorted list of ``[relpath, xxh3 digest, mode]``
entries (mode is ``"x"`` for an executable file, ``"f"`` for another file, ``"l"`` for a
symlink inside a directory *out*, whose digest is that of the link's target text, as git
stores links). The directory's digest is
the xxh3 of the tree's canonical JSON, prefixed ``xxh3-128:``; its sha256 is computed the same
way over ``[relpath, sha256 digest, mode]``. Empty directories inside a tree are not recorded
(as in git); an empty out directory has the tree ``[]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import xxhash

from .errors import MlbuildError
from .kinds import EntryMode

__all__ = [
    "KEY_SCHEMA_VERSION",
    "STAT",
    "FileChanged",
    "FileDigest",
    "LinkOutside",
    "PackedWalk",
    "TreeEntry",
    "build_key",
    "canonical_json",
    "hash_bytes",
    "hash_file",
    "file_mode",
    "hash_tree",
    "link_digest",
    "same_value",
    "tree_object",
    "walk_packed",
    "walk_tree",
]

#: Bump when the meaning of a build key changes; old run-cache entries then stop matching.
KEY_SCHEMA_VERSION = 1

XXH = "xxh3-128:"
SHA = "sha256:"
_CHUNK = 1 << 20  # one reused 1 MiB buffer: as fast as mmap from the page cache (measured)


class FileChanged(MlbuildError):
    """A file changed while it was being read: its digest would describe no real state."""


class LinkOutside(MlbuildError):
    """A directory out holds a symlink that leads out of the workspace."""


@dataclass(frozen=True, slots=True)
class FileDigest:
    """Size and digests of one file (``sha256`` is None when it was not asked for)."""

    size: int
    xxh: str
    sha256: str | None


TreeEntry = tuple[str, str, str]  # (relpath, xxh3 digest, mode: an EntryMode word)


def canonical_json(value: Any) -> str:
    """The one canonical encoding: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def same_value(a: Any, b: Any) -> bool:
    """Whether two recorded values are equal as the build key compares them: by their
    canonical JSON text. Python's ``==`` calls ``50`` and ``50.0``, ``1`` and ``True``,
    ``0`` and ``False`` equal, yet each pair gives another key: every report (explain,
    status, params diff, audit) compares with this, so it names the change that reruns."""
    return canonical_json(a) == canonical_json(b)


def hash_bytes(data: bytes) -> str:
    """xxh3-128 digest string of an in-memory value."""
    return XXH + xxhash.xxh3_128_hexdigest(data)


def hash_file(path: str | os.PathLike[str], *, want_sha256: bool) -> FileDigest:
    """Digest one file in a single read; both digests come from the same bytes.

    Plain reads into one reused buffer, never mmap: a file truncated by another process
    while it is read gives a short read here (reported as `FileChanged`), where a mapped
    page past the new end would kill the whole process with SIGBUS. Both hashes release
    the GIL on large buffers."""
    xh = xxhash.xxh3_128()
    sh = hashlib.sha256() if want_sha256 else None
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        buf = bytearray(min(_CHUNK, max(size, 1)))
        view = memoryview(buf)
        total = 0
        try:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                chunk = view[:n]
                xh.update(chunk)
                if sh is not None:
                    sh.update(chunk)
                chunk.release()
                total += n
        finally:
            view.release()
    if total != size:
        raise FileChanged(
            f"{os.fspath(path)} changed size while it was being hashed ({size} -> {total} bytes)",
            hint="run mlbuild again once nothing else writes to it",
        )
    return FileDigest(
        size=size,
        xxh=XXH + xh.hexdigest(),
        sha256=None if sh is None else SHA + sh.hexdigest(),
    )


def walk_tree(root: str, *, confine: str | None = None) -> list[tuple[str, str, str]]:
    """Sorted ``(relpath, abspath, mode)`` of every file below ``root`` (mode: see the
    module docstring; the walk is `walk_packed`'s)."""
    walk = walk_packed(root, confine=confine)
    return [(rel, os.path.join(root, rel), walk.mode(i)) for i, rel in enumerate(walk.names)]


#: One entry's stat as a walk packs it and a tree record (store/trees.py) stores it: inode,
#: size, mtime_ns, ctime_ns and the mode letter's ``ord``.
STAT = struct.Struct("<QQqqB")


@dataclass(frozen=True)
class PackedWalk:
    """Every file below a directory, as one walk found it: the sorted relative paths and
    their stats packed into one byte string (`STAT` each), in the layout of a tree record,
    so that a no-op compares two byte strings instead of 100,000 stat objects."""

    names: list[str]
    stats: bytes
    settled: int  # window(mtime) + mtime of the file racy the longest (0: no window)

    def mode(self, i: int) -> str:
        """Entry ``i``'s mode letter (the last byte of its packed stat)."""
        return chr(self.stats[(i + 1) * STAT.size - 1])


_S = os.sep
_LINK: str = EntryMode.LINK.value
_EXEC: str = EntryMode.EXEC.value  # once: the walk asks per file
_FILE: str = EntryMode.FILE.value
_O_LINK, _O_EXEC, _O_FILE = ord(_LINK), ord(_EXEC), ord(_FILE)  # packed mode bytes


def walk_packed(
    root: str, *, confine: str | None = None, window: Callable[[int], int] | None = None
) -> PackedWalk:
    """Walk ``root`` once, with one ``stat`` per file, packing as it goes.

    Without ``confine`` (a dep), symlinks are followed for files (a symlinked dep is
    tracked by what it points to) and directory symlinks are not descended, so a tree can
    never loop. With ``confine`` (a directory out; ``confine`` is the workspace), every
    symlink is an entry of its own, mode ``"l"`` with its own ``lstat``, never followed,
    as git stores links; one whose target resolves outside ``confine`` is refused with
    `LinkOutside`: what it points to must never be copied into the cache (and pushed) as
    if it were an output. ``window`` (store/state.py's racy rule) gives ``settled``.

    Each directory is listed and sorted on its own and its subdirectories are walked in
    their place (keyed ``name/``), which yields the global sort of the relative paths
    without sorting 100,000 of them at once; the walk keeps its own stack of listings, so
    a tree nested thousands deep is no RecursionError."""
    base = None if confine is None else os.path.realpath(confine)
    names: list[str] = []
    stats: list[bytes] = []
    settled = 0
    rows, settled = _listing(root, "", base, window, settled)
    stack = [iter(rows)]
    while stack:
        for key, packed, path in stack[-1]:
            if path:  # a subdirectory: its entries come next, then the rest of this one
                rows, settled = _listing(path, key, base, window, settled)
                stack.append(iter(rows))
                break
            names.append(key)
            stats.append(packed)
        else:
            stack.pop()
    return PackedWalk(names, b"".join(stats), settled)


def _listing(
    directory: str,
    prefix: str,
    base: str | None,
    window: Callable[[int], int] | None,
    settled: int,
) -> tuple[list[tuple[str, bytes, str]], int]:
    """One directory of `walk_packed`, sorted: ``(relpath, packed stat, "")`` per file and
    ``(relpath + "/", b"", path)`` per subdirectory; and ``settled`` updated."""
    rows: list[tuple[str, bytes, str]] = []
    pack = STAT.pack
    with os.scandir(directory) as it:
        for entry in it:
            if base is not None and entry.is_symlink():
                full = entry.path
                real = os.path.realpath(full)
                if real != base and not real.startswith(base + _S):
                    raise LinkOutside(
                        f"{full} is a symlink leading outside the workspace "
                        f"(to {os.readlink(full)}); mlbuild never copies what it points to",
                        hint="write the file itself into the out, or remove the link",
                    )
                st = os.lstat(full)
                mode = _O_LINK
            elif entry.is_dir(follow_symlinks=False):
                rows.append((prefix + entry.name + "/", b"", entry.path))
                continue
            else:
                try:
                    st = entry.stat()  # follows a symlink: a linked file is tracked by content
                except FileNotFoundError:
                    continue  # dangling symlink: not content
                if not stat.S_ISREG(st.st_mode):
                    continue
                mode = _O_EXEC if st.st_mode & stat.S_IXUSR else _O_FILE
            mtime = st.st_mtime_ns
            if window is not None and mtime + window(mtime) > settled:
                settled = mtime + window(mtime)
            try:
                packed = pack(st.st_ino, st.st_size, mtime, st.st_ctime_ns, mode)
            except struct.error:  # out of range: zeros never match, the file is hashed
                packed = bytes(STAT.size)
            rows.append((prefix + entry.name, packed, ""))
    rows.sort()
    return rows, settled


def file_mode(executable: bool) -> str:
    """The tree mode of a regular file (the word written: tree objects are hashed)."""
    return _EXEC if executable else _FILE


def link_digest(path: str, *, want_sha256: bool) -> FileDigest:
    """The digest of a symlink as a tree stores it: of its target text, not followed."""
    text = os.fsencode(os.readlink(path))
    return FileDigest(
        size=len(text),
        xxh=hash_bytes(text),
        sha256=SHA + hashlib.sha256(text).hexdigest() if want_sha256 else None,
    )


def tree_object(entries: list[tuple[str, FileDigest, str]]) -> bytes:
    """THE encoding of a tree object (see the module doc): the bytes stored in the cache
    and on a remote, whose xxh3 is the directory's digest."""
    ordered = sorted(entries, key=lambda e: e[0])
    return canonical_json([[rel, d.xxh, mode] for rel, d, mode in ordered]).encode()


def hash_tree(entries: list[tuple[str, FileDigest, str]]) -> FileDigest:
    """Digest of a directory from its entries' digests and modes (see the module doc)."""
    entries = sorted(entries, key=lambda e: e[0])
    size = sum(d.size for _, d, _ in entries)
    sha: str | None = None
    if all(d.sha256 is not None for _, d, _ in entries):
        stree = [[rel, d.sha256, mode] for rel, d, mode in entries]
        sha = SHA + hashlib.sha256(canonical_json(stree).encode()).hexdigest()
    return FileDigest(size=size, xxh=hash_bytes(tree_object(entries)), sha256=sha)


def build_key(components: dict[str, Any]) -> str:
    """The build key: xxh3-128 of the canonical encoding of the key components."""
    return hash_bytes(canonical_json({"schema": KEY_SCHEMA_VERSION, **components}).encode())
