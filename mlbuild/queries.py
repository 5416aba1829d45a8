"""The read-only half of the Python API: what the recorded state says, never changing it.

`Workspace` (workspace.py) keeps the lifecycle (build, plan, push, pull, rollback, cache
maintenance: what takes the workspace lock and writes); these mixins hold its queries, so
that no one module carries the whole API:

- `ProvenanceQueries`: audit, lineage, history, resolve_manifest, card, manifest;
- `ExperimentQueries`: metrics, metrics_diff, params_diff, experiments, report_data,
  status, explain.

They are mixins rather than functions so that ``Workspace(".").status()`` and the rest of
the documented API stay as they are. `_Host` declares what they use of the workspace.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import UsageError
from .kinds import ManifestStatus
from .options import BuildOptions
from .rebuild import code_diff
from .results import Action, Decision, Reason, ReasonKind, TargetStatus
from .scheduler import plan
from .store import LockFile

if TYPE_CHECKING:
    from .config import Pipeline
    from .experiments import ExperimentTable, ParamChange, SortOrder
    from .graph import BuildGraph
    from .metrics import MetricChange
    from .provenance.findings import AuditReport
    from .provenance.records import Manifest
    from .provenance.store import ManifestStore
    from .rebuild import Rebuilder
    from .store import Cache, Layout
    from .store.failures import FailedAttempt

__all__ = ["ExperimentQueries", "Explanation", "ProvenanceQueries", "StatusEntry"]


@dataclass(frozen=True)
class StatusEntry:
    target: str
    status: TargetStatus
    reasons: tuple[Reason, ...]
    # What its last build read without declaring it (reads.py): fresh or not, its key
    # does not cover these files.
    undeclared: tuple[str, ...] = ()
    # Its last attempt failed with the key it would run with now (store/failures.py).
    failure: FailedAttempt | None = None

    @property
    def first_reason(self) -> str:
        return self.reasons[0].describe() if self.reasons else ""


@dataclass(frozen=True)
class Explanation:
    """Why a target is stale: its own reasons and, as a tree, its stale upstream."""

    decision: Decision
    upstream: tuple[Explanation, ...] = ()
    code_diffs: dict[str, str] = field(default_factory=dict)
    undeclared: tuple[str, ...] = ()  # as in StatusEntry
    failure: FailedAttempt | None = None  # as in StatusEntry


class _Host:
    """What the query mixins use of `Workspace` (declared for the type checker only)."""

    if TYPE_CHECKING:
        root: str
        lock_path: str
        layout: Layout

        @property
        def pipeline(self) -> Pipeline: ...

        @property
        def cache(self) -> Cache: ...

        @property
        def manifest_store(self) -> ManifestStore: ...

        @property
        def graph(self) -> BuildGraph: ...

        def select(self, targets: Iterable[str] | None) -> list[str]: ...

        def plan(
            self, targets: Iterable[str] | None = None, options: BuildOptions | None = None
        ) -> list[Decision]: ...

        def _rebuilder(self, options: BuildOptions) -> Rebuilder: ...


class ProvenanceQueries(_Host):
    """Provenance: audit, lineage, history and manifests, model cards."""

    def audit(
        self,
        targets: Iterable[str] | None = None,
        *,
        allow_dirty: bool = False,
        require_signatures: bool = False,
        trusted_keys: Sequence[str] = (),
    ) -> AuditReport:
        """Verify the targets and their upstream closure against their manifests.

        Trusted keys: the file's `trusted_keys:` (workspace-relative) plus ``trusted_keys``
        (paths as given)."""
        from .provenance.audit import audit
        from .provenance.signing import TrustedKeys, load_public_key

        paths = [os.path.join(self.root, p) for p in self.pipeline.trusted_keys]
        keys = dict(load_public_key(p) for p in [*paths, *trusted_keys])
        if require_signatures and not keys:
            raise UsageError(
                "--require-signatures needs the public keys to trust",
                hint="list them in trusted_keys: in mlbuild.yaml, or pass --trusted-key FILE",
            )
        order = self.graph.closure(self.select(targets))
        return audit(
            self.pipeline,
            order,
            LockFile(self.lock_path),
            self.cache,
            self.manifest_store,
            allow_dirty=allow_dirty,
            require_signatures=require_signatures,
            trusted=TrustedKeys(keys),
        )

    def lineage(self, target: str) -> dict[str, Any]:
        """The recorded upstream tree of ``target``'s current manifest (see audit.lineage)."""
        from .provenance.lineage import lineage

        mid, _ = self.manifest(target)
        return lineage(self.manifest_store, mid)

    def history(self, target: str) -> list[tuple[str, Manifest | None, str | None]]:
        """Every manifest of ``target``, newest first: ``(id, record, problem)``, the record
        None and the problem named for one whose file is gone or fails the strict parser
        (one bad record does not hide the rest of the history)."""
        from .provenance.records import ManifestError

        name = self.graph.select([target])[0]
        store = self.manifest_store
        rows: list[tuple[str, Manifest | None, str | None]] = []
        for mid in reversed(store.history(name)):
            try:
                doc = store.get(mid)
            except ManifestError as exc:
                rows.append((mid, None, f"{exc.subject}: {exc.found}"))
                continue
            rows.append((mid, doc, None if doc is not None else "manifest file missing"))
        return rows

    def resolve_manifest(self, ref: str) -> tuple[str, Manifest]:
        """A manifest by id or unique id prefix (``sha256:3f2a…`` or ``3f2a…``)."""
        store = self.manifest_store
        hexd = ref.split(":", 1)[1] if ref.startswith("sha256:") else ref
        if len(hexd) < 6 or any(c not in "0123456789abcdef" for c in hexd):
            raise UsageError(f"{ref!r} is not a manifest id", hint="use at least 6 hex digits")
        try:
            names = os.listdir(os.path.join(store.dir, hexd[:2]))
        except (FileNotFoundError, NotADirectoryError):
            names = []
        # Only names of the exact shape a manifest is stored under (no temp files, no
        # signatures, nothing that is not an id).
        found = sorted(
            "sha256:" + hexd[:2] + n[: -len(".json")]
            for n in names
            if len(n) == 62 + len(".json")
            and n.endswith(".json")
            and all(c in "0123456789abcdef" for c in n[:62])
            and (hexd[:2] + n).startswith(hexd)
        )
        if len(found) != 1:
            what = "no manifest" if not found else f"{len(found)} manifests"
            raise UsageError(f"{what} match {ref!r}", hint="see `mlbuild history TARGET`")
        doc = store.get(found[0])
        if doc is None:
            raise UsageError(f"manifest {found[0]} is unreadable")
        return found[0], doc

    def resolve_build(self, ref: str, name: str, instead: str) -> tuple[str, Manifest]:
        """`resolve_manifest`, refusing a manifest of another target or a reproduction (a
        check of a build, not one): what ``rollback --to`` and ``reproduce --manifest``
        accept as a build of ``name``; ``instead`` words the hint, before the build's id."""
        mid, doc = self.resolve_manifest(ref)
        if doc.get("target") != name:
            raise UsageError(f"manifest {mid} is of {doc.get('target')}, not {name}")
        if doc.get("status") == ManifestStatus.REPRODUCTION:
            raise UsageError(
                f"manifest {mid} is a reproduction, not a build of {name}",
                hint=f"{instead} {doc.get('reproduces')}",
            )
        return mid, doc

    def card(self, target: str) -> str:
        """A Markdown model card for ``target``, from its provenance and a fresh audit."""
        from .provenance.card import model_card

        mid, doc = self.manifest(target)
        name = doc["target"]
        # The card states the verdict of a default audit (signatures required when the
        # file lists trusted keys), so it never claims more than `mlbuild audit` would.
        report = self.audit([name], require_signatures=bool(self.pipeline.trusted_keys))
        # A restore shows the facts of the build it restores (metrics, checks, gates,
        # environment…): only its who and when are its own (ManifestStore.view).
        view = self.manifest_store.view(doc)
        return model_card(mid, view, self.lineage(name), report, self.pipeline.targets[name].desc)

    def _no_manifest(self, name: str) -> UsageError:
        """No manifest of ``name`` here. If mlbuild.lock records a build of it (a fresh
        clone: outs and lock committed, `.mlbuild/` absent), a plain build or `pull` finds
        it fresh and records nothing, and `-B` records it without its upstream: the hint
        offers what does bring the records (pull restores only outs that are missing)."""
        if name not in LockFile(self.lock_path).entries:
            return UsageError(
                f"{name} has no manifest here: it was never built in this workspace",
                hint=f"run `mlbuild {name}` first",
            )
        fetch = "fetch the recorded builds from the remote cache: `mlbuild clean --force && "
        rebuild = f"run it and its upstream again: `mlbuild --force-all {name}`"
        return UsageError(
            f"{name} has no manifest here: mlbuild.lock records a build of it, but .mlbuild/"
            " holds no record of that build (as in a fresh clone)",
            hint=f"{fetch}mlbuild pull`, or {rebuild}"
            if self.pipeline.remote
            else f"{rebuild}, or {fetch}mlbuild pull --remote URL`",
        )

    def manifest(self, target: str) -> tuple[str, Manifest]:
        """The id and content of ``target``'s current manifest (its latest build or restore).

        Never built: UsageError (exit 2). Its file missing, corrupt, edited or of another
        target: ManifestError (exit 6) naming the file, never "never built"."""
        from .provenance.records import ManifestError

        name = self.graph.select([target])[0]
        store = self.manifest_store
        mid = store.current(name)
        if mid is None:
            raise self._no_manifest(name)
        rebuild = f"move the file out of .mlbuild/manifests/, then rebuild: `mlbuild -B {name}`"
        try:
            manifest = store.load(mid)
        except ManifestError as exc:
            hint: str | None = rebuild
            if exc.missing:
                hint = f"rebuild it with `mlbuild -B {name}`"
            elif exc.check == "schema":
                hint = exc.hint  # written by another mlbuild version: read it with that one
            raise ManifestError(
                exc.subject,
                exc.found,
                check=exc.check,
                expected=exc.expected,
                what=f"{name}'s current manifest",
                detail=exc.detail,
                hint=hint,
                missing=exc.missing,
            ) from None
        if manifest["target"] != name:
            subject = store.shown(store.path(mid))
            raise ManifestError(
                subject,
                f"a manifest of {manifest['target']}",
                what=f"{name}'s current manifest",
                detail=f"is a manifest of {manifest['target']}",
                hint=rebuild,
            )
        return mid, manifest


