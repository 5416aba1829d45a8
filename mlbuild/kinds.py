"""The closed vocabularies of mlbuild's file formats, one enum each.

These are words that mlbuild writes into, and reads back from, its files: manifests
(``status``, out ``type``, check ``severity`` and ``check`` kind, gate bounds, the
promotion ``mode``, a reproduction's ``verdict``, profile dtypes, the ``executor``'s
``type``), the lock file and run-cache entries (out ``type``), tree objects (entry modes),
and ``mlbuild.yaml`` (check kinds, severities, dtypes, gate bounds, promote modes, the
executor's ``type`` and ``mode``). Code compares against these members instead of repeating
the strings, so a typo is a mypy or import error, not a silently false comparison.

This module imports nothing from the rest of mlbuild: the config loader, the store, the
checks and the provenance readers all sit above it.

Each enum mixes in ``str``, so a member compares equal to the word read from a file and
``json.dumps`` writes the word. Python >= 3.11 formats such a member as ``Name.MEMBER``
in f-strings and ``str()``, so code that writes a member into text or into a hashed
record writes ``.value`` (manifests keep plain strings: their ids must not change).
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "ChangeKind",
    "CheckKind",
    "DaskMode",
    "Dtype",
    "EntryMode",
    "ExecutorType",
    "GateBound",
    "LinkType",
    "ManifestStatus",
    "OutType",
    "PromoteMode",
    "Severity",
    "Verdict",
    "words",
]


def words(kind: type[Enum]) -> tuple[str, ...]:
    """The words of a vocabulary, in declaration order (for messages and membership
    tests against values that may be of any type, e.g. read from YAML)."""
    return tuple(str(member.value) for member in kind)


class ManifestStatus(str, Enum):
    """``status`` of a manifest: how its outs came to be (provenance/records.py)."""

    BUILT = "built"  # the command ran
    RESTORED = "restored"  # restored from the cache or a remote
    ROLLBACK = "rollback"  # `mlbuild rollback` restored an earlier build
    COMMIT = "commit"  # `mlbuild commit` accepted outs mlbuild did not build (rebuild/accept.py)
    REPRODUCTION = "reproduction"  # a record of `mlbuild reproduce`, never a build


class OutType(str, Enum):
    """``type`` of a recorded out (manifest, lock file, run-cache entry)."""

    FILE = "file"
    DIR = "dir"  # stored as a tree object


class EntryMode(str, Enum):
    """The mode of a tree object's entry (digest.py: ``[relpath, digest, mode]``)."""

    FILE = "f"
    EXEC = "x"  # a file with its owner's execute bit
    LINK = "l"  # a symlink in a directory out: its digest is that of its target text


class LinkType(str, Enum):
    """How a file's bytes get between the cache and the workspace (``cache: {link:}`` in
    mlbuild.yaml): the first kind in the list that works on the filesystems at hand."""

    REFLINK = "reflink"  # a copy-on-write clone: instant, and a file of its own
    HARDLINK = "hardlink"  # the same inode: instant, no space, and read-only (protected)
    COPY = "copy"  # the bytes copied: works everywhere


class Severity(str, Enum):
    """``severity`` of a data check: an error rejects the outs, a warning is reported."""

    ERROR = "error"
    WARN = "warn"


class CheckKind(str, Enum):
    """``check:`` of a data check (mlbuild.yaml, and each check verdict in a manifest)."""

    COLUMNS = "columns"
    NOT_NULL = "not_null"
    UNIQUE = "unique"
    RANGE = "range"
    ALLOWED = "allowed"
    ROWS = "rows"
    DRIFT = "drift"
    PYTHON = "python"


class Dtype(str, Enum):
    """Column dtypes: what a ``columns`` check asks for, and what a profile records."""

    INT = "int"
    FLOAT = "float"
    STR = "str"
    BOOL = "bool"
    DATETIME = "datetime"
    ANY = "any"  # asked for only: admits every column


class GateBound(str, Enum):
    """The bound of a gate (exactly one per gate, in mlbuild.yaml and in a manifest)."""

    MIN = "min"
    MAX = "max"
    MAX_DROP = "max_drop"  # against the previous build: how far the metric may fall
    MAX_RISE = "max_rise"  # likewise for a metric where lower is better (a loss)

    @property
    def vs_previous(self) -> bool:
        return self in (GateBound.MAX_DROP, GateBound.MAX_RISE)


class PromoteMode(str, Enum):
    """``promote.mode``: whether the highest or the lowest score wins."""

    MAX = "max"
    MIN = "min"


class ChangeKind(str, Enum):
    """How one keyed value differs between two records (a reason, a params diff)."""

    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


class ExecutorType(str, Enum):
    """``executor.type`` in mlbuild.yaml and ``--executor``; ``type`` of a manifest's
    ``executor`` record (where the build ran)."""

    LOCAL = "local"
    DASK = "dask"


class DaskMode(str, Enum):
    """``executor.mode`` in mlbuild.yaml and ``--dask-mode``: how Dask workers see data."""

    SHARED = "shared"  # the workers see the workspace (a shared filesystem)
    REMOTE = "remote"  # inputs and outs move through the remote cache (staging.py)


class Verdict(str, Enum):
    """What a reproduction found (``verdict`` of a reproduction record)."""

    IDENTICAL = "identical"  # every out bit-identical to the recorded one
    WITHIN_TOLERANCE = "within-tolerance"  # only metrics files differ, within --tolerance
    DIFFERS = "differs"  # an out differs beyond any tolerance, or is missing
    FAILED = "failed"  # the re-run failed: nothing to compare

    @property
    def reproducible(self) -> bool:
        return self in (Verdict.IDENTICAL, Verdict.WITHIN_TOLERANCE)
