"""The one strict parser for records read back from storage.

Everything mlbuild reads back from disk or from a remote — run-cache entries (local or
remote), tree objects, out records in the lock file and in staged Dask results — is
untrusted until it has been through this module. A record is accepted whole or rejected
whole, with a `RecordError` naming where it came from and what is wrong; nothing derived
from a rejected record is ever used, and no path is derived from a field this module has
not checked:

- digests are exactly ``xxh3-128:`` + 32 lowercase hex or ``sha256:`` + 64 lowercase hex,
  so an object path built from one (``objects/ab/cdef…``) can never leave the store;
- sizes are non-negative integers (not booleans), types and modes are from a closed set;
- paths are relative, normalized POSIX paths with no ``.``/``..``/empty segment and no NUL;
- a run-cache entry lists exactly the target's declared outs when they are known (its build
  key covers the declared outs, so an honest entry can list nothing else): an entry naming
  ``.git/hooks/pre-commit`` or a source file is refused, never restored;
- a tree object hashes to its own name and lists each path once, sorted, inside its root.

Trust then flows only from verified bytes: file objects are checked against their names
on every restore (`Cache.restore_out`), trees here, remote objects against both digests
(transfer.py).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

from ..digest import TreeEntry, hash_bytes
from ..errors import MlbuildError
from ..kinds import EntryMode, OutType, words
from ..plural import noun

__all__ = [
    "OutRecord",
    "RecordError",
    "RunEntry",
    "check_link_target",
    "check_relpath",
    "check_sha256",
    "check_xxh",
    "digest_hex",
    "parse_out",
    "parse_run",
    "parse_tree",
]

RUN_VERSION = 1
XXH_PATTERN = re.compile(r"xxh3-128:[0-9a-f]{32}")
SHA_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
_OUT_KEYS = frozenset({"path", "type", "xxh", "sha256", "size", "executable"})
_OUT_TYPES = words(OutType)
_ENTRY_MODES = words(EntryMode)


class RecordError(MlbuildError):
    """A stored record failed the strict parser: it is not used (the build goes on without
    it, or the command stops, naming the record)."""


@dataclass(frozen=True)
class OutRecord:
    """What was recorded about one declared out: enough to verify and restore it."""

    path: str
    type: str  # an OutType word, kept a plain str (written to the lock file and run cache)
    xxh: str
    sha256: str | None
    size: int
    executable: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str = "out record") -> OutRecord:
        """The strict parse (`parse_out`): every caller gets a checked record."""
        return parse_out(data, where)


@dataclass(frozen=True)
class RunEntry:
    """A run-cache entry: the outs a build key produced and that build's manifest id."""

    outs: list[OutRecord]
    manifest: str | None
    # Files the build's Python read without declaring them, with their digests then
    # (mlbuild/reads.py): the entry is reused only while they are unchanged.
    undeclared: dict[str, str] = field(default_factory=dict)


def _fail(where: str, what: str) -> RecordError:
    return RecordError(f"{where}: {what}", hint="the record is not used")


def check_xxh(value: Any, where: str) -> str:
    """``value`` if it is exactly ``xxh3-128:`` + 32 lowercase hex; else RecordError."""
    if not isinstance(value, str) or not XXH_PATTERN.fullmatch(value):
        raise _fail(where, f"{_show(value)} is not an xxh3-128 digest")
    return value


def check_sha256(value: Any, where: str) -> str:
    """``value`` if it is exactly ``sha256:`` + 64 lowercase hex; else RecordError."""
    if not isinstance(value, str) or not SHA_PATTERN.fullmatch(value):
        raise _fail(where, f"{_show(value)} is not a sha256 digest")
    return value


def digest_hex(digest: str) -> str:
    """The hex part of a checked digest: the only thing object paths are built from."""
    if not (XXH_PATTERN.fullmatch(digest) or SHA_PATTERN.fullmatch(digest)):
        raise _fail("digest", f"{_show(digest)} is not a digest")
    return digest.split(":", 1)[1]


def check_relpath(value: Any, where: str) -> str:
    """``value`` if it is a relative, normalized POSIX path that stays where it is put."""
    if not isinstance(value, str) or not value:
        raise _fail(where, f"{_show(value)} is not a path")
    if "\0" in value or value.startswith("/") or "\\" in value:
        raise _fail(where, f"path {_show(value)} is not a relative POSIX path")
    if any(part in ("", ".", "..") for part in value.split("/")):
        raise _fail(where, f"path {_show(value)} has an empty, '.' or '..' segment")
    if posixpath.normpath(value) != value:  # pragma: no cover - the segment rule implies it
        raise _fail(where, f"path {_show(value)} is not normalized")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(where, f"{_show(value)} is not a size")
    return value


def parse_out(data: Any, where: str) -> OutRecord:
    """One out record (``{"path", "type", "xxh", "sha256", "size", "executable"}``)."""
    if not isinstance(data, dict):
        raise _fail(where, "an out record is not an object")
    unknown = set(data) - _OUT_KEYS
    if unknown:
        fields = noun(len(unknown), "field")
        raise _fail(where, f"unknown {fields} {', '.join(sorted(map(str, unknown)))}")
    path = check_relpath(data.get("path"), f"{where}: path")
    kind = data.get("type")
    if kind not in _OUT_TYPES:
        raise _fail(where, f"out {path!r} has type {_show(kind)} (file or dir)")
    sha = data.get("sha256")
    executable = data.get("executable", False)
    if not isinstance(executable, bool):
        raise _fail(where, f"out {path!r}: executable is {_show(executable)}")
    return OutRecord(
        path=path,
        type=kind,
        xxh=check_xxh(data.get("xxh"), f"{where}: out {path!r}"),
        sha256=None if sha is None else check_sha256(sha, f"{where}: out {path!r}"),
        size=_int(data.get("size"), f"{where}: out {path!r}: size"),
        executable=executable,
    )


