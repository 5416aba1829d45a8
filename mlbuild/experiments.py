"""Experiment queries: metrics of the current builds, what changed since a previous
build or a git revision (``metrics show``, ``metrics diff``, ``params diff``), and the
experiments table of every recorded build (``exp show``).

Everything reads the lock file, which holds each target's metrics and param values. "The
previous build" of a target is the manifest before its current build in its history
(restores of the current build do not count);
"REV" is the lock file as committed at a git revision (``git show REV:./<lock>``), so a
diff against REV needs only the repository, not the cache or the manifests.

``exp show`` is the one query here that reads manifests only: one row per manifest in each
target's history, with the params of its whole lineage (the deps' manifest links).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .config import Pipeline
from .digest import canonical_json, same_value
from .errors import UsageError
from .graph import BuildGraph
from .kinds import ChangeKind, ManifestStatus, PromoteMode
from .provenance.records import Manifest, ManifestError
from .provenance.store import ManifestStore
from .store import LockEntry, LockFile

__all__ = [
    "Direction",
    "Experiment",
    "ExperimentTable",
    "ParamChange",
    "SortOrder",
    "current_metrics",
    "experiment_table",
    "experiments",
    "file_at_revision",
    "lock_at_revision",
    "metric_directions",
    "params_diff",
    "previous_metrics",
    "sort_experiments",
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
    raw = file_at_revision(root, rel, rev)
    assert raw is not None
    return LockFile.parse(f"{rev}:{rel}", raw)


def file_at_revision(
    root: str,
    rel: str,
    rev: str,
    *,
    missing_ok: bool = False,
    hint: str = "is the lock file committed at that revision?",
) -> bytes | None:
    """The bytes of workspace file ``rel`` as committed at git revision ``rev``
    (``git show REV:./REL``); with ``missing_ok``, None when the revision exists but does
    not hold the file (`plots diff`). ``hint`` goes with any other failure.

    A REV starting with ``-`` is refused (no git revision does): git would read
    ``--output=FILE:./mlbuild.lock`` as an option. Git runs in the C locale, so the
    messages matched below are git's English ones whatever the user's language."""
    if rev.startswith("-"):
        raise UsageError(f"{rev!r} is not a git revision", hint="a revision never starts with '-'")
    try:
        proc = subprocess.run(
            ["git", "show", f"{rev}:./{rel}"],
            cwd=root,
            capture_output=True,
            timeout=30,
            env={**os.environ, "LC_ALL": "C"},
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
        if missing_ok and ("does not exist in" in text or "exists on disk, but not in" in text):
            return None
        raise UsageError(f"no {rel} at {rev!r} ({text})", hint=hint)
    return proc.stdout


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


# -- `exp show`: every recorded build of the targets, with its lineage's params ------------


class SortOrder(str, Enum):
    """``exp show --sort-order``: as DVC spells it (``dvc exp show --sort-order``)."""

    ASC = "asc"
    DESC = "desc"


# Which end of a metric's values is its best (bold in `exp show`'s table): the words and
# meaning of `promote.mode`, whose declaration it follows where there is one.
Direction = PromoteMode


@dataclass(frozen=True)
class Experiment:
    """One recorded build (or restore, rollback, commit…) of a target: a row of `exp show`.

    ``params`` are the param leaves its whole lineage read (its own manifest's, then those
    of the upstream builds its deps link to: the build's own value wins, then the nearest
    upstream's); a restore shows the params and metrics of the build it restores."""

    target: str
    manifest: str
    finished: str | None
    status: str
    params: Mapping[str, Any]
    metrics: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "manifest": self.manifest,
            "finished": self.finished,
            "status": self.status,
            "params": dict(self.params),
            "metrics": dict(self.metrics),
        }


@dataclass(frozen=True)
class ExperimentTable:
    """What `exp show` prints: the rows, the metric columns (every name any row has), the
    param columns (those that vary, or all), the best end of each metric, and the records
    left out (each one line: a manifest whose file is missing or fails the strict parser)."""

    rows: tuple[Experiment, ...]
    metrics: tuple[str, ...]
    params: tuple[str, ...]
    best: Mapping[str, Direction]
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "experiments": [r.to_json() for r in self.rows],
            "columns": {"metrics": list(self.metrics), "params": list(self.params)},
            "best": {m: d.value for m, d in self.best.items()},
        }


def _facts(doc: Manifest) -> tuple[dict[str, Any], list[str]]:
    """(its own param leaves, the upstream manifest ids its deps link to, in target-name
    order) of a build (a restore: as its view, with the build's params)."""
    links = {(d.get("target", ""), d.get("manifest") or "") for d in doc.get("deps", [])}
    return _leaves(doc.get("params") or {}), list(dict.fromkeys(m for _, m in sorted(links) if m))


