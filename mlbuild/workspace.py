"""The Python API: `Workspace(path).build(...)`, `.status()`, `.explain()`, `.audit()`,
`.lineage()`, `.history()`, `.rollback()`, `.card()`, `.manifest()`, `.metrics()`,
`.metrics_diff()`, `.params_diff()`.

The CLI is a thin layer on this class. Each method loads only what it needs: `graph` and
`list` need the pipeline; `status`, `explain` and the provenance queries need state;
`build` and `rollback` need everything and the workspace lock. This module holds what
writes (build, push, pull, rollback, cache maintenance); the read-only queries are mixed in
from queries.py.

State lives under ``<workspace>/.mlbuild/``; every path there comes from `Workspace.layout`
(store/layout.py documents the tree). The workspace owns one instance of each store over it
(the cache, the manifest store) and hands them to the rebuilder, so a build and the queries
around it see the same in-memory state.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from . import noop, observe
from .config import Pipeline, load_pipeline
from .errors import ConfigError, UsageError
from .events import BuildEvents, NullEvents
from .graph import BuildGraph
from .kinds import LinkType, ManifestStatus
from .locate import locate
from .observe import Observer
from .options import BuildOptions
from .provenance.store import ManifestStore
from .queries import ExperimentQueries, Explanation, StatusEntry
from .rebuild import Accepted, Notes, Rebuilder, accept
from .results import (
    Action,
    BuildResult,
    Decision,
    Outcome,
    TargetResult,
)
from .runner import TargetRunner
from .scheduler import Scheduler, plan
from .store import Cache, Layout, LockFile, StateMemo, WorkspaceLock
from .store.atomic import SyncPoint
from .wiring import Wiring, wire

if TYPE_CHECKING:
    from .executors import Executor
    from .maintenance import CleanReport, GcReport, VerifyReport
    from .protection import Unprotected
    from .provenance.signing import SigningKey
    from .transfer import Transfer, TransferStats

__all__ = ["Explanation", "RollbackResult", "StatusEntry", "Workspace"]


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


class Workspace(ExperimentQueries):
    """One mlbuild workspace: the directory holding mlbuild.yaml."""

    def __init__(
        self,
        path: str | os.PathLike[str] = ".",
        *,
        config: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.overrides = dict(overrides or {})  # --set values over the params (never written)
        self.config_path, self.root, self.lock_path = locate(os.fspath(path), config)
        self.layout = Layout(self.root)  # every path under .mlbuild/
        self.state_dir = self.layout.state_dir

    @cached_property
    def pipeline(self) -> Pipeline:
        return load_pipeline(self.config_path, self.overrides)

    @cached_property
    def cache(self) -> Cache:
        """The local cache, placing files as ``cache.link`` says. A command that must
        work whatever the config (`cache verify`, `gc`) gets the default if it does not
        load: it places nothing in the workspace, and copying is always safe."""
        try:
            link = self.pipeline.cache_link
        except ConfigError:
            return Cache(self.layout.cache_dir)
        return Cache(self.layout.cache_dir, tuple(LinkType(k) for k in link))

    @cached_property
    def manifest_store(self) -> ManifestStore:
        """The one store over ``.mlbuild/manifests/``: every rebuilder of this workspace
        writes through it, so its index of current manifests stays the only one."""
        return ManifestStore(self.layout.manifests_dir)

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
        return StateMemo(self.root, self.layout.state_file, self.layout.trees_dir)

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
        """The rebuilder of one build (or plan, or rollback) over this workspace's stores.
        The manifest store forgets what an earlier build through it remembered: another
        process may have built since, and its histories on disk are the truth."""
        self.manifest_store.refresh()
        return Rebuilder.create(
            self.pipeline,
            memo if memo is not None else self._memo(),
            self.cache,
            lock if lock is not None else LockFile(self.lock_path),
            options,
            self.layout,
            self.manifest_store,
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
        answer_from_stamp: bool = True,
    ) -> BuildResult:
        """Bring the targets (and their upstream) up to date; see `BuildResult`.

        ``executor`` runs the jobs instead of the one the options and mlbuild.yaml choose
        (executors/inline.py: callables in this process, for tests and debugging). A plain
        build may be answered from the no-op stamp (noop.py) unless ``answer_from_stamp``
        is False (the CLI asked it already, before importing this module)."""
        options = options or BuildOptions()
        if jobs is not None:
            options = replace(options, jobs=jobs)
        if options.dry_run:
            return self._dry_run(targets, options)
        targets = tuple(targets) if targets is not None else None
        asked = None
        if executor is None and not self.overrides and "pipeline" not in self.__dict__:
            asked = noop.asked(self.config_path, self.lock_path, tuple(targets or ()), options)
        if asked is not None and answer_from_stamp:
            fast = noop.answer(self.layout, asked, events or NullEvents(), wait=options.wait)
            if fast is not None:
                return fast
        seen = Observer(self.root) if asked is not None else None
        with observe.observing(seen):
            return self._build(targets, options, events, executor, asked, seen)

    def _build(
        self,
        targets: Iterable[str] | None,
        options: BuildOptions,
        events: BuildEvents | None,
        executor: Executor | None,
        asked: dict[str, Any] | None,
        seen: Observer | None,
    ) -> BuildResult:
        """The full build (`build`). With ``seen`` (it is recording), a build that found
        every target fresh leaves a stamp for the next one (noop.py), written under the
        workspace lock; ``asked`` is its key."""
        selected = self.select(targets)
        order = self.graph.closure(selected)
        signer = self.signing_key()  # a bad key fails here, before anything runs
        if seen is not None:
            if signer is not None:
                seen.refuse("manifests are signed")
            if any(self.pipeline.targets[n].temp for n in order):
                seen.refuse("a temp target is in the build")
        with WorkspaceLock(self.layout.workspace_lock, wait=options.wait):
            if seen is not None and noop.left_running(self.layout.running_dir):
                seen.refuse("a killed build left commands running")
            memo, lock, notes = self._memo(), LockFile(self.lock_path), Notes()
            lock.prune(self.pipeline.targets)
            wiring = self._wire(options, order, memo, lock, notes, executor)
            options = wiring.options
            rebuilder = self._rebuilder(
                options, memo=memo, lock=lock, signer=signer, transfer=wiring.transfer, notes=notes
            )
            reporter = events or NullEvents()
            running_dir = self.layout.running_dir
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
            self._batch_durability(True)
            try:
                result = scheduler.run(order, self._forced(selected, order, options))
            finally:
                # Finished targets are recorded even when the build failed or was interrupted.
                rebuilder.save()
                self._batch_durability(False)
                for note in rebuilder.notes:
                    reporter.warning(note)
            if wiring.transfer is not None and wiring.push and not result.interrupted:
                result = self._push_built(wiring.transfer, lock, result, options)
            if seen is not None and asked is not None:
                if wiring.push or rebuilder.notes:
                    seen.refuse("the build pushed or warned")
                noop.keep(self.layout.stamp_file, asked, seen, result, wiring.jobs, memo)
            return result

    def _batch_durability(self, on: bool) -> None:
        """During a build, the cache and the manifest store sync once per batch instead of
        fsyncing each file (atomic.SyncPoint); `Rebuilder.save` settles it."""
        point = SyncPoint([self.layout.cache_dir, self.layout.manifests_dir]) if on else None
        self.cache.sync_point = point
        self.manifest_store.sync_point = point

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
            running_dir=self.layout.running_dir,
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
        try:
            self._push(transfer, lock, names, options, progress)
        finally:
            transfer.close()
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

    def rollback(self, target: str, to: str | None = None) -> RollbackResult:
        """Restore an earlier build of ``target`` from the cache (the previous distinct
        build by default). A build that is already the current one writes nothing."""
        name = self.graph.select([target])[0]
        spec = self.pipeline.targets[name]
        store = self.manifest_store
        if to is not None:
            mid, doc = self.resolve_build(to, name, "roll back to the build it reproduced: --to")
        else:
            current = LockFile(self.lock_path).entries.get(name)
            built = ManifestStatus.BUILT
            candidates = [
                (m, d)
                for m in reversed(store.history(name))
                if (d := store.get_usable(m)) is not None and d.get("status") == built
            ]
            older = [(m, d) for m, d in candidates if current is None or d["key"] != current.key]
            if not older:
                raise UsageError(f"{name} has no earlier build to roll back to")
            mid, doc = older[0]
        with WorkspaceLock(self.layout.workspace_lock, wait=True):
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

    def commit(self, targets: Iterable[str], *, dry_run: bool = False) -> list[Accepted]:
        """`mlbuild commit`: record the outs in the workspace as the build of the current key
        of ``targets``, running nothing (rebuild/accept.py); -n writes nothing."""
        names = self.graph.select(list(targets))
        with WorkspaceLock(self.layout.workspace_lock, wait=True):
            rebuilder = self._rebuilder(BuildOptions(store=not dry_run), signer=self.signing_key())
            return accept(rebuilder, self.graph, names, dry_run=dry_run)

    # ----------------------------------------------------------------- maintenance
    def verify_cache(
        self, *, remote: bool = False, repair: bool = False, options: BuildOptions | None = None
    ) -> VerifyReport:
        """Re-hash every object of the local cache (or the remote); see maintenance.py."""
        from .maintenance import verify

        target = self.transfer(options).remote if remote else None
        with WorkspaceLock(self.layout.workspace_lock, wait=True):
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
        with WorkspaceLock(self.layout.workspace_lock, wait=True):
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
                    self.layout,
                    out_dirs,
                    os.path.dirname(self.lock_path),
                    dry_run=dry_run,
                )
            return report

    def unprotect(self, paths: Iterable[str]) -> list[Unprotected]:
        """Private, writable copies of the outs at ``paths`` hardlinked to the cache
        (protection.py); the workspace lock is held, so no build places outs meanwhile."""
        from .protection import unprotect

        with WorkspaceLock(self.layout.workspace_lock, wait=True):
            return unprotect(self.pipeline, paths)

    def clean(
        self, targets: Iterable[str] | None = None, *, force: bool = False, dry_run: bool = False
    ) -> CleanReport:
        """Remove the outs of ``targets`` (every target by default, not ``default:``: as
        ``make clean``) that the cache can restore; see maintenance.py."""
        from .maintenance import clean

        names, memo = self._named(targets), self._memo()
        memo.path = None  # hashing for clean is not worth a write of the memo
        with WorkspaceLock(self.layout.workspace_lock, wait=True):  # no build writing outs
            lock = LockFile(self.lock_path)
            return clean(self.pipeline, names, self.cache, lock, memo, force=force, dry_run=dry_run)