def check_declared(outs: Collection[OutRecord], declared: Collection[str], where: str) -> None:
    """The records name exactly the declared outs, each once (the build key covers them)."""
    paths = check_unique(outs, where)
    extra = sorted(set(paths) - set(declared))
    if extra:
        raise _fail(where, f"{', '.join(map(repr, extra))} is not a declared out of the target")
    missing = sorted(set(declared) - set(paths))
    if missing:
        shown, verb = ", ".join(map(repr, missing)), "is" if len(missing) == 1 else "are"
        raise _fail(where, f"{noun(len(missing), 'declared out')} {shown} {verb} not recorded")


def check_unique(outs: Collection[OutRecord], where: str) -> list[str]:
    """The records' paths, each listed once (else RecordError)."""
    paths = [o.path for o in outs]
    if len(set(paths)) != len(paths):
        raise _fail(where, "an out is listed twice")
    return paths


def parse_run(
    raw: bytes, key: str, where: str, declared: Collection[str] | None = None
) -> RunEntry:
    """A run-cache entry's bytes (local or remote) → RunEntry, or RecordError.

    ``declared``: the target's declared outs, when the caller knows the target; the entry
    must then list exactly those (see the module docstring)."""
    check_xxh(key, f"{where}: build key")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _fail(where, "not JSON") from None
    if not isinstance(data, dict):
        raise _fail(where, "not a JSON object")
    if data.get("version") != RUN_VERSION:
        raise _fail(where, f"version {_show(data.get('version'))} (expected {RUN_VERSION})")
    if data.get("key") != key:
        raise _fail(where, "its key is not the key it is stored under")
    outs = data.get("outs")
    if not isinstance(outs, list):
        raise _fail(where, "outs is not a list")
    records = [parse_out(o, f"{where}: outs[{i}]") for i, o in enumerate(outs)]
    if declared is not None:
        check_declared(records, declared, where)
    manifest = data.get("manifest")
    if manifest is not None:
        check_sha256(manifest, f"{where}: manifest id")
    undeclared = data.get("undeclared", {})
    if not isinstance(undeclared, dict):
        raise _fail(where, "undeclared is not an object")
    reads = {
        check_relpath(path, f"{where}: undeclared"): check_xxh(digest, f"{where}: undeclared")
        for path, digest in undeclared.items()
    }
    return RunEntry(outs=records, manifest=manifest, undeclared=reads)


def parse_tree(raw: bytes, digest: str, where: str) -> list[TreeEntry]:
    """A tree object's bytes → its entries, checked against its name and each other.

    The bytes must hash to ``digest`` (a tree with two entries' digests swapped does not),
    and every entry must be ``[relpath, xxh3 digest, "f"|"x"|"l"]`` with a safe path,
    listed once, in sorted order (the only order mlbuild writes). A link's target is
    checked where it is restored (`check_link_target`)."""
    check_xxh(digest, where)
    got = hash_bytes(raw)
    if got != digest:
        raise _fail(where, f"corrupt tree object: its bytes hash to {got}")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _fail(where, "a tree object that is not JSON") from None
    if not isinstance(data, list):
        raise _fail(where, "a tree object that is not a list")
    entries: list[TreeEntry] = []
    previous: str | None = None
    for i, item in enumerate(data):
        if not isinstance(item, list) or len(item) != 3:
            raise _fail(where, f"tree entry {i} is not [path, digest, mode]")
        rel = check_relpath(item[0], f"{where}: tree entry {i}")
        xxh = check_xxh(item[1], f"{where}: tree entry {rel!r}")
        if item[2] not in _ENTRY_MODES:
            raise _fail(where, f"tree entry {rel!r} has mode {_show(item[2])}")
        if previous is not None and rel <= previous:
            raise _fail(where, f"tree entry {rel!r} is out of order or listed twice")
        previous = rel
        entries.append((rel, xxh, item[2]))
    _check_no_file_dir_clash(entries, where)
    return entries


def check_link_target(target: str, link: str, where: str) -> str:
    """A symlink restored at ``link`` (workspace-relative) may point only inside the
    workspace: a relative target whose lexical resolution from the link's directory
    stays inside. (No link is ever followed to check it: it is being created.)"""
    if not target or "\0" in target or target.startswith("/"):
        raise _fail(where, f"link {link!r} -> {_show(target)} is not a relative target")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link), target))
    if resolved == ".." or resolved.startswith("../"):
        raise _fail(where, f"link {link!r} -> {_show(target)} leads outside the workspace")
    return target


def _check_no_file_dir_clash(entries: list[TreeEntry], where: str) -> None:
    """``a`` and ``a/b`` cannot both be files: restoring one would replace the other."""
    files = {rel for rel, _, _ in entries}
    for rel, _, _ in entries:
        parent = posixpath.dirname(rel)
        while parent:
            if parent in files:
                raise _fail(where, f"tree entry {rel!r} lies under the file {parent!r}")
            parent = posixpath.dirname(parent)