class _Lineages:
    """The params of the builds upstream of a row, each manifest read once per table
    (every row of a target links to many of the same upstream builds)."""

    def __init__(self, store: ManifestStore) -> None:
        self.store = store
        self.read: dict[str, tuple[dict[str, Any], list[str]] | None] = {}
        self.problems: list[str] = []

    def _node(self, mid: str) -> tuple[dict[str, Any], list[str]] | None:
        if mid not in self.read:
            try:
                raw = self.store.get(mid)
                doc = self.store.view(raw) if raw is not None else None
            except ManifestError:
                doc = None
            self.read[mid] = None if doc is None else _facts(doc)
        return self.read[mid]

    def params(self, mid: str, doc: Manifest) -> dict[str, Any]:
        """The build's own leaves, then those of every upstream build, breadth first (a
        key keeps the value of the nearest build that read it)."""
        found, queue = _facts(doc)
        seen = {mid}
        while queue:
            up = queue.pop(0)
            if up in seen:
                continue
            seen.add(up)
            facts = self._node(up)
            if facts is None:
                self.problems.append(
                    f"upstream manifest {up} is missing or unusable: "
                    "the params of its build are left out (`mlbuild audit` says why)"
                )
                continue
            for key, value in facts[0].items():
                found.setdefault(key, value)
            queue.extend(facts[1])
        return found


def experiments(store: ManifestStore, names: Iterable[str]) -> tuple[list[Experiment], list[str]]:
    """Every recorded build of each target in ``names`` (in that order), newest first, and
    the problems that kept a record or its upstream params out (a missing or corrupt
    manifest, which `audit` names)."""
    lineages = _Lineages(store)
    rows: list[Experiment] = []
    problems: list[str] = []
    for name in names:
        problems.extend(e.message for e in store.index_problems(name))
        for mid in reversed(store.history(name)):
            try:
                raw = store.get(mid)
                doc = store.view(raw) if raw is not None else None
            except ManifestError as exc:
                problems.append(f"{name}: {exc.subject}: {exc.found}: left out")
                continue
            if doc is None:
                problems.append(f"{name}: manifest {mid} is missing: left out")
                continue
            metrics = dict(doc.get("metrics") or {})
            params = lineages.params(mid, doc)
            rows.append(
                Experiment(name, mid, doc.get("finished"), str(doc["status"]), params, metrics)
            )
    return rows, problems + list(dict.fromkeys(lineages.problems))


def _varies(rows: Sequence[Experiment], key: str) -> bool:
    """Whether a param column tells rows apart: two values among the rows that have it,
    or a target whose rows read it in one build and not in another. A target that never
    reads the key (another member of a sweep) is no difference."""
    if len({canonical_json(r.params[key]) for r in rows if key in r.params}) > 1:
        return True
    reads: dict[str, set[bool]] = {}
    for r in rows:
        reads.setdefault(r.target, set()).add(key in r.params)
    return any(len(seen) > 1 for seen in reads.values())


def metric_directions(pipeline: Pipeline, names: Iterable[str]) -> dict[str, Direction]:
    """Metric → the end that is best: the ``mode`` of a ``promote: {by: METRIC}``, or what
    a gate on it implies (``min``/``max_drop``: higher is better; ``max``/``max_rise``:
    lower is), the first declaration in file order; any other metric: higher is better."""
    declared: dict[str, Direction] = {}
    for spec in pipeline.targets.values():
        if spec.promote is not None:
            declared.setdefault(spec.promote.by, Direction(spec.promote.mode))
        for gate in spec.gates:
            lower = gate.max is not None or gate.max_rise is not None
            declared.setdefault(gate.metric, Direction.MIN if lower else Direction.MAX)
    return {m: declared.get(m, Direction.MAX) for m in names}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def sort_experiments(rows: Sequence[Experiment], by: str, order: SortOrder) -> list[Experiment]:
    """Rows by a metric (or, when no row has a metric of that name, a param), all targets
    together; rows whose value is absent or not a number keep their order, after the rest.
    A name no row has: UsageError with the closest one."""
    metrics = {m for r in rows for m in r.metrics}
    params = {p for r in rows for p in r.params}
    if rows and by not in metrics and by not in params:
        from .suggest import did_you_mean

        raise UsageError(
            f"--sort-by {by}: no metric or param of that name in these builds",
            hint=did_you_mean(by, metrics | params)
            or f"metrics: {', '.join(sorted(metrics)) or 'none'}",
        )
    column = "metrics" if by in metrics else "params"

    def value(row: Experiment) -> Any:
        return getattr(row, column).get(by)

    ranked = [r for r in rows if _is_number(value(r))]
    ranked.sort(key=value, reverse=order is SortOrder.DESC)  # stable: ties keep their order
    return ranked + [r for r in rows if not _is_number(value(r))]


def experiment_table(
    pipeline: Pipeline,
    store: ManifestStore,
    names: Iterable[str],
    *,
    all_params: bool = False,
    sort_by: str | None = None,
    order: SortOrder = SortOrder.ASC,
) -> ExperimentTable:
    """`exp show`'s table of the targets ``names`` (build order, each newest first unless
    ``sort_by``): the param columns that vary across its rows (all with ``all_params``)."""
    found, problems = experiments(store, names)
    rows = sort_experiments(found, sort_by, order) if sort_by is not None else found
    metrics = sorted({m for r in rows for m in r.metrics})
    keys = sorted({k for r in rows for k in r.params})
    shown = keys if all_params else [k for k in keys if _varies(rows, k)]
    return ExperimentTable(
        tuple(rows),
        tuple(metrics),
        tuple(shown),
        metric_directions(pipeline, metrics),
        tuple(problems),
    )
