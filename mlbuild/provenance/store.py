"""ManifestStore: manifests on disk, append-only, read back through the strict parser.

Store layout under ``.mlbuild/manifests/``::

    ab/cdef….json           the manifest with id sha256:abcdef…, written once, atomically
    ab/cdef….sig.json        its signature, when a key is configured (signing.py)
    index/<name>.jsonl       one id per line, oldest first: the target's build history
    reproductions/<name>.jsonl   likewise, its reproductions (never in the build history,
                             so no reproduction can become a target's current manifest)

``<name>`` is `store.layout.target_file_name` of the target, the one injective mapping
every per-target file uses: ``model:prod`` → ``model__prod``, while ``a__b`` (which
would collide with ``a:b``), a name starting with ``.``, or one with ``_:`` or ``:_`` is
percent-encoded behind a ``%``.

Manifests are append-only: nothing but an explicit ``gc`` removes one.

Reading one back crosses the trust boundary: `ManifestStore.get` calls
`parse.parse_manifest`, the one strict parser. An id becomes a path only through
`ManifestStore.path`, which refuses anything but ``sha256:`` + 64 hex, so no id read from
a remote or a file can climb out of the manifests directory. A history index is only a
list of pointers, and a line counts for a target only if it points at a manifest OF that
target (its ``target`` field, checked by loading it): a line that is not an id, or is the
id of another target's manifest, is skipped (`history`, `current`, `reproductions`) and
reported (`index_problems`; the audit names it). A line whose manifest is missing or
corrupt is kept: whoever uses it names that problem (the history lists it, the audit and
``manifest show`` refuse it as the current build).

Histories written before the injective names: mlbuild used to name the file
``target.replace(":", "__")``, so ``a:b`` and ``a__b`` shared ``a__b.jsonl``. For every name
`target_file_name` writes readably the old and the new file are the same. For an encoded
name whose new file does not exist yet, the old file is read instead, keeping only the
lines whose manifest is this target's (a line that cannot be read to check it is skipped
and reported), so the other target's builds never leak in; the first append under the
new name starts the new file with those lines (`_start_from_legacy`), so the history goes
on. A line of the target that shared the old file (``a__b``'s in ``a:b``'s file, or
the reverse) is skipped without a report: it was written there, legitimately, before.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..digest import canonical_json
from ..kinds import ManifestStatus
from ..store.atomic import SyncPoint, atomic_write, fsync_dir, fsync_file
from ..store.layout import target_file_name
from .findings import AuditCheck
from .parse import parse_manifest
from .records import (
    Manifest,
    ManifestError,
    check_manifest_id,
    is_manifest_id,
    is_restore,
    manifest_id,
    show_value,
)
from .views import restore_view

if TYPE_CHECKING:
    from .signing import SigningKey

__all__ = ["ManifestStore"]

_KEY_ID = re.compile(r"[0-9a-f]{64}")
#: How many restores of restores (``rollback --to`` a restore) are followed to the build.
_MAX_RESTORE_CHAIN = 32


def _legacy_file_name(target: str) -> str:
    """The history file name mlbuild gave ``target`` before `target_file_name` (not
    injective: ``a:b`` and ``a__b`` both got ``a__b``); read for compatibility only."""
    return target.replace(":", "__").replace("/", "_") + ".jsonl"


def _read_or_none(path: str, unreadable: Callable[[str], ManifestError]) -> bytes | None:
    """The bytes of ``path``; None when it does not exist; any other OSError raises
    ``unreadable(strerror)``: a file that is there but unreadable is never taken for an
    absent one."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise unreadable(str(exc.strerror)) from None


