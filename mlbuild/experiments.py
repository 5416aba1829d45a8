"""Experiment queries: metrics of the current builds, and what changed since a previous
build or a git revision (``metrics show``, ``metrics diff``, ``params diff``).

Everything reads the lock file, which holds each target's metrics and param values. "The
previous build" of a target is the manifest before its current build in its history
(restores of the current build do not count);
"REV" is the lock file as committed at a git revision (``git show REV:./<lock>``), so a
diff against REV needs only the repository, not the cache or the manifests.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .config import Pipeline
from .digest import same_value
from .errors import UsageError
from .graph import BuildGraph
from .kinds import ChangeKind, ManifestStatus
from .provenance.store import ManifestStore
from .store import LockEntry, LockFile

__all__ = [
    "ParamChange",
    "current_metrics",
    "lock_at_revision",
    "params_diff",
    "previous_metrics",
]


def current_metrics(lock: LockFile, names: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Target → metrics of its current build, for targets that have metrics."""
    found: dict[str, dict[str, Any]] = {}
    for name in names:
        entry = lock.entries.get(name)
        if entry is not None and entry.metrics is not None:
            found[name] = dict(entry.metrics)
    return found


def previous_metrics(
    store: ManifestStore, lock: LockFile, names: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """Target → metrics of the build before its current one: the newest manifest older
    than the current build, not counting restores of that same build."""
    found: dict[str, dict[str, Any]] = {}
    for name in names:
        entry = lock.entries.get(name)
        current: str | None = None
        for mid in reversed(store.history(name)):
            doc = store.get_usable(mid)
            if doc is None:
                continue
            if current is None:
                if entry is None or doc.get("key") == entry.key:
                    current = doc.get("key")
                continue
            if doc.get("key") == current and doc.get("status") != ManifestStatus.BUILT:
                continue
            if doc.get("metrics") is not None:
                found[name] = dict(doc.get("metrics") or {})
            break
    return found


def lock_at_revision(root: str, lock_path: str, rev: str) -> dict[str, LockEntry]:
    """The lock file's entries as committed at git revision ``rev``."""
    rel = os.path.relpath(lock_path, root)
    try:
        proc = subprocess.run(
            ["git", "show", f"{rev}:./{rel}"],
            cwd=root,
            capture_output=True,
            timeout=30,
        )
    except FileNotFoundError:
        raise UsageError("comparing with a revision needs git, which is not installed") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        text = err[-1] if err else "git failed"
        if "not a git repository" in text:
            raise UsageError(
                f"cannot compare with {rev!r}: {root} is not a git repository",
                hint="leave out REV to compare with each target's previous build",
            )
        raise UsageError(
            f"no {rel} at {rev!r} ({text})", hint="is the lock file committed at that revision?"
        )
    return LockFile.parse(f"{rev}:{rel}", proc.stdout)


@dataclass(frozen=True)
class ParamChange:
    """One param leaf whose value differs from the recorded one, and whom it affects."""

    key: str
    old: Any
    new: Any
    change: str  # "changed" / "added" / "removed" / "readers" (same value, other readers)
    targets: tuple[str, ...]  # targets that read the key
    stale: tuple[str, ...]  # those and everything downstream of them

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key, "change": self.change}
        if self.change != ChangeKind.ADDED:
            data["old"] = self.old
        if self.change != ChangeKind.REMOVED:
            data["new"] = self.new
        data["targets"] = list(self.targets)
        data["stale"] = list(self.stale)
        return data


_ABSENT = object()


def _leaves(data: Mapping[str, Any]) -> dict[str, Any]:
    """Declared param key → value, with mapping values split into dotted leaves (``train``
    → ``train.lr``, ``train.epochs``), so a change deep in a subtree names its leaf."""
    out: dict[str, Any] = {}
    for key in sorted(data, key=str):
        value = data[key]
        if isinstance(value, Mapping) and value:
            out.update({f"{key}.{k}": v for k, v in _leaves(value).items()})
        else:
            out[str(key)] = value
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal as the build key compares them (`digest.same_value`: ``50`` and ``50.0``,
    ``1`` and ``true`` differ); absent equals only absent."""
    if a is _ABSENT or b is _ABSENT:
        return a is b
    return same_value(a, b)


def params_diff(
    pipeline: Pipeline, graph: BuildGraph, recorded: Mapping[str, LockEntry]
) -> list[ParamChange]:
    """Param leaves whose workspace value differs from ``recorded`` (lock entries), per
    key, with the targets that read it; targets never recorded are left out (all of their
    params are new, which says nothing). Values compare as the build key compares them."""
    per_key: dict[str, set[str]] = {}
    old_any: dict[str, Any] = {}  # a key's recorded value (the same for every reader)
    new_any: dict[str, Any] = {}  # its value now, for any target that reads it now
    changed_old: dict[str, Any] = {}  # the same, from readers whose value changed
    changed_new: dict[str, Any] = {}
    for name, spec in pipeline.targets.items():
        new = _leaves(spec.params)
        for key, value in new.items():
            new_any.setdefault(key, value)
        entry = recorded.get(name)
        if entry is None:
            continue
        old = _leaves(entry.components.get("params") or {})
        for key, value in old.items():
            old_any.setdefault(key, value)
        for key in set(old) | set(new):
            a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
            if _same(a, b):
                continue
            per_key.setdefault(key, set()).add(name)
            # A matrix over a params list reads one value of it per target (config/matrix.py,
            # Matrix.reads): the values of a reader that changed speak for the key.
            if a is not _ABSENT:
                changed_old.setdefault(key, a)
            if b is not _ABSENT:
                changed_new.setdefault(key, b)
    changes: list[ParamChange] = []
    for key in sorted(per_key):
        targets = per_key[key]
        a = changed_old.get(key, old_any.get(key, _ABSENT))
        b = changed_new.get(key, new_any.get(key, _ABSENT))
        stale = set(targets) | set(graph.downstream(sorted(targets)))
        if a is _ABSENT:
            change = "added"
        elif b is _ABSENT:
            change = "removed"
        else:
            # Same value, other readers: a target started or stopped reading the key.
            change = "readers" if _same(a, b) else "changed"
        changes.append(
            ParamChange(
                key,
                None if a is _ABSENT else a,
                None if b is _ABSENT else b,
                change,
                tuple(sorted(targets)),
                tuple(n for n in pipeline.targets if n in stale),  # build (file) order
            )
        )
    return changes
