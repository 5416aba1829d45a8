"""The dynamic scheduler: a target starts as soon as its own deps are done.

::

    ready heap (build order) ──▶ decide ──FRESH──▶ done (unlock dependents)
         ▲                         │RESTORE / RUN
         │                         ▼
         └──── unlock ◀── worker thread: restore, or run + commit ◀── -j slots + resources

The main thread decides and launches; each running job has one worker thread that blocks
on its subprocess or loky future, so ``-j`` bounds jobs in flight, not CPU use. No files,
no rich here: results go out through `BuildEvents`.
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from .config import Pipeline, TargetSpec
from .errors import CheckFailed, MlbuildError, UsageError
from .events import BuildEvents
from .executors import Executor
from .executors.local import LocalExecutor, reap_orphans
from .graph import BuildGraph
from .interrupts import Terminated, stop_on_signals
from .jobs import Job, Masker, tail_lines
from .model import Action, BuildResult, Decision, Outcome, TargetResult
from .options import BuildOptions
from .rebuilder import Rebuilder
from .store import OutRecord

__all__ = ["Scheduler", "plan"]


@dataclass(frozen=True)
class _Done:
    result: TargetResult
    outs: tuple[OutRecord, ...] | None


_SHOWN_READS = 5  # undeclared reads named one per line; the rest are counted


def _cluster_threads(executor: Executor | None) -> int:
    """Default -j: the cluster's worker threads for Dask, else this machine's CPUs."""
    threads = getattr(executor, "threads", None)
    return int(threads) if threads else os.cpu_count() or 1


def plan(
    graph: BuildGraph,
    pipeline: Pipeline,
    rebuilder: Rebuilder,
    order: list[str],
    forced: set[str],
) -> list[Decision]:
    """Decide every target without running anything (status, -n, -q).

    A target whose upstream would run cannot know its key yet (keys use the upstream's
    actual out digests), so it is reported as RUN with every cause: its own, then an
    "upstream is stale" reason per such upstream (`Rebuilder.decide_behind`). A target
    found FRESH against an upstream's build that the build would restore is not fresh
    while the workspace holds other outs of that upstream (after a `rollback`, say): it
    is reported as RUN, "upstream X is stale: T was built from another ...".
    """
    known: dict[str, tuple[OutRecord, ...]] = {}
    actions: dict[str, Action] = {}
    decisions: list[Decision] = []
    for name in order:
        spec = pipeline.targets[name]
        unknown = [d for d in graph.deps[name] if d not in known]
        if unknown:
            decision = rebuilder.decide_behind(spec, known, unknown, force=name in forced)
            decisions.append(decision)
            actions[name] = decision.action
            continue
        decision = rebuilder.decide(spec, known, force=name in forced)
        if decision.action is Action.FRESH:
            restoring = [d for d in graph.deps[name] if actions.get(d) is not Action.FRESH]
            behind = rebuilder.built_from_others(spec, restoring) if restoring else []
            if behind:
                # Its outs stay as they are (the restore makes them right again), so its
                # own downstream is judged against them.
                decision = Decision(name, Action.RUN, None, tuple(behind), decision.components)
                known[name] = rebuilder.lock.entries[name].outs
        decisions.append(decision)
        actions[name] = decision.action
        if decision.action is Action.FRESH:
            known[name] = rebuilder.lock.entries[name].outs
        elif decision.action is Action.RESTORE and decision.key is not None:
            run = rebuilder.local_run(spec, decision.key)
            recs = run.outs if run is not None else rebuilder.remote_outs(spec, decision.key)
            if recs is not None:
                known[name] = tuple(recs)
    return decisions


class Scheduler:
    def __init__(
        self,
        pipeline: Pipeline,
        graph: BuildGraph,
        rebuilder: Rebuilder,
        options: BuildOptions,
        events: BuildEvents,
        executor: Executor | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.graph = graph
        self.rebuilder = rebuilder
        self.options = options
        self.events = events
        self.capacity = dict(options.resources)
        self.in_use = {name: 0 for name in self.capacity}
        self.running_dir = os.path.join(rebuilder.state_dir, "running")
        kind = options.executor or pipeline.executor
        if executor is None and kind == "dask":
            from .executors.dask import DaskExecutor

            address = options.dask_address or pipeline.executor_address
            if address is None:
                raise UsageError(
                    "the dask executor needs a scheduler address",
                    hint="pass --dask-address tcp://HOST:8786 or set executor.address",
                )
            staging = None
            if (options.dask_mode or pipeline.executor_mode) == "remote":
                from .staging import RemoteStaging

                if rebuilder.transfer is None:
                    raise UsageError(
                        "the dask executor's remote mode moves data through the remote "
                        "cache, and no remote is configured",
                        hint="add remote: URL to mlbuild.yaml or pass --remote URL",
                    )
                staging = RemoteStaging(
                    pipeline.root, rebuilder.memo, rebuilder.cache, rebuilder.transfer
                )
            executor = DaskExecutor(address, staging=staging)
        elif executor is None and kind != "local":
            raise UsageError(f"unknown executor {kind!r}", hint="use local or dask")
        self.jobs = options.jobs or pipeline.jobs or _cluster_threads(executor)
        self.executor: Executor = executor or LocalExecutor(
            self.jobs, stream=options.verbose, running_dir=self.running_dir
        )

    def _check_resources(self, order: list[str]) -> None:
        for name in order:
            for pool, amount in self.pipeline.targets[name].resources.items():
                if pool in self.capacity and amount > self.capacity[pool]:
                    raise UsageError(
                        f"{name} needs {pool}={amount} but --resources gives {pool}="
                        f"{self.capacity[pool]}",
                        hint=f"raise --resources {pool}=...",
                    )

    def _fits(self, spec: TargetSpec) -> bool:
        return all(
            self.in_use[p] + n <= self.capacity[p]
            for p, n in spec.resources.items()
            if p in self.capacity
        )

    def _take(self, spec: TargetSpec, sign: int) -> None:
        for p, n in spec.resources.items():
            if p in self.capacity:
                self.in_use[p] += sign * n

    def run(self, order: list[str], forced: set[str]) -> BuildResult:
        """Build ``order``; SIGTERM and SIGHUP are handled as Ctrl-C meanwhile (see
        interrupts.py), then the caller's handlers are back."""
        with stop_on_signals():
            return self._run(order, forced)

    def _run(self, order: list[str], forced: set[str]) -> BuildResult:
        self._check_resources(order)
        for leftover in reap_orphans(self.running_dir):
            self.events.warning(f"stopped {leftover}, left running by an mlbuild that was killed")
        started = time.monotonic()
        index = {name: i for i, name in enumerate(order)}
        in_build = set(order)
        waiting = {n: {d for d in self.graph.deps[n] if d in in_build} for n in order}
        dependents: dict[str, list[str]] = {n: [] for n in order}
        for n in order:
            for d in waiting[n]:
                dependents[d].append(n)
        ready = [(index[n], n) for n in order if not waiting[n]]
        heapq.heapify(ready)
        outs: dict[str, tuple[OutRecord, ...]] = {}
        results: dict[str, TargetResult] = {}
        running: dict[Future[_Done], str] = {}
        stopping = False
        interrupted = False
        terminated: Terminated | None = None
        executor = self.executor
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="mlbuild-job")
        self.events.build_started(order, self.jobs)

        def finish(name: str, done: _Done) -> None:
            results[name] = done.result
            self.events.target_finished(done.result)
            if done.outs is not None:
                outs[name] = done.outs
                for child in dependents[name]:
                    waiting[child].discard(name)
                    if not waiting[child]:
                        heapq.heappush(ready, (index[child], child))
            elif self.options.keep_going:
                for child in self.graph.downstream([name]):
                    if child in in_build and child not in results:
                        results[child] = TargetResult(
                            child, Outcome.SKIPPED, error=f"upstream {name} failed"
                        )
                        self.events.target_finished(results[child])

        try:
            while True:
                deferred: list[tuple[int, str]] = []
                while ready and not stopping and len(running) < self.jobs:
                    item = heapq.heappop(ready)
                    name = item[1]
                    if name in results:
                        continue
                    spec = self.pipeline.targets[name]
                    if not self._fits(spec):
                        deferred.append(item)
                        continue
                    try:
                        decision = self.rebuilder.decide(spec, outs, force=name in forced)
                    except MlbuildError as exc:
                        finish(
                            name, _Done(TargetResult(name, Outcome.FAILED, error=exc.message), None)
                        )
                        stopping = stopping or not self.options.keep_going
                        continue
                    if decision.action is Action.RUN and not self.options.run:
                        # `mlbuild pull`: restore what the caches hold, run nothing.
                        error = "not in the local cache or the remote: build it with mlbuild"
                        finish(name, _Done(TargetResult(name, Outcome.SKIPPED, error=error), None))
                        continue
                    if decision.action is Action.FRESH:
                        finish(
                            name,
                            _Done(
                                TargetResult(name, Outcome.FRESH),
                                self.rebuilder.lock.entries[name].outs,
                            ),
                        )
                        continue
                    self.events.target_started(decision)
                    self._take(spec, +1)
                    running[pool.submit(self._execute, spec, decision, dict(outs))] = name
                for item in deferred:
                    heapq.heappush(ready, item)
                if not running:
                    break
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in sorted(finished, key=lambda f: index[running[f]]):
                    name = running.pop(fut)
                    self._take(self.pipeline.targets[name], -1)
                    done = fut.result()
                    finish(name, done)
                    if done.outs is None and not self.options.keep_going:
                        stopping = True
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (see interrupts.py)
            interrupted = True
            terminated = exc if isinstance(exc, Terminated) else None
            executor.kill_all()
            for fut, name in running.items():
                try:
                    finish(name, fut.result())
                except Exception as error:  # pragma: no cover - best effort on the way out
                    finish(name, _Done(TargetResult(name, Outcome.FAILED, error=str(error)), None))
        except BaseException:
            # Anything else escaping the loop (a handler of the caller's own that raises
            # SystemExit, a bug): no command may outlive the build, writing outs.
            executor.kill_all()
            raise
        finally:
            pool.shutdown(wait=True)
            executor.shutdown()
        for name in order:
            if name not in results:
                results[name] = TargetResult(
                    name, Outcome.SKIPPED, error="interrupted" if interrupted else "not started"
                )
        result = BuildResult(
            targets=tuple(results[n] for n in order),
            seconds=time.monotonic() - started,
            interrupted=interrupted,
        )
        self.events.build_finished(result)
        if terminated is not None:
            # SIGTERM/SIGHUP ask the process to end: after the orderly stop, the caller
            # (the CLI: exit 128+N; Workspace.build: its lock is saved and released on the
            # way) sees the signal, where Ctrl-C returns an interrupted result.
            raise terminated
        return result

    def _execute(
        self, spec: TargetSpec, decision: Decision, upstream: Mapping[str, tuple[OutRecord, ...]]
    ) -> _Done:
        """Runs in a worker thread: restore, or run the job and commit its outs."""
        t0 = time.monotonic()
        wall = time.time()
        rb = self.rebuilder
        if decision.action is Action.RESTORE:
            try:
                recs = rb.restore(spec, decision, wall)
                return _Done(
                    TargetResult(
                        spec.name, Outcome.RESTORED, time.monotonic() - t0, decision.reasons
                    ),
                    recs,
                )
            except (OSError, MlbuildError) as exc:
                if not self.options.run:  # `mlbuild pull` runs nothing
                    error = f"restore failed ({exc})"
                    return _Done(TargetResult(spec.name, Outcome.SKIPPED, error=error), None)
                self.events.warning(f"{spec.name}: restore failed ({exc}); running it instead")
        log = rb.log_path(spec.name)
        missing = sorted(n for n, source in spec.secrets.items() if source not in os.environ)
        if missing:
            sources = ", ".join(f"${spec.secrets[n]}" for n in missing)
            error = f"secret env {', '.join(missing)} is read from {sources}, which is not set"
            return _Done(
                TargetResult(spec.name, Outcome.FAILED, 0.0, decision.reasons, error), None
            )
        secrets = {name: os.environ[source] for name, source in spec.secrets.items()}
        mask = Masker(list(secrets.values()))
        promotion = None
        try:
            rb.prepare(spec)
            if spec.promote is not None:
                promotion = rb.promote(spec)  # copies the winner's outs; nothing runs
        except CheckFailed as exc:
            return self._rejected(spec, decision, exc, t0)
        except (OSError, MlbuildError) as exc:
            return _Done(
                TargetResult(spec.name, Outcome.FAILED, 0.0, decision.reasons, error=str(exc)), None
            )
        if promotion is not None:
            self.events.target_output(
                spec.name, f"promoted {promotion['winner']} by {promotion['by']}"
            )
            return self._commit(spec, decision, upstream, wall, t0, promotion)
        job = Job(
            target=spec.name,
            root=self.pipeline.root,
            cmds=spec.cmd,
            python=spec.python,
            env={
                **spec.env,
                **secrets,
                "MLBUILD_TARGET": spec.name,
                "MLBUILD_OUTS": " ".join(spec.outs),
            },
            deps=spec.dep_paths,
            outs=spec.outs,
            params=dict(spec.params),
            matrix=dict(spec.matrix),
            log_path=log,
            secret_env=tuple(sorted(secrets)),
            running_dir=self.running_dir,
            retries=spec.retries,
            resources=dict(spec.resources),
            inputs=tuple(sorted({*spec.dep_paths, *decision.components.get("code", {})})),
        )
        if mask:
            # The executor masks the log as the bytes arrive (jobs.StreamMasker); the lines
            # shown (-v) are masked here too, whatever executor produced them.
            result = self.executor.run(
                job, lambda t, line: self.events.target_output(t, mask(line))
            )
        else:
            result = self.executor.run(job, self.events.target_output)
        if not result.ok:
            return self._failed(spec, decision, mask(result.error), t0)
        undeclared = self.rebuilder.undeclared_reads(
            spec, decision, result.read, result.written
        )
        if undeclared and spec.strict_inputs:
            error = (
                f"read {', '.join(undeclared)}, which it does not declare (strict_inputs); "
                "add it to deps, or to outs if the target writes it"
            )
            return self._failed(spec, decision, error, t0)
        return self._commit(spec, decision, upstream, wall, t0, None, undeclared)

    def _commit(
        self,
        spec: TargetSpec,
        decision: Decision,
        upstream: Mapping[str, tuple[OutRecord, ...]],
        wall: float,
        t0: float,
        promotion: dict[str, Any] | None,
        undeclared: Mapping[str, str] | None = None,
    ) -> _Done:
        """Commit a finished run (or promotion): checks and gates first (see Rebuilder)."""
        ran_on = self.executor.executor_record(spec.name) if promotion is None else None
        paths = sorted(undeclared or ())
        for path in paths[:_SHOWN_READS]:
            self.events.warning(
                f"{spec.name} read {path}, which it does not declare: its key does not cover it"
            )
        if len(paths) > _SHOWN_READS:
            self.events.warning(
                f"{spec.name} read {len(paths) - _SHOWN_READS} more undeclared file(s); "
                f"mlbuild show {spec.name} lists them all"
            )
        try:
            commit = self.rebuilder.commit(
                spec, decision, upstream, wall, promotion, ran_on, undeclared
            )
        except CheckFailed as exc:
            return self._rejected(spec, decision, exc, t0)
        except (OSError, MlbuildError) as exc:
            return self._failed(
                spec, decision, exc.message if isinstance(exc, MlbuildError) else str(exc), t0
            )
        for warning in commit.warnings:
            self.events.warning(warning)
        return _Done(
            TargetResult(
                spec.name,
                Outcome.RAN,
                time.monotonic() - t0,
                decision.reasons,
                log_path=self.rebuilder.log_path(spec.name),
                recorded=commit.recorded,
            ),
            commit.outs,
        )

    def _failed(self, spec: TargetSpec, decision: Decision, error: str, t0: float) -> _Done:
        """A failed command: its partial outs go to .mlbuild/failed/ for debugging."""
        self.rebuilder.keep_failed(spec)
        log = self.rebuilder.log_path(spec.name)
        failed = TargetResult(
            spec.name,
            Outcome.FAILED,
            time.monotonic() - t0,
            decision.reasons,
            error,
            log,
            tail_lines(log),
        )
        return _Done(failed, None)

    def _rejected(self, spec: TargetSpec, decision: Decision, exc: CheckFailed, t0: float) -> _Done:
        """A check or gate said no: the new outs are kept for inspection, the previous ones
        and the lock entry stay as they were (exit 3)."""
        where = self.rebuilder.reject(spec, exc.findings)
        rel = os.path.relpath(where, self.pipeline.root)
        return _Done(
            TargetResult(
                spec.name,
                Outcome.FAILED,
                time.monotonic() - t0,
                decision.reasons,
                f"{exc.message} (rejected outs kept in {rel}/)",
                checks_failed=True,
            ),
            None,
        )