class ManifestStore:
    """Append-only manifests plus a per-target history index.

    Every read goes through the strict parser: `get` returns a checked record, None for
    a manifest that is not there, and raises ManifestError for one that is there but
    unusable. Messages name files relative to the workspace (the directory holding
    ``.mlbuild/``)."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        # Latest id per target written through this store: a build links every dep to its
        # producer's current manifest without re-reading the growing history file.
        self._latest: dict[str, str] = {}
        # Target of each manifest id read so far: an id is the digest of its manifest, so
        # once the strict parser has read it, its target is known for good.
        self._owners: dict[str, str] = {}
        # A build's batched durability (atomic.SyncPoint, shared with the cache): None,
        # each manifest and history line is fsynced as it is written.
        self.sync_point: SyncPoint | None = None

    def shown(self, path: str) -> str:
        """``path`` as messages name it: relative to the workspace root."""
        return os.path.relpath(path, os.path.dirname(os.path.dirname(self.dir)))

    def path(self, mid: str) -> str:
        """The file of manifest ``mid``; ManifestError unless ``mid`` is a well-formed id
        (the only way an id becomes a path, so none can leave the manifests directory)."""
        hexd = check_manifest_id(mid).split(":", 1)[1]
        return os.path.join(self.dir, hexd[:2], hexd[2:] + ".json")

    def _index(self, target: str, kind: str = "index") -> str:
        """The history index of ``target``'s builds and restores (``kind`` "index"), or of
        its reproductions ("reproductions"): apart, so none becomes a current build. Named
        by `target_file_name`, so no two targets share one."""
        return os.path.join(self.dir, kind, target_file_name(target) + ".jsonl")

    def _legacy_index(self, target: str, kind: str) -> str | None:
        """The file an older mlbuild kept ``target``'s history in, when it is not
        `_index` (only for names `target_file_name` encodes); None otherwise."""
        path = os.path.join(self.dir, kind, _legacy_file_name(target))
        return None if path == self._index(target, kind) else path

    def sig_path(self, mid: str) -> str:
        return self.path(mid)[: -len(".json")] + ".sig.json"

    def put(self, manifest: Mapping[str, Any], signer: SigningKey | None = None) -> str:
        """Store a manifest (never overwriting one), its signature if a key is configured,
        and append it to its target's history."""
        mid = manifest_id(manifest)
        path = self.path(mid)
        point = self.sync_point
        durable = point is None  # else synced before a run-cache entry names it
        if not os.path.exists(path):
            if signer is not None:  # the signature first: a manifest is never seen unsigned
                keyid, sig = signer.sign(canonical_json(manifest).encode())
                body = json.dumps({"keyid": keyid, "sig": sig}, sort_keys=True) + "\n"
                atomic_write(self.sig_path(mid), body.encode(), mode=0o444, durable=durable)
            text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
            atomic_write(path, text.encode(), mode=0o444, durable=durable)
        reproduction = manifest.get("status") == ManifestStatus.REPRODUCTION
        kind = "reproductions" if reproduction else "index"
        index = self._index(manifest["target"], kind)
        os.makedirs(os.path.dirname(index), exist_ok=True)
        if not os.path.exists(index):
            self._start_from_legacy(manifest["target"], kind)
        # One short line per O_APPEND write: concurrent appends never interleave.
        fd = os.open(index, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (mid + "\n").encode())
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if durable:
            fsync_dir(os.path.dirname(index))
        else:
            assert point is not None
            point.wrote()
        if not reproduction:
            self._latest[manifest["target"]] = mid
        return mid

    def _start_from_legacy(self, target: str, kind: str) -> None:
        """Before the first append to ``target``'s index: if an older mlbuild kept its
        history under the old name, start the new file with the lines of it that are
        ``target``'s own (as `_read_index` reads them), so the history goes on. The file
        appears whole or not at all (a hard link of a complete temp file, which never
        replaces a file another writer created meanwhile); the old file is left as is
        (another target may own it)."""
        legacy = self._legacy_index(target, kind)
        if legacy is None or not os.path.exists(legacy):
            return
        ids = self._read_index(target, kind)[0]
        if not ids:
            return
        index = self._index(target, kind)
        body = "".join(mid + "\n" for mid in ids).encode()
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(index), prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            fsync_file(tmp)
            os.chmod(tmp, 0o644)
            try:
                os.link(tmp, index)
            except FileExistsError:
                pass  # another writer started it first
            except OSError:  # a file system without hard links: create it exclusively
                with contextlib.suppress(FileExistsError):
                    new = os.open(index, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                    try:
                        os.write(new, body)
                    finally:
                        os.close(new)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def get(self, mid: str) -> Manifest | None:
        """Manifest ``mid`` checked by `parse_manifest`; None when its file does not exist.
        Anything else (unreadable, corrupt, edited, malformed) raises ManifestError."""
        path = self.path(mid)
        raw = _read_or_none(
            path,
            lambda why: ManifestError(
                self.shown(path),
                f"unreadable: {why}",
                detail=f"cannot be read: {why}",
                hint="fix its permissions",
            ),
        )
        return None if raw is None else parse_manifest(raw, mid, self.shown(path))

    def get_usable(self, mid: str) -> Manifest | None:
        """`get` for readers to whom a manifest is only a hint (gc's build list, rollback's
        candidates, the previous build's metrics and profiles, the report): a corrupt
        record counts as absent there, and `audit` is what names it."""
        try:
            return self.get(mid)
        except ManifestError:
            return None

    def load(self, mid: str) -> Manifest:
        """`get`, with a missing file a ManifestError too (``missing`` set)."""
        doc = self.get(mid)
        if doc is None:
            raise ManifestError(
                self.shown(self.path(mid)),
                "file missing",
                expected=f"manifest {mid}",
                detail="is missing (deleted after it was written)",
                missing=True,
            )
        return doc

    def signature(self, mid: str) -> dict[str, str] | None:
        """The stored ``{"keyid", "sig"}`` of a manifest, or None if it is unsigned; a
        signature file that is not of that shape raises ManifestError (check
        ``signature``): it is reported, never taken for a missing signature."""
        path = self.sig_path(mid)

        def bad(found: str) -> ManifestError:
            return ManifestError(
                self.shown(path),
                found,
                check=AuditCheck.SIGNATURE,
                expected="a signature by a trusted key",
                what="signature",
                hint="re-sign by rebuilding with the key (`mlbuild -B TARGET`)",
            )

        raw = _read_or_none(path, lambda why: bad(f"signature file cannot be read: {why}"))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise bad("signature file is not JSON") from None
        if not isinstance(data, dict):
            raise bad("signature file is not a JSON object")
        keyid, sig = data.get("keyid"), data.get("sig")
        if not isinstance(keyid, str) or not _KEY_ID.fullmatch(keyid):
            raise bad(f"signature file has key id {show_value(keyid)}, not 64 hex digits")
        if not isinstance(sig, str):
            raise bad(f"signature file has signature {show_value(sig)}, not base64 text")
        return {"keyid": keyid, "sig": sig}

    def _owner(self, mid: str) -> str | None:
        """The target of manifest ``mid`` (read through the strict parser); None when its
        file is missing or unusable (whoever uses the id names that)."""
        if mid not in self._owners:
            doc = self.get_usable(mid)
            if doc is None:
                return None
            self._owners[mid] = doc["target"]
        return self._owners[mid]

    def _unreadable_index(self, path: str) -> Callable[[str], ManifestError]:
        def unreadable(why: str) -> ManifestError:
            return ManifestError(
                self.shown(path),
                f"cannot be read: {why}",
                check=AuditCheck.HISTORY,
                expected="a readable history index",
                what="history index",
                hint="fix its permissions",
            )

        return unreadable

    def _index_lines(self, target: str, kind: str) -> tuple[str, bool, list[tuple[int, str]]]:
        """(path, from the legacy file?, its non-empty lines numbered from 1) of the index
        that holds ``target``'s history: `_index`, else the file an older mlbuild wrote
        (`_legacy_index`). An absent index has no lines; an unreadable one raises."""
        path = self._index(target, kind)
        legacy = self._legacy_index(target, kind)
        candidates = [(path, False)] + ([(legacy, True)] if legacy is not None else [])
        for candidate, is_legacy in candidates:
            raw = _read_or_none(candidate, self._unreadable_index(candidate))
            if raw is not None:
                lines = [
                    (number, text)
                    for number, line in enumerate(raw.split(b"\n"), 1)
                    if (text := line.strip().decode("ascii", errors="replace"))
                ]
                return candidate, is_legacy, lines
        return path, False, []

    def _judge(
        self, target: str, path: str, legacy: bool, number: int, text: str
    ) -> tuple[bool, ManifestError | None]:
        """Whether line ``number`` (``text``) of ``path`` counts as a build of ``target``,
        and the problem to report about it, if any."""

        def problem(found: str, expected: str, hint: str) -> ManifestError:
            return ManifestError(
                self.shown(path),
                f"line {number}: {found} (skipped)",
                check=AuditCheck.HISTORY,
                expected=expected,
                what="history index",
                hint=hint,
            )

        if not is_manifest_id(text):
            return False, problem(
                f"{show_value(text)} is not a manifest id",
                "one manifest id per line",
                "the line points at nothing; delete it",
            )
        owner = self._owner(text)
        if owner == target:
            return True, None
        if owner is None:  # missing or corrupt: its target cannot be checked
            if not legacy:
                return True, None  # this target's own file: the users of the id name it
            return False, problem(
                f"{text} cannot be read to check that it is a manifest of {target}",
                f"manifests of {target} only",
                f"this file was shared with another target before; rebuild {target}",
            )
        if os.path.basename(path) == _legacy_file_name(owner):
            return False, None  # the other target that shared this file wrote it there
        return False, problem(
            f"{text} is a manifest of {owner}, not of {target}",
            f"manifests of {target} only",
            "the line points at another target's build; delete it",
        )

    def _read_index(
        self, target: str, kind: str = "index"
    ) -> tuple[list[str], list[ManifestError]]:
        """(ids of ``target``'s manifests oldest first, problems): a line that is not an
        id, or that points at another target's manifest, is skipped (`_judge`)."""
        path, legacy, lines = self._index_lines(target, kind)
        ids: list[str] = []
        problems: list[ManifestError] = []
        for number, text in lines:
            keep, problem = self._judge(target, path, legacy, number, text)
            if keep:
                ids.append(text)
            if problem is not None:
                problems.append(problem)
        return ids, problems

    def _newest(self, target: str) -> Iterator[str]:
        """``target``'s history ids newest first, judged one by one (`current` reads only
        as far back as the first that counts)."""
        path, legacy, lines = self._index_lines(target, "index")
        for number, text in reversed(lines):
            if self._judge(target, path, legacy, number, text)[0]:
                yield text

    def history(self, target: str) -> list[str]:
        """Manifest ids of ``target``, oldest first. The index only points at manifests, so
        a line that is not an id, or is another target's manifest, is skipped
        (`index_problems` names it)."""
        return self._read_index(target)[0]

    def index_problems(self, target: str) -> list[ManifestError]:
        """Lines of ``target``'s history index that are not ids of ``target``'s manifests,
        each named (to report or warn about, not raised)."""
        return self._read_index(target)[1]

    def reproductions(self, target: str) -> tuple[list[str], list[ManifestError]]:
        """Ids of ``target``'s reproduction records, oldest first, and the lines of their
        index that are skipped (not ids, or another target's records), for the audit."""
        return self._read_index(target, "reproductions")

    def current(self, target: str) -> str | None:
        """``target``'s latest build or restore: the newest history line that is one of
        its manifests (a line pointing at another target's never becomes its current)."""
        if target in self._latest:
            return self._latest[target]
        return next(self._newest(target), None)

    def refresh(self) -> None:
        """Forget the ids `put` remembered: the workspace calls it before each build, plan
        or rollback, since another process may have appended to a history since."""
        self._latest.clear()

    def source_build(self, doc: Mapping[str, Any]) -> tuple[str, Manifest] | None:
        """For a restore or rollback: (id, record) of the build it restores, following
        restores of restores; None for a build, for a restore that names none, or when a
        record of the chain is missing. A corrupt one raises ManifestError."""
        seen: set[str] = set()
        while is_restore(doc):
            mid = doc.get("restored_from")
            if mid is None or mid in seen or len(seen) >= _MAX_RESTORE_CHAIN:
                return None
            seen.add(mid)
            found = self.get(mid)
            if found is None:
                return None
            if found.get("status") in (ManifestStatus.BUILT, ManifestStatus.COMMIT):
                return mid, found
            doc = found
        return None

    def view(self, doc: Manifest) -> Manifest:
        """What to show or judge of a record: a restore seen through the build it restores
        (`restore_view`), anything else as it is."""
        source = self.source_build(doc)
        return doc if source is None else restore_view(doc, source[1])
