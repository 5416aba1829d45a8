"""The Python API: `Workspace(path).build(...)`, `.status()`, `.explain()`, `.audit()`,
`.lineage()`, `.history()`, `.rollback()`, `.card()`, `.manifest()`, `.metrics()`,
`.metrics_diff()`, `.params_diff()`.

The CLI is a thin layer on this class. Each method loads only what it needs: `graph` and
`list` need the pipeline; `status`, `explain` and the provenance queries need state;
`build` and `rollback` need everything and the workspace lock.

State lives under ``<workspace>/.mlbuild/``::

    cache/      objects and run cache (store/cache.py)
    state.json  stat → digest memo (store/state.py)
    logs/       one log per target, from its last run
    aside/      outs moved out of the way before a target ran
    failed/     partial outs of the last failed run of a target
    manifests/  provenance manifests, signatures and per-target history (manifest.py)
    running/    commands running now, so a build after a kill -9 can stop them
    lock        the workspace lock (flock)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .config import CONFIG_NAME, STATE_DIR, Pipeline, find_config, load_pipeline
from .errors import UsageError
from .events import BuildEvents, NullEvents
from .graph import BuildGraph
from .model import (
    Action,
    BuildResult,
    Decision,
    Outcome,
    Reason,
    ReasonKind,
    TargetResult,
    TargetStatus,
)
from .options import BuildOptions
from .provenance.store import ManifestStore
from .rebuild import Notes, Rebuilder, code_diff
from .runner import TargetRunner
from .scheduler import Scheduler, plan
from .store import Cache, LockFile, StateMemo, WorkspaceLock
from .wiring import Wiring, wire

if TYPE_CHECKING:
    from .executors import Executor
    from .experiments import ParamChange
    from .maintenance import GcReport, VerifyReport
    from .metrics import MetricChange
    from .provenance.findings import AuditReport
    from .provenance.signing import SigningKey
    from .transfer import Transfer, TransferStats

__all__ = ["Explanation", "RollbackResult", "StatusEntry", "Workspace"]


@dataclass(frozen=True)
class StatusEntry:
    target: str
    status: TargetStatus
    reasons: tuple[Reason, ...]
    # What its last build read without declaring it (reads.py): fresh or not, its key
    # does not cover these files.
    undeclared: tuple[str, ...] = ()

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


@dataclass(frozen=True)
class RollbackResult:
    """What `Workspace.rollback` did."""

    target: str
    to: str  # the manifest rolled back to
    manifest: str | None  # the rollback manifest written; None: ``to`` was current already
    stale: tuple[str, ...]  # the targets built from the outs it replaced: stale now

    @property
    def already_current(self) -> bool:
        return self.manifest is None


class Workspace:
    """One mlbuild workspace: the directory holding mlbuild.yaml."""

    def __init__(self, path: str | os.PathLike[str] = ".", *, config: str | None = None) -> None:
        if config is not None:
            self.config_path = os.path.abspath(config)
        else:
            start = os.fspath(path)
            direct = os.path.join(start, CONFIG_NAME)
            self.config_path = (
                os.path.abspath(direct) if os.path.isfile(direct) else find_config(start)
            )
        self.root = os.path.dirname(self.config_path)
        # One lock file per config file, beside it: mlbuild.yaml → mlbuild.lock, so two
        # pipelines in one directory never prune each other's entries.
        stem = os.path.splitext(os.path.basename(self.config_path))[0]
        self.lock_path = os.path.join(self.root, stem + ".lock")
        self.state_dir = os.path.join(self.root, STATE_DIR)

    @cached_property
    def pipeline(self) -> Pipeline:
        return load_pipeline(self.config_path)

    @cached_property
    def cache(self) -> Cache:
        return Cache(os.path.join(self.state_dir, "cache"))

    @cached_property
    def manifest_store(self) -> ManifestStore:
        return ManifestStore(os.path.join(self.state_dir, "manifests"))

    @cached_property
    def graph(self) -> BuildGraph:
        return BuildGraph.from_pipeline(self.pipeline)

    def select(self, targets: Iterable[str] | None) -> list[str]:
        """Requested targets (patterns), else the file's `default`, else every target."""
        patterns = list(targets or ()) or list(self.pipeline.default)
        if not patterns:
            return list(self.graph.order)
        return self.graph.select(patterns)

    def _memo(self) -> StateMemo:
        return StateMemo(self.root, os.path.join(self.state_dir, "state.json"))

    def _rebuilder(
        self,
        options: BuildOptions,
        *,
        memo: StateMemo | None = None,
        lock: LockFile | None = None,
        signer: SigningKey | None = None,
        transfer: Transfer | None = None,
        notes: Notes | None = None,
    ) -> Rebuilder:
        return Rebuilder.create(
            self.pipeline,
            memo if memo is not None else self._memo(),
            self.cache,
            lock if lock is not None else LockFile(self.lock_path),
            options,
            self.state_dir,
            signer=signer,
            transfer=transfer,
            notes=notes,
        )

    def code_deps(self, target: str) -> list[str]:
        """The workspace files ``target``'s code deps resolve to now (``show``): the same
        scan a build does, with the state memo read but not written."""
        memo = self._memo()
        memo.path = None  # show changes nothing on disk
        rebuilder = self._rebuilder(BuildOptions(), memo=memo)
        return rebuilder.keys.code_files(self.pipeline.targets[target])

    def undeclared_reads(self, target: str) -> list[str]:
        """The workspace files ``target``'s last recorded build read without declaring
        them (mlbuild/reads.py): its key does not cover them."""
        entry = LockFile(self.lock_path).entries.get(target)
        return sorted(entry.undeclared or ()) if entry is not None else []

    @staticmethod
    def _forced(selected: Sequence[str], order: Sequence[str], options: BuildOptions) -> set[str]:
        if options.force_all:
            return set(order)
        return set(selected) if options.force else set()

    def plan(
        self, targets: Iterable[str] | None = None, options: BuildOptions | None = None
    ) -> list[Decision]:
        """What a build would do, target by target, without changing anything."""
        options = options or BuildOptions()
        selected = self.select(targets)
        order = self.graph.closure(selected)
        # -n --pull: say what the remote would restore
        transfer = self.transfer(options) if options.pull else None
        rebuilder = self._rebuilder(options, transfer=transfer)
        return plan(
            self.graph,
            self.pipeline,
            rebuilder.decider,
            order,
            self._forced(selected, order, options),
        )

    def build(
        self,
        targets: Iterable[str] | None = None,
        *,
        jobs: int | None = None,
        options: BuildOptions | None = None,
        events: BuildEvents | None = None,
        executor: Executor | None = None,
    ) -> BuildResult:
        """Bring the targets (and their upstream) up to date; see `BuildResult`.

        ``executor`` runs the jobs instead of the one the options and mlbuild.yaml choose
        (executors/inline.py: callables in this process, for tests and debugging)."""
        options = options or BuildOptions()
        if jobs is not None:
            options = replace(options, jobs=jobs)
        if options.dry_run:
            return self._dry_run(targets, options)
        selected = self.select(targets)
        order = self.graph.closure(selected)
        signer = self.signing_key()  # a bad key fails here, before anything runs
        with WorkspaceLock(os.path.join(self.state_dir, "lock"), wait=options.wait):
            memo, lock, notes = self._memo(), LockFile(self.lock_path), Notes()
            lock.prune(self.pipeline.targets)
            wiring = self._wire(options, order, memo, lock, notes, executor)
            options = wiring.options
            rebuilder = self._rebuilder(
                options, memo=memo, lock=lock, signer=signer, transfer=wiring.transfer, notes=notes
            )
            reporter = events or NullEvents()
            running_dir = os.path.join(self.state_dir, "running")
            runner = TargetRunner(
                rebuilder, wiring.executor, reporter, run=options.run, running_dir=running_dir
            )
            scheduler = Scheduler(
                self.pipeline,
                self.graph,
                rebuilder.decider,
                runner,
                options,
                reporter,
                wiring.executor,
                jobs=wiring.jobs,
                running_dir=running_dir,
            )
            try:
                result = scheduler.run(order, self._forced(selected, order, options))
            finally:
                # Finished targets are recorded even when the build failed or was interrupted.
                rebuilder.save()
                for note in rebuilder.notes:
                    reporter.warning(note)
            if wiring.transfer is not None and wiring.push and not result.interrupted:
                result = self._push_built(wiring.transfer, lock, result, options)
            return result

    def _push_built(
        self, transfer: Transfer, lock: LockFile, result: BuildResult, options: BuildOptions
    ) -> BuildResult:
        """--push / remote_write, at the end of a build: upload what it made current."""
        done = [
            t.target
            for t in result.targets
            if t.outcome in (Outcome.RAN, Outcome.RESTORED, Outcome.FRESH)
        ]
        self._push(transfer, lock, done, options)
        return replace(result, pushed=transfer.pushed.describe())

    def _wire(
        self,
        options: BuildOptions,
        order: list[str],
        memo: StateMemo,
        lock: LockFile,
        notes: Notes,
        executor: Executor | None,
    ) -> Wiring:
        """The build's executor, -j and remote (wiring.py), under the workspace lock."""

        def nothing_to_run() -> bool:
            planner = self._rebuilder(options, memo=memo, lock=lock, notes=notes)
            decisions = plan(self.graph, self.pipeline, planner.decider, order, set())
            return all(d.action is Action.FRESH for d in decisions)

        return wire(
            self.pipeline,
            options,
            memo=memo,
            cache=self.cache,
            running_dir=os.path.join(self.state_dir, "running"),
            nothing_to_run=nothing_to_run,
            open_transfer=self.transfer,
            executor=executor,
        )

    def transfer(self, options: BuildOptions | None = None) -> Transfer:
        """Pull/push against the remote: --remote, else mlbuild.yaml's ``remote:``."""
        from .store.remote import Remote
        from .transfer import Transfer

        options = options or BuildOptions()
        url = options.remote or self.pipeline.remote
        if url is None:
            raise UsageError(
                "no remote cache configured",
                hint="add remote: URL to mlbuild.yaml or pass --remote URL",
            )
        if "://" not in url:  # a plain path is relative to the workspace, not the cwd
            url = os.path.join(self.root, url)
        remote = Remote(url, self.pipeline.remote_options)
        return Transfer(self.cache, self.manifest_store, remote)

    def _push(
        self,
        transfer: Transfer,
        lock: LockFile,
        targets: Sequence[str],
        options: BuildOptions,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Upload the current builds of ``targets`` (skipping what the remote has), 2×jobs
        transfers at a time; ``progress(done, total)`` after each build. Returns how many
        builds were sent."""
        from concurrent.futures import ThreadPoolExecutor, as_completed

        keys = sorted(
            {
                lock.entries[t].key
                for t in targets
                if t in lock.entries and self.cache.read_run(lock.entries[t].key) is not None
            }
        )
        sent = 0
        with ThreadPoolExecutor(max_workers=options.effective_jobs(None) * 2) as pool:
            futures = [pool.submit(transfer.push, key) for key in keys]
            for done, future in enumerate(as_completed(futures), 1):
                sent += future.result()
                if progress is not None:
                    progress(done, len(keys))
        return sent

    def push(
        self,
        targets: Iterable[str] | None = None,
        options: BuildOptions | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> TransferStats:
        """Upload the current builds (lock file) of ``targets`` (all by default);
        ``progress(done, total)`` is called as builds finish (the CLI's progress bar)."""
        options = options or BuildOptions()
        names = self._named(targets)
        transfer = self.transfer(options)
        lock = LockFile(self.lock_path)
        missing = [
            n for n in names if n in lock.entries and not self.cache.read_run(lock.entries[n].key)
        ]
        if missing:
            raise UsageError(
                f"cannot push {', '.join(missing)}: not in the local cache "
                "(built with --no-cache, or restored by hand)",
                hint="rebuild them with `mlbuild -B TARGET`",
            )
        self._push(transfer, lock, names, options, progress)
        return transfer.pushed

    def pull(
        self,
        targets: Iterable[str] | None = None,
        options: BuildOptions | None = None,
        events: BuildEvents | None = None,
    ) -> BuildResult:
        """Restore ``targets`` (and their upstream) from the local cache or the remote,
        running nothing: a target neither holds is reported as not available."""
        options = replace(
            options or BuildOptions(), pull=True, run=False, push=False, keep_going=True
        )
        self.transfer(options)  # no remote configured: a usage error before anything
        return self.build(targets, options=options, events=events)

    def _dry_run(self, targets: Iterable[str] | None, options: BuildOptions) -> BuildResult:
        """A build that only decides: WOULD_RUN / WOULD_RESTORE / FRESH, nothing changed."""
        started = time.monotonic()
        outcome = {
            Action.FRESH: Outcome.FRESH,
            Action.RESTORE: Outcome.WOULD_RESTORE,
            Action.RUN: Outcome.WOULD_RUN,
        }
        results = tuple(
            TargetResult(d.target, outcome[d.action], reasons=d.reasons)
            for d in self.plan(targets, options)
        )
        return BuildResult(results, time.monotonic() - started)

    def signing_key(self) -> SigningKey | None:
        """The key manifests are signed with: $MLBUILD_SIGNING_KEY, else `signing.key`."""
        from_env = os.environ.get("MLBUILD_SIGNING_KEY")
        if not from_env and self.pipeline.signing_key is None:
            return None
        from .provenance.signing import load_private_key

        if from_env:
            return load_private_key(from_env, origin="$MLBUILD_SIGNING_KEY")
        assert self.pipeline.signing_key is not None
        path = os.path.join(self.root, self.pipeline.signing_key)
        return load_private_key(path, origin="signing.key in mlbuild.yaml")

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

    def history(self, target: str) -> list[tuple[str, dict[str, Any] | None, str | None]]:
        """Every manifest of ``target``, newest first: ``(id, record, problem)``, the record
        None and the problem named for one whose file is gone or fails the strict parser
        (one bad record does not hide the rest of the history)."""
        from .provenance.records import ManifestError

        name = self.graph.select([target])[0]
        store = self.manifest_store
        rows: list[tuple[str, dict[str, Any] | None, str | None]] = []
        for mid in reversed(store.history(name)):
            try:
                doc = store.get(mid)
            except ManifestError as exc:
                rows.append((mid, None, f"{exc.subject}: {exc.found}"))
                continue
            rows.append((mid, doc, None if doc is not None else "manifest file missing"))
        return rows

    def resolve_manifest(self, ref: str) -> tuple[str, dict[str, Any]]:
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

    def rollback(self, target: str, to: str | None = None) -> RollbackResult:
        """Restore an earlier build of ``target`` from the cache (the previous distinct
        build by default). A build that is already the current one writes nothing."""
        name = self.graph.select([target])[0]
        spec = self.pipeline.targets[name]
        store = self.manifest_store
        if to is not None:
            mid, doc = self.resolve_manifest(to)
            if doc.get("target") != name:
                raise UsageError(f"manifest {mid} is of {doc.get('target')}, not {name}")
            if doc.get("status") == "reproduction":  # a check of a build, not one (reproduce.py)
                raise UsageError(
                    f"manifest {mid} is a reproduction, not a build of {name}",
                    hint=f"roll back to the build it reproduced: --to {doc.get('reproduces')}",
                )
        else:
            current = LockFile(self.lock_path).entries.get(name)
            candidates = [
                (m, d)
                for m in reversed(store.history(name))
                if (d := store.get_usable(m)) is not None and d.get("status") == "built"
            ]
            older = [(m, d) for m, d in candidates if current is None or d["key"] != current.key]
            if not older:
                raise UsageError(f"{name} has no earlier build to roll back to")
            mid, doc = older[0]
        with WorkspaceLock(os.path.join(self.state_dir, "lock"), wait=True):
            rebuilder = self._rebuilder(BuildOptions(), signer=self.signing_key())
            new = rebuilder.materializer.rollback(spec, mid, doc)
            if new is None:
                return RollbackResult(name, mid, None, ())
            rebuilder.save()
            lock = rebuilder.lock
        outs = {rec.path: rec.xxh for rec in lock.entries[name].outs}
        stale = tuple(
            child
            for child in self.graph.dependents[name]
            if (entry := lock.entries.get(child)) is not None
            and any(
                path in outs and digest != outs[path]
                for path, digest in (entry.components.get("deps") or {}).items()
            )
        )
        return RollbackResult(name, mid, new, stale)

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

    def manifest(self, target: str) -> tuple[str, dict[str, Any]]:
        """The id and content of ``target``'s current manifest (its latest build or restore).

        Never built: UsageError (exit 2). Its file missing, corrupt, edited or of another
        target: ManifestError (exit 6) naming the file, never "never built"."""
        from .provenance.records import ManifestError

        name = self.graph.select([target])[0]
        store = self.manifest_store
        mid = store.current(name)
        if mid is None:
            raise UsageError(
                f"{name} has no manifest here: it was never built in this workspace",
                hint=f"run `mlbuild {name}` first",
            )
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

    # ----------------------------------------------------------------- maintenance
    def verify_cache(
        self, *, remote: bool = False, repair: bool = False, options: BuildOptions | None = None
    ) -> VerifyReport:
        """Re-hash every object of the local cache (or the remote); see maintenance.py."""
        from .maintenance import verify

        target = self.transfer(options).remote if remote else None
        with WorkspaceLock(os.path.join(self.state_dir, "lock"), wait=True):
            return verify(self.cache, target, repair=repair)

    def gc(
        self,
        *,
        keep: int = 3,
        remote: bool = False,
        dry_run: bool = False,
        options: BuildOptions | None = None,
    ) -> GcReport:
        """Delete cache objects and run-cache entries that neither the lock file nor the
        last ``keep`` builds of a target need (manifests are kept); see maintenance.py."""
        from .maintenance import collect, remove_leftovers

        if keep < 1:
            raise UsageError("--keep must be at least 1", hint="the current build is one")
        target = self.transfer(options).remote if remote else None
        with WorkspaceLock(os.path.join(self.state_dir, "lock"), wait=True):
            report = collect(
                self.cache,
                self.manifest_store,
                LockFile(self.lock_path),
                list(self.pipeline.targets),
                target,
                keep=keep,
                dry_run=dry_run,
            )
            if target is None:
                out_dirs = [
                    os.path.dirname(os.path.join(self.root, rel)) for rel in self.pipeline.out_owner
                ]
                report.removed_temporaries += remove_leftovers(
                    self.state_dir, out_dirs, os.path.dirname(self.lock_path), dry_run=dry_run
                )
            return report

    # ----------------------------------------------------------------- experiments
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

    def report_data(self) -> dict[str, Any]:
        """Everything `mlbuild report` shows, as plain data (render.html.render_html's input):
        each target's status and current build with its metrics, checks, gates, promotion
        and data profile, and the sweeps grouped by the matrix target they came from."""
        from .provenance.records import timestamp

        store = self.manifest_store
        statuses = {e.target: e for e in self.status(list(self.graph.order))}
        targets: list[dict[str, Any]] = []
        for name in self.graph.order:
            spec = self.pipeline.targets[name]
            entry = statuses[name]
            mid = store.current(name)
            doc = (store.get_usable(mid) if mid is not None else None) or {}
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
        return {
            "title": os.path.basename(self.root),
            "generated": timestamp(time.time()),
            "targets": targets,
            "sweeps": list(sweeps.values()),
        }

    def status(self, targets: Iterable[str] | None = None) -> list[StatusEntry]:
        entries: list[StatusEntry] = []
        decisions = self.plan(targets)
        lock = LockFile(self.lock_path).entries
        for d in decisions:
            if d.action is Action.FRESH:
                status = TargetStatus.FRESH
            elif d.action is Action.RESTORE:
                status = TargetStatus.RESTORABLE
            elif any(r.kind is ReasonKind.NEVER_BUILT for r in d.reasons):
                status = TargetStatus.NEVER_BUILT
            else:
                status = TargetStatus.STALE
            entry = lock.get(d.target)
            undeclared = tuple(sorted(entry.undeclared or ())) if entry is not None else ()
            entries.append(StatusEntry(d.target, status, d.reasons, undeclared))
        return entries

    def explain(self, target: str) -> Explanation:
        """Every reason ``target`` is stale, with the stale upstream as a tree."""
        name = self.graph.select([target])[0]  # a pattern explains its first match
        order = self.graph.closure([name])
        rebuilder = self._rebuilder(BuildOptions())
        decisions = {
            d.target: d for d in plan(self.graph, self.pipeline, rebuilder.decider, order, set())
        }
        lock = rebuilder.lock

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
            return Explanation(d, ups, diffs, reads)

        return node(name)
