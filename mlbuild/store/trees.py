"""Tree records: one compact binary record per directory the memo has digested, so a no-op
over a directory of 100,000 files is one walk and one comparison, not 100,000 lookups.

Per-file memo entries (state.json) cost a JSON object per file to load, check and save; a
directory out of 100k files made a no-op take seconds. A tree record keeps, for one
directory (walked as a dep or as an out, see ``confine``), every entry's name and stat in
two byte strings, the digests in two more, and the tree's own digest. A later walk packs
its stats the same way: equal bytes, and every file older than the racy window when the
record was made (store/state.py), mean the recorded tree digest holds, without touching
one digest. Otherwise each file whose stat still matches keeps its recorded digest and the
rest are hashed, as the per-file memo would.

Format of ``.mlbuild/trees/<xxh3 of rel and mode>.bin`` (version 1)::

    b"MLBTREE1\\n"
    one JSON line: {"rel", "confine", "seen", "count", "size", "xxh", "sha256"|null,
                    "has_sha"}
    names   count paths below the directory, UTF-8 (surrogateescape), each ending in NUL,
            sorted, as `digest.walk_packed` gives them
    stats   count x `digest.STAT` (ino, size, mtime_ns, ctime_ns, mode byte), as
            `digest.walk_packed` packs them
    xxh     count x 16 bytes (the file's xxh3-128)
    sha     count x 32 bytes (sha256), present iff has_sha
    check   16 bytes: the xxh3-128 of everything before it (a flipped bit is caught)

A record is only a cache, and its bytes are read back as hostile: `decode` checks every
length, type and name (relative, normalized, no NUL, sorted, unique) and returns None for
anything else, which makes the directory be hashed again. No path is ever made from a
record: its names are only compared with the names a walk found, and a digest it holds is
used only for a file whose walk found the same name with the same stat.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..digest import SHA, STAT, XXH, FileDigest, hash_bytes

__all__ = [
    "TREES_VERSION",
    "TreeRecord",
    "decode",
    "digests_bytes",
    "encode",
]

TREES_VERSION = 1
MAGIC = b"MLBTREE1\n"
_XXH_LEN = 16
_SHA_LEN = 32
_MAX_COUNT = 50_000_000  # far beyond any directory: a header claiming more is not read


@dataclass
class TreeRecord:
    """One directory as last digested: names, packed stats, per-file digests, its digest."""

    rel: str
    confine: bool
    seen: int  # time.time_ns() before the walk that made it (the racy rule's "hashed at")
    names: list[str]
    stats: bytes  # len(names) x STAT.size
    xxh: bytes  # len(names) x 16
    sha: bytes | None  # len(names) x 32, or None: made without sha256
    digest: FileDigest
    _index: dict[str, int] | None = None

    def index(self, name: str) -> int | None:
        """The position of ``name`` in the record (None: not in it)."""
        if self._index is None:
            self._index = {n: i for i, n in enumerate(self.names)}
        return self._index.get(name)

    def stat_at(self, i: int) -> bytes:
        return self.stats[i * STAT.size : (i + 1) * STAT.size]

    def entry_map(self) -> dict[str, tuple[str, str]]:
        """Every entry's name → (xxh3 digest, mode letter). A mode is the one packed with
        the stat: an entry whose stat was zeroed (changed while hashed) gets NUL, which
        equals no mode, so a comparison with it always differs."""
        hexes = self.xxh.hex()
        size = STAT.size
        return {
            name: (XXH + hexes[32 * i : 32 * i + 32], chr(self.stats[(i + 1) * size - 1]))
            for i, name in enumerate(self.names)
        }

    def file_digest(self, i: int) -> FileDigest:
        """The recorded digest of entry ``i``."""
        size = STAT.unpack_from(self.stats, i * STAT.size)[1]
        xxh = XXH + self.xxh[i * _XXH_LEN : (i + 1) * _XXH_LEN].hex()
        sha = None
        if self.sha is not None:
            sha = SHA + self.sha[i * _SHA_LEN : (i + 1) * _SHA_LEN].hex()
        return FileDigest(size=size, xxh=xxh, sha256=sha)


def encode(record: TreeRecord) -> bytes:
    """The bytes of ``record`` (see the module docstring)."""
    head = {
        "rel": record.rel,
        "confine": record.confine,
        "seen": record.seen,
        "count": len(record.names),
        "size": record.digest.size,
        "xxh": record.digest.xxh,
        "sha256": record.digest.sha256,
        "has_sha": record.sha is not None,
    }
    names = b"".join(n.encode("utf-8", "surrogateescape") + b"\0" for n in record.names)
    line = json.dumps(head, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    body = b"".join([MAGIC, line, names, record.stats, record.xxh, record.sha or b""])
    return body + _check(body)


def _check(body: bytes) -> bytes:
    """The trailing checksum: the 16 bytes of the xxh3-128 of ``body``."""
    return bytes.fromhex(hash_bytes(body)[len(XXH) :])


def digests_bytes(digests: Sequence[FileDigest]) -> tuple[bytes, bytes | None]:
    """The xxh and sha columns of a record for ``digests`` (sha None if any lacks one)."""
    xxh = b"".join(bytes.fromhex(d.xxh[len(XXH) :]) for d in digests)
    if any(d.sha256 is None for d in digests):
        return xxh, None
    return xxh, b"".join(bytes.fromhex(str(d.sha256)[len(SHA) :]) for d in digests)


def _head(data: bytes) -> tuple[dict[str, Any], int] | None:
    if not data.startswith(MAGIC):
        return None
    end = data.find(b"\n", len(MAGIC))
    if end < 0 or end - len(MAGIC) > 1 << 16:
        return None
    try:
        head = json.loads(data[len(MAGIC) : end])
    except (ValueError, RecursionError):
        return None
    return (head, end + 1) if isinstance(head, dict) else None


def _digest_of(head: dict[str, Any]) -> FileDigest | None:
    size, xxh, sha = head.get("size"), head.get("xxh"), head.get("sha256")
    if type(size) is not int or size < 0 or type(xxh) is not str:
        return None
    if not (xxh.startswith(XXH) and len(xxh) == len(XXH) + 32 and _is_hex(xxh[len(XXH) :])):
        return None
    if sha is not None and not (
        type(sha) is str
        and sha.startswith(SHA)
        and len(sha) == len(SHA) + 64
        and _is_hex(sha[len(SHA) :])
    ):
        return None
    return FileDigest(size=size, xxh=xxh, sha256=sha)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _names(blob: bytes, count: int) -> list[str] | None:
    """The NUL-terminated names of a record, if there are ``count`` of them, none empty.
    Names are only ever compared with the names a walk found (never opened, never joined
    to a path), so no more is asked of them."""
    if count == 0:
        return [] if not blob else None
    if not blob.endswith(b"\0"):
        return None
    names = blob[:-1].split(b"\0")
    if len(names) != count or b"" in names:
        return None
    return [n.decode("utf-8", "surrogateescape") for n in names]


def decode(data: bytes, rel: str, confine: bool) -> TreeRecord | None:
    """The record in ``data`` if it is exactly what `encode` writes for directory ``rel``
    walked with ``confine``; None for anything else (the directory is hashed again)."""
    if len(data) < _XXH_LEN or _check(data[:-_XXH_LEN]) != data[-_XXH_LEN:]:
        return None
    data = data[:-_XXH_LEN]
    parsed = _head(data)
    if parsed is None:
        return None
    head, at = parsed
    count, seen, has_sha = head.get("count"), head.get("seen"), head.get("has_sha")
    if head.get("rel") != rel or head.get("confine") is not confine:
        return None
    if type(count) is not int or not 0 <= count <= _MAX_COUNT or type(seen) is not int:
        return None
    if type(has_sha) is not bool:
        return None
    digest = _digest_of(head)
    if digest is None:
        return None
    tail = count * (STAT.size + _XXH_LEN + (_SHA_LEN if has_sha else 0))
    names_end = len(data) - tail
    if names_end < at:
        return None
    names = _names(data[at:names_end], count)
    if names is None:
        return None
    stats_end = names_end + count * STAT.size
    xxh_end = stats_end + count * _XXH_LEN
    return TreeRecord(
        rel=rel,
        confine=confine,
        seen=seen,
        names=names,
        stats=data[names_end:stats_end],
        xxh=data[stats_end:xxh_end],
        sha=data[xxh_end:] if has_sha else None,
        digest=digest,
    )
