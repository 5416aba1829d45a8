"""ManifestStore: manifests on disk, append-only, read back through the strict parser.

Store layout under ``.mlbuild/manifests/``::

    ab/cdef….json           the manifest with id sha256:abcdef…, written once, atomically
    ab/cdef….sig.json        its signature, when a key is configured (signing.py)
    index/<target>.jsonl     one id per line, oldest first: the target's build history
    reproductions/<target>.jsonl   likewise, its reproductions (never in the build history,
                             so no reproduction can become a target's current manifest)

Manifests are append-only: nothing but an explicit ``gc`` removes one.

Reading one back crosses the trust boundary: `ManifestStore.get` calls
`parse.parse_manifest`, the one strict parser. An id becomes a path only through
`ManifestStore.path`, which refuses anything but ``sha256:`` + 64 hex, so no id read from
a remote or a file can climb out of the manifests directory. A history index is only a
list of pointers: a line that is not an id is skipped (`ManifestStore.history`) and
reported (`ManifestStore.index_problems`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..digest import canonical_json
from ..kinds import ManifestStatus
from ..store.atomic import atomic_write, fsync_dir
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
        its reproductions ("reproductions"): apart, so none becomes a current build."""
        return os.path.join(self.dir, kind, target.replace(":", "__").replace("/", "_") + ".jsonl")

    def sig_path(self, mid: str) -> str:
        return self.path(mid)[: -len(".json")] + ".sig.json"

    def put(self, manifest: Mapping[str, Any], signer: SigningKey | None = None) -> str:
        """Store a manifest (never overwriting one), its signature if a key is configured,
        and append it to its target's history."""
        mid = manifest_id(manifest)
        path = self.path(mid)
        if not os.path.exists(path):
            if signer is not None:  # the signature first: a manifest is never seen unsigned
                keyid, sig = signer.sign(canonical_json(manifest).encode())
                body = json.dumps({"keyid": keyid, "sig": sig}, sort_keys=True) + "\n"
                atomic_write(self.sig_path(mid), body.encode(), mode=0o444)
            text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
            atomic_write(path, text.encode(), mode=0o444)
        reproduction = manifest.get("status") == ManifestStatus.REPRODUCTION
        index = self._index(manifest["target"], "reproductions" if reproduction else "index")
        os.makedirs(os.path.dirname(index), exist_ok=True)
        # One short line per O_APPEND write: concurrent appends never interleave.
        fd = os.open(index, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (mid + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(os.path.dirname(index))
        if not reproduction:
            self._latest[manifest["target"]] = mid
        return mid

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

    def _read_index(
        self, target: str, kind: str = "index"
    ) -> tuple[list[str], list[ManifestError]]:
        """(ids oldest first, problems): a line that is not an id is a problem, skipped."""
        path = self._index(target, kind)
        raw = _read_or_none(
            path,
            lambda why: ManifestError(
                self.shown(path),
                f"cannot be read: {why}",
                check=AuditCheck.HISTORY,
                expected="a readable history index",
                what="history index",
                hint="fix its permissions",
            ),
        )
        if raw is None:
            return [], []
        ids: list[str] = []
        problems: list[ManifestError] = []
        for number, line in enumerate(raw.split(b"\n"), 1):
            text = line.strip().decode("ascii", errors="replace")
            if not text:
                continue
            if is_manifest_id(text):
                ids.append(text)
                continue
            problems.append(
                ManifestError(
                    self.shown(path),
                    f"line {number}: {show_value(text)} is not a manifest id (skipped)",
                    check=AuditCheck.HISTORY,
                    expected="one manifest id per line",
                    what="history index",
                    hint="the line points at nothing; delete it",
                )
            )
        return ids, problems

    def history(self, target: str) -> list[str]:
        """Manifest ids of ``target``, oldest first. The index only points at manifests, so
        a line that is not an id is skipped (`index_problems` names it)."""
        return self._read_index(target)[0]

    def index_problems(self, target: str) -> list[ManifestError]:
        """Lines of ``target``'s history index that are not manifest ids, each named (to
        report or warn about, not raised)."""
        return self._read_index(target)[1]

    def reproductions(self, target: str) -> tuple[list[str], list[ManifestError]]:
        """Ids of ``target``'s reproduction records, oldest first, and the lines of their
        index that are not ids (skipped, for the audit to name)."""
        return self._read_index(target, "reproductions")

    def current(self, target: str) -> str | None:
        if target in self._latest:
            return self._latest[target]
        ids = self.history(target)
        return ids[-1] if ids else None

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
            if found.get("status") == ManifestStatus.BUILT:
                return mid, found
            doc = found
        return None

    def view(self, doc: Manifest) -> Manifest:
        """What to show or judge of a record: a restore seen through the build it restores
        (`restore_view`), anything else as it is."""
        source = self.source_build(doc)
        return doc if source is None else restore_view(doc, source[1])

