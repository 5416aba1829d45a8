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

import contextlib
import json
import os
import stat
import time
from collections.abc import Collection
from typing import Any

from .. import observe
from ..digest import (
    STAT,
    XXH,
    FileDigest,
    PackedWalk,
    hash_bytes,
    hash_file,
    hash_tree,
    link_digest,
    walk_packed,
)
from ..kinds import EntryMode
from .atomic import atomic_write
from .records import SHA_PATTERN, XXH_PATTERN
from .trees import TreeRecord, decode, digests_bytes, encode

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

    def __init__(self, root: str, path: str | None, trees_dir: str | None = None) -> None:
        self.root = root
        self.path = path
        self.trees_dir = trees_dir  # None: no tree records (a scratch memo)
        self._trees: dict[tuple[str, bool], TreeRecord | None] = {}
        self._trees_dirty: dict[tuple[str, bool], TreeRecord] = {}
        self._walked: dict[tuple[str, bool], TreeRecord] = {}  # what this process walked
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
        with contextlib.suppress(OSError):  # records are a cache: a directory is re-hashed
            self._save_trees()
        if self.path is None or not self.dirty:
            return
        body = {"version": STATE_VERSION, "files": self.files, "imports": self.imports}
        atomic_write(self.path, json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
        self.dirty = False

    def trusted(
        self, rel: str, key: tuple[int, int, int, int], want_sha256: bool
    ) -> FileDigest | None:
        """The per-file memo's digest of ``rel`` if ``key`` (ino, size, mtime_ns, ctime_ns)
        proves it unchanged (the one "trusted by its stat" rule; the no-op stamp records a
        file's stat only through it)."""
        entry = _entry(self.files.get(rel))
        ino, size, mtime, ctime = key
        if (
            entry is not None
            and entry[0] == ino
            and entry[1] == size
            and entry[2] == mtime
            and entry[3] == ctime
            and mtime + racy_window(mtime) < entry[4]
            and (entry[6] is not None or not want_sha256)
        ):
            return FileDigest(size=entry[1], xxh=entry[5], sha256=entry[6])
        return None

    def trusted_tree(self, rel: str, out: bool, xxh: str) -> bool:
        """Whether the tree record of directory ``rel`` that this memo holds (the one
        `save` writes) has digest ``xxh`` and every file in it had settled when it was
        made: then `recorded_tree` answers ``xxh`` for as long as one walk finds the
        record's names and stats, and nothing else. The no-op stamp records a directory
        only through it, so the build that writes the stamp need not walk 100,000 files
        again to know its next check can hold (stamp.py)."""
        record = self._trees.get((rel, out))
        if record is None or record.digest.xxh != xxh:
            return False
        seen = record.seen
        return all(m + racy_window(m) < seen for _, _, m, _, _ in STAT.iter_unpack(record.stats))

    def file_digest(
        self, rel: str, *, want_sha256: bool = False, st: os.stat_result | None = None
    ) -> FileDigest:
        """Digest of one regular file, from the memo when its stat proves it unchanged."""
        full = os.path.join(self.root, rel)
        if st is None:
            st = os.stat(full)
        key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        hit = self.trusted(rel, key, want_sha256)
        observer = observe.active()
        if hit is not None:
            if observer is not None:
                observer.digests[rel] = (hit.xxh, False, False)
            return hit
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
        if observer is not None:
            observer.digests[rel] = (digest.xxh, False, False)
        return digest

    def digest(
        self, rel: str, *, want_sha256: bool = False, out: bool = False
    ) -> tuple[FileDigest, bool]:
        """Digest of a file or directory (a tree); the bool is True for a directory. With
        ``out`` (a declared out), a directory is walked as outs are (links stored as links,
        see `tree_entries`), so the digest compares with the recorded one.

        One stat decides both the kind and the memo lookup (this is the no-op hot path)."""
        observer = observe.active()
        try:
            st = os.stat(os.path.join(self.root, rel))
        except (FileNotFoundError, NotADirectoryError):
            if observer is not None:
                observer.digests[rel] = (None, False, out)
            raise
        if stat.S_ISDIR(st.st_mode):
            digest = self._tree(rel, want_sha256, out, need_entries=False)[1]
            if observer is not None:
                observer.digests[rel] = (digest.xxh, True, out)
            return digest, True
        return self.file_digest(rel, want_sha256=want_sha256, st=st), False

    def tree_entries(
        self, rel: str, *, want_sha256: bool, confine: bool = False
    ) -> list[tuple[str, FileDigest, str]]:
        """Per-entry digests and modes of a directory, sorted by relative path. With
        ``confine`` (an out) symlinks are entries of their own, digested by their target
        text (never followed), and one leading out of the workspace raises
        `digest.LinkOutside`."""
        return self.tree(rel, want_sha256=want_sha256, confine=confine)[0]

    def tree(
        self, rel: str, *, want_sha256: bool, confine: bool = False
    ) -> tuple[list[tuple[str, FileDigest, str]], FileDigest]:
        """`tree_entries` and the directory's digest from the same walk (the commit of an
        out: the tree object of 100,000 entries is encoded and hashed once, not again)."""
        entries, digest = self._tree(rel, want_sha256, confine, need_entries=True)
        assert entries is not None
        return entries, digest

    def forget_walks(self, rels: Collection[str]) -> None:
        """Start a decision about outs ``rels``: only a check made from now on may serve
        `out_entries` (the restore that follows), never an older one."""
        for rel in rels:
            self._walked.pop((rel, True), None)

    def out_entries(self, rel: str) -> dict[str, tuple[str, str]]:
        """The entries of the out directory ``rel`` (name → (xxh3 digest, mode)) as the
        check of the decision about it walked them (`digest` with ``out``, after
        `forget_walks`), else as walked now: the restore that follows compares the same
        walk with the tree, without a second walk of 100,000 files. Used once: the
        restore changes the directory."""
        record = self._walked.pop((rel, True), None)
        if record is None:
            self._tree(rel, False, True, need_entries=False)
            record = self._walked.pop((rel, True))
        return record.entry_map()

    def hash_restored(self, rel: str, path: str) -> dict[str, tuple[str, str]]:
        """Hash every entry of ``path``, a directory just filled from the cache that is to
        become the out ``rel`` by a rename (which keeps its files' stats), and keep what
        was found as ``rel``'s tree record: the restore's verification read (each file
        against its object, `Cache.restore_out`) then also spares the next no-op from
        hashing 100,000 files. Nothing is taken from a memo: every file is read. Returns
        name → (xxh3 digest, mode).

        It first waits out the fine racy window (50 ms, once per directory restored): the
        files just written are then settled when read, so the next no-op trusts the
        whole record instead of reading the last-written ones again and remaking it. On a
        filesystem with coarse timestamps the window is longer; those few are read again
        then, as any racy file is."""
        time.sleep(FINE_RACY_NS / 1e9)
        entries, _ = self._tree(rel, False, True, need_entries=True, path=path)
        assert entries is not None
        return {name: (digest.xxh, mode) for name, digest, mode in entries}

    def drop_record(self, rel: str) -> None:
        """Forget the record of out ``rel`` made by `hash_restored` (its restore failed)."""
        self._trees[(rel, True)] = None
        self._trees_dirty.pop((rel, True), None)
        self._walked.pop((rel, True), None)

    # Longer than 60 lines: the fast path and the per-file path share the walk's packed
    # stats; split, each half would redo or pass around most of the other's state.
    def recorded_tree(self, rel: str, out: bool) -> str | None:
        """The digest of directory ``rel`` from its tree record if one walk finds every
        name and stat as recorded (and settled before the record was made), else None:
        a stat-only answer that reads no file (the no-op stamp's check, stamp.py;
        a changed file is read once, by the build that follows, not twice)."""
        walk = walk_packed(
            os.path.join(self.root, rel), confine=self.root if out else None, window=racy_window
        )
        record = self._tree_record(rel, out)
        if (
            record is not None
            and walk.settled < record.seen
            and record.names == walk.names
            and record.stats == walk.stats
        ):
            return record.digest.xxh
        return None

    def _tree(
        self,
        rel: str,
        want_sha256: bool,
        confine: bool,
        *,
        need_entries: bool,
        path: str | None = None,
    ) -> tuple[list[tuple[str, FileDigest, str]] | None, FileDigest]:
        """A directory's entries (None unless ``need_entries`` or they had to be computed)
        and its digest, through its tree record (store/trees.py): one walk; when every
        name and stat equals the record's and every file was older than the racy window
        when it was made, the recorded digest, without a digest lookup per file. With
        ``path`` (`hash_restored`), that directory is walked and every file hashed, and the
        record made is ``rel``'s."""
        seen = time.time_ns()
        full = os.path.join(self.root, rel) if path is None else path
        walk = walk_packed(full, confine=self.root if confine else None, window=racy_window)
        fresh = path is not None  # nothing known about these files: hash each one
        record = None if fresh else self._tree_record(rel, confine)
        if record is not None and want_sha256 and record.sha is None:
            record = None  # made without sha256: its digests cannot serve this walk
        if (
            record is not None
            and walk.settled < record.seen
            and record.names == walk.names
            and record.stats == walk.stats
        ):
            if confine and not need_entries:  # an out checked (see out_entries)
                self._walked[(rel, confine)] = record
            if not need_entries:
                return None, record.digest
            modes = [walk.mode(i) for i in range(len(walk.names))]
            entries = [(n, record.file_digest(i), modes[i]) for i, n in enumerate(walk.names)]
            return entries, record.digest
        hashed: dict[str, tuple[FileDigest, bool]] = {}  # read by _same_digests already
        if record is not None and not need_entries and record.names == walk.names:
            same = self._same_digests(rel, full, record, walk, want_sha256, seen, hashed)
            if same is not None:  # stats changed, bytes did not (a touch): same tree
                self._trees[(rel, confine)] = self._trees_dirty[(rel, confine)] = same
                if confine:
                    self._walked[(rel, confine)] = same
                return None, same.digest
        entries = []
        packed = bytearray(walk.stats)
        size = STAT.size
        for i, (sub, fields) in enumerate(
            zip(walk.names, STAT.iter_unpack(walk.stats), strict=True)
        ):
            ino, nbytes, m, ctime, mode_byte = fields
            mode = chr(mode_byte)
            entry_path = os.path.join(full, sub)
            j = record.index(sub) if record is not None else None
            if (
                j is not None
                and record is not None
                and record.stat_at(j) == walk.stats[i * size : (i + 1) * size]
                and m + racy_window(m) < record.seen
            ):
                digest = record.file_digest(j)
            elif mode == EntryMode.LINK.value:  # a link of an out: its target text
                digest = link_digest(entry_path, want_sha256=want_sha256)
            elif self.trees_dir is None and not fresh:  # no records: the per-file memo
                digest = self.file_digest(f"{rel}/{sub}", want_sha256=want_sha256)
            else:
                done = hashed.get(sub)
                digest, moved = done or self._read_entry(
                    f"{rel}/{sub}", entry_path, (ino, nbytes, m, ctime), want_sha256, fresh=fresh
                )
                if moved:
                    packed[i * size : (i + 1) * size] = bytes(size)  # never trusted
            entries.append((sub, digest, mode))
        tree = hash_tree(entries)
        if self.trees_dir is not None:
            xxh, sha = digests_bytes([d for _, d, _ in entries])
            new = TreeRecord(rel, confine, seen, walk.names, bytes(packed), xxh, sha, tree)
            self._trees[(rel, confine)] = new
            self._trees_dirty[(rel, confine)] = new
            if confine and not need_entries:
                self._walked[(rel, confine)] = new
        return entries, tree

    def _same_digests(
        self,
        rel: str,
        full: str,
        record: TreeRecord,
        walk: PackedWalk,
        want_sha256: bool,
        seen: int,
        hashed: dict[str, tuple[FileDigest, bool]],
    ) -> TreeRecord | None:
        """When a walk finds the record's names but some stats changed: hash only the
        entries whose stat differs (or that are racy); if each still has its recorded
        digest and mode, the tree is the recorded one, and the new record (the new stats)
        is returned without rebuilding 100,000 entries. None: some digest or mode differs
        (the caller computes the tree, reusing what was read here: ``hashed``, name →
        (digest, changed while read)), or a link entry changed."""
        size = STAT.size
        old, new = record.stats, walk.stats
        racy = walk.settled >= record.seen  # else no entry can be racy: skip the unpack
        packed: bytearray | None = None
        for i, sub in enumerate(walk.names):
            a, b = i * size, (i + 1) * size
            if old[a:b] == new[a:b]:
                if not racy:
                    continue
                m = STAT.unpack_from(new, a)[2]
                if m + racy_window(m) < record.seen:
                    continue
            ino, nbytes, m, ctime, mode_byte = STAT.unpack_from(new, a)
            if mode_byte != old[b - 1] or chr(mode_byte) == EntryMode.LINK.value:
                return None
            digest, moved = hashed[sub] = self._read_entry(
                f"{rel}/{sub}", os.path.join(full, sub), (ino, nbytes, m, ctime), want_sha256
            )
            known = record.file_digest(i)
            # Equal xxh3-128 is equal bytes (the cache's own identity), so the recorded
            # sha256 still holds where this hash did not compute one.
            if (digest.xxh, digest.size) != (known.xxh, known.size) or (
                digest.sha256 is not None and digest.sha256 != known.sha256
            ):
                return None
            if packed is None:
                packed = bytearray(new)
            if moved:
                packed[a:b] = bytes(size)  # changed while hashed: never trusted
        stats = new if packed is None else bytes(packed)
        return TreeRecord(
            rel, record.confine, seen, walk.names, stats, record.xxh, record.sha, record.digest
        )

    def _read_entry(
        self,
        rel: str,
        path: str,
        key: tuple[int, int, int, int],
        want_sha256: bool,
        *,
        fresh: bool = False,
    ) -> tuple[FileDigest, bool]:
        """One file of a directory walk (``key``: its walked ino, size, mtime_ns,
        ctime_ns): the per-file memo's digest when ``key`` proves it (never with
        ``fresh``), else the file read; the bool is True when it changed while read, so
        that its stat is never trusted."""
        hit = None if fresh else self.trusted(rel, key, want_sha256)
        if hit is not None:
            return hit, False
        digest = hash_file(path, want_sha256=want_sha256)
        after = os.stat(path)
        return digest, (after.st_mtime_ns, after.st_size) != (key[2], key[1])

    def _tree_file(self, rel: str, confine: bool) -> str:
        """Where the record of ``rel`` (walked with ``confine``) lives: a name made by
        hashing, so no directory name, however odd, becomes a path of its own."""
        assert self.trees_dir is not None
        name = hash_bytes(f"{rel}\0{int(confine)}".encode("utf-8", "surrogateescape"))
        return os.path.join(self.trees_dir, name[len(XXH) :] + ".bin")

    def _tree_record(self, rel: str, confine: bool) -> TreeRecord | None:
        """The record of ``rel`` (loaded once; None: none, or not one `trees.decode`
        accepts)."""
        key = (rel, confine)
        if key not in self._trees:
            record = None
            if self.trees_dir is not None:
                try:
                    with open(self._tree_file(rel, confine), "rb") as f:
                        record = decode(f.read(), rel, confine)
                except OSError:
                    record = None
            self._trees[key] = record
        return self._trees[key]

    def _save_trees(self) -> None:
        """Write the records made since the last save; drop the per-file entries they
        replace (state.json then holds no entry per file of a directory)."""
        if not self._trees_dirty or self.trees_dir is None:
            return
        os.makedirs(self.trees_dir, exist_ok=True)
        prefixes = tuple(rel + "/" for rel, _ in self._trees_dirty)
        for (rel, confine), record in sorted(self._trees_dirty.items()):
            atomic_write(self._tree_file(rel, confine), encode(record))
        self._trees_dirty.clear()
        stale = [k for k in self.files if k.startswith(prefixes)]
        for k in stale:
            del self.files[k]
        self.dirty = self.dirty or bool(stale)

    def restat(self, rel: str) -> None:
        """After the cache hardlinked the out ``rel`` (``cache.link``): linking it and
        making it read-only changed each file's ctime, not its bytes. The memo takes the
        new ctime of every file whose inode, size and mtime are those it hashed, so the
        next no-op does not hash the out again. A file written since has another mtime,
        or one inside the racy window, which the memo does not trust anyway."""
        full = os.path.join(self.root, rel)
        entry = _entry(self.files.get(rel))
        if entry is not None:
            with contextlib.suppress(OSError):
                st = os.stat(full)
                if [st.st_ino, st.st_size, st.st_mtime_ns] == entry[:3]:
                    entry[3] = st.st_ctime_ns
                    self.dirty = True
        record = self._trees.get((rel, True))
        if record is None:
            return
        stats = bytearray(record.stats)
        for i, name in enumerate(record.names):
            ino, size, mtime, _, mode = STAT.unpack_from(stats, i * STAT.size)
            try:
                st = os.lstat(os.path.join(full, *name.split("/")))
            except OSError:
                continue
            if (st.st_ino, st.st_size, st.st_mtime_ns) == (ino, size, mtime):
                STAT.pack_into(stats, i * STAT.size, ino, size, mtime, st.st_ctime_ns, mode)
        record.stats = bytes(stats)
        self._trees_dirty[(rel, True)] = record

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