class ExperimentQueries(ProvenanceQueries):
    """Experiments and staleness: metrics, params, status, explain, the report's data."""

    def _named(self, targets: Iterable[str] | None) -> list[str]:
        patterns = list(targets or ())
        return self.graph.select(patterns) if patterns else list(self.graph.order)

    def metrics(self, targets: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Target → metrics of its current build (targets without metrics are left out)."""
        from .experiments import current_metrics

        return current_metrics(LockFile(self.lock_path), self._named(targets))

    def metrics_diff(
        self, rev: str | None = None, targets: Iterable[str] | None = None, *, all_: bool = False
    ) -> list[MetricChange]:
        """Current metrics vs each target's previous build, or vs the lock file at git
        revision ``rev``; only changed values unless ``all_``."""
        from .experiments import current_metrics, lock_at_revision, previous_metrics
        from .metrics import diff_metrics

        names = self._named(targets)
        lock = LockFile(self.lock_path)
        new = current_metrics(lock, names)
        if rev is None:
            old = previous_metrics(self.manifest_store, lock, names)
            if not all_:  # built once: nothing to compare with (shown with --all)
                new = {t: m for t, m in new.items() if t in old}
        else:
            entries = lock_at_revision(self.root, self.lock_path, rev)
            old = {n: dict(e.metrics) for n, e in entries.items() if n in names and e.metrics}
        return diff_metrics(old, new, all_=all_)

    def params_diff(self, rev: str | None = None) -> list[ParamChange]:
        """Param values in the workspace that differ from the last build (or from the lock
        file at git revision ``rev``), each with the targets it makes stale."""
        from .experiments import lock_at_revision, params_diff

        recorded = (
            LockFile(self.lock_path).entries
            if rev is None
            else lock_at_revision(self.root, self.lock_path, rev)
        )
        return params_diff(self.pipeline, self.graph, recorded)

    def experiments(
        self,
        targets: Iterable[str] | None = None,
        *,
        all_params: bool = False,
        sort_by: str | None = None,
        order: SortOrder | None = None,
    ) -> ExperimentTable:
        """Every recorded build of the targets, newest first, with its lineage's params and
        its metrics (`exp show`). Default targets: those that declare metrics (all when
        none does)."""
        from .experiments import SortOrder, experiment_table

        patterns = list(targets or ())
        names = self.graph.select(patterns) if patterns else []
        if not patterns:
            names = [n for n in self.graph.order if self.pipeline.targets[n].metrics]
            names = names or list(self.graph.order)
        return experiment_table(
            self.pipeline,
            self.manifest_store,
            names,
            all_params=all_params,
            sort_by=sort_by,
            order=order or SortOrder.ASC,
        )

    def report_data(self) -> dict[str, Any]:
        """Everything `mlbuild report` shows, as plain data (render.html.render_html's input):
        each target's status and current build with its metrics, checks, gates, promotion
        and data profile, the sweeps grouped by the matrix target they came from, and the
        ``plots:`` of every target from the workspace files (mlbuild/plots/)."""
        from .provenance.records import timestamp

        store = self.manifest_store
        statuses = {e.target: e for e in self.status(list(self.graph.order))}
        targets: list[dict[str, Any]] = []
        for name in self.graph.order:
            spec = self.pipeline.targets[name]
            entry = statuses[name]
            mid = store.current(name)
            doc: Mapping[str, Any] = (store.get_usable(mid) if mid is not None else None) or {}
            targets.append(
                {
                    "name": name,
                    "kind": spec.kind,
                    "desc": spec.desc,
                    "deps": list(self.graph.deps[name]),
                    "status": entry.status.value,
                    "reason": entry.first_reason if entry.reasons else "",
                    "manifest": mid if doc else None,
                    "build_status": doc.get("status"),
                    "finished": doc.get("finished"),
                    "seconds": doc.get("seconds"),
                    "metrics": doc.get("metrics"),
                    "checks": doc.get("checks") or [],
                    "gates": doc.get("gates") or [],
                    "promotion": doc.get("promotion"),
                    "profile": (doc.get("profile") or {}).get("tables") or {},
                }
            )
        by_name = {t["name"]: t for t in targets}
        sweeps: dict[str, dict[str, Any]] = {}
        for name in self.graph.order:
            spec = self.pipeline.targets[name]
            if not spec.template:
                continue
            sweep = sweeps.setdefault(
                spec.template, {"template": spec.template, "vars": list(spec.matrix), "members": []}
            )
            sweep["members"].append(
                {"target": name, "matrix": dict(spec.matrix), "metrics": by_name[name]["metrics"]}
            )
        from .plots import WorkspaceFiles, collect  # a file that cannot be drawn: said

        plots = collect(self.pipeline, self.graph.order, [WorkspaceFiles(self.root)], lenient=True)
        return {
            "title": os.path.basename(self.root),
            "generated": timestamp(time.time()),
            "targets": targets,
            "sweeps": list(sweeps.values()),
            "plots": plots,
        }

    def _failures(self) -> Mapping[str, FailedAttempt]:
        """Each target's last failed attempt, as recorded (store/failures.py)."""
        from .store.failures import load_failures

        return load_failures(self.layout.failures_file)

    @staticmethod
    def _failure_now(d: Decision, failures: Mapping[str, FailedAttempt]) -> FailedAttempt | None:
        """``d.target``'s last failed attempt if it would run with the key that failed (an
        edit since: a new key, and the failure no longer says what would run)."""
        attempt = failures.get(d.target)
        if attempt is None or d.action is not Action.RUN or d.key != attempt.key:
            return None
        return attempt

    def status(self, targets: Iterable[str] | None = None) -> list[StatusEntry]:
        """Each target's status and reasons, in build order: the targets matched and their
        upstream, or, with none named, every target of the file, not only `default:`
        (`default:` says what a bare build builds; `status` surveys the whole pipeline, as
        `dvc status` does)."""
        entries: list[StatusEntry] = []
        patterns = list(targets or ())
        if patterns:
            decisions = self.plan(patterns)
        else:
            decider = self._rebuilder(BuildOptions()).decider
            decisions = plan(self.graph, self.pipeline, decider, list(self.graph.order), set())
        lock = LockFile(self.lock_path).entries
        failures = self._failures()
        for d in decisions:
            if d.action is Action.FRESH:
                status = TargetStatus.TEMP if self._temp_gone(d.target) else TargetStatus.FRESH
            elif d.action is Action.RESTORE:
                status = TargetStatus.RESTORABLE
            elif any(r.kind is ReasonKind.NEVER_BUILT for r in d.reasons):
                status = TargetStatus.NEVER_BUILT
            else:
                status = TargetStatus.STALE
            entry = lock.get(d.target)
            undeclared = tuple(sorted(entry.undeclared or ())) if entry is not None else ()
            failure = self._failure_now(d, failures)
            entries.append(StatusEntry(d.target, status, d.reasons, undeclared, failure))
        return entries

    def _temp_gone(self, name: str) -> bool:
        """A fresh `temp` target with an out missing: the decision found it in the cache
        (rebuild/decide.py `temp_in_cache`), else it would not be fresh."""
        spec = self.pipeline.targets[name]
        root = self.pipeline.root
        return spec.temp and any(not os.path.lexists(os.path.join(root, p)) for p in spec.outs)

    def explain(self, target: str) -> Explanation:
        """Every reason ``target`` is stale, with the stale upstream as a tree."""
        name = self.graph.select([target])[0]  # a pattern explains its first match
        order = self.graph.closure([name])
        rebuilder = self._rebuilder(BuildOptions())
        decisions = {
            d.target: d for d in plan(self.graph, self.pipeline, rebuilder.decider, order, set())
        }
        lock = rebuilder.lock
        failures = self._failures()

        def node(n: str) -> Explanation:
            d = decisions[n]
            diffs: dict[str, str] = {}
            entry = lock.entries.get(n)
            for r in d.reasons:
                if r.kind is ReasonKind.CODE and entry is not None and isinstance(r.old, str):
                    diffs[r.subject] = code_diff(self.cache, self.pipeline.root, r.subject, r.old)
            ups = tuple(
                node(u) for u in self.graph.deps[n] if decisions[u].action is not Action.FRESH
            )
            reads = tuple(sorted(entry.undeclared or ())) if entry is not None else ()
            return Explanation(d, ups, diffs, reads, self._failure_now(d, failures))

        return node(name)
