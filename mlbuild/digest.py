"""Content digests, canonical encoding and build keys.

A digest is a string that always names its algorithm: ``xxh3-128:<32 hex>`` (the cache
address, fast) or ``sha256:<64 hex>`` (for provenance and attestations).

Files are hashed by streaming (or mmap for large files, which avoids a copy into Python
memory). Outputs get both digests from one read; sources only need xxh3 to decide
staleness.

A directory is described by a *tree*: the sorted list of ``[relpath, xxh3 digest, mode]``
entries (mode is ``"x"`` for an executable file, ``"f"`` otherwise). The directory's digest is
the xxh3 of the tree's canonical JSON, prefixed ``xxh3-128:``; its sha256 is computed the same
way over ``[relpath, sha256 digest, mode]``. Empty directories inside a tree are not recorded
(as in git); an empty out directory has the tree ``[]``.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import stat
from dataclasses import dataclass
from typing import Any

import xxhash

__all__ = [
    "KEY_SCHEMA_VERSION",
    "FileDigest",
    "TreeEntry",
    "build_key",
    "canonical_json",
    "hash_bytes",
    "hash_file",
    "hash_tree",
    "walk_tree",
]

#: Bump when the meaning of a build key changes; old run-cache entries then stop matching.
KEY_SCHEMA_VERSION = 1

XXH = "xxh3-128:"
SHA = "sha256:"
_CHUNK = 1 << 20
_MMAP_MIN = 1 << 22


@dataclass(frozen=True)
class FileDigest:
    """Size and digests of one file (``sha256`` is None when it was not asked for)."""

    size: int
    xxh: str
    sha256: str | None


TreeEntry = tuple[str, str, str]  # (relpath, digest, mode)


def canonical_json(value: Any) -> str:
    """The one canonical encoding: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def hash_bytes(data: bytes) -> str:
    """xxh3-128 digest string of an in-memory value."""
    return XXH + xxhash.xxh3_128_hexdigest(data)


def hash_file(path: str | os.PathLike[str], *, want_sha256: bool) -> FileDigest:
    """Digest one file in a single read; both digests come from the same bytes."""
    xh = xxhash.xxh3_128()
    sh = hashlib.sha256() if want_sha256 else None
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size >= _MMAP_MIN:
            # mmap avoids copying the file into Python memory; both hashes release the GIL.
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                view = memoryview(m)
                try:
                    for start in range(0, size, 1 << 26):
                        chunk = view[start : start + (1 << 26)]
                        xh.update(chunk)
                        if sh is not None:
                            sh.update(chunk)
                        chunk.release()
                finally:
                    view.release()
        else:
            while True:
                block = f.read(_CHUNK)
                if not block:
                    break
                xh.update(block)
                if sh is not None:
                    sh.update(block)
    return FileDigest(
        size=size,
        xxh=XXH + xh.hexdigest(),
        sha256=None if sh is None else SHA + sh.hexdigest(),
    )


def walk_tree(root: str) -> list[tuple[str, str, bool]]:
    """Sorted ``(relpath, abspath, executable)`` of every file below ``root``.

    Symlinks are followed for files (a symlinked dep is tracked by what it points to);
    directory symlinks are not descended, so a tree can never loop.
    """
    found: list[tuple[str, str, bool]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in filenames:
            full = os.path.join(dirpath, name)
            try:
                st = os.stat(full)
            except FileNotFoundError:
                continue  # dangling symlink: not content
            if not stat.S_ISREG(st.st_mode):
                continue
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            found.append((rel, full, bool(st.st_mode & stat.S_IXUSR)))
    found.sort()
    return found


def hash_tree(entries: list[tuple[str, FileDigest, bool]]) -> FileDigest:
    """Digest of a directory from its files' digests (see the module docstring)."""
    entries = sorted(entries, key=lambda e: e[0])
    xtree = [[rel, d.xxh, "x" if ex else "f"] for rel, d, ex in entries]
    size = sum(d.size for _, d, _ in entries)
    sha: str | None = None
    if all(d.sha256 is not None for _, d, _ in entries):
        stree = [[rel, d.sha256, "x" if ex else "f"] for rel, d, ex in entries]
        sha = SHA + hashlib.sha256(canonical_json(stree).encode()).hexdigest()
    return FileDigest(size=size, xxh=hash_bytes(canonical_json(xtree).encode()), sha256=sha)


def build_key(components: dict[str, Any]) -> str:
    """The build key: xxh3-128 of the canonical encoding of the key components."""
    return hash_bytes(canonical_json({"schema": KEY_SCHEMA_VERSION, **components}).encode())
