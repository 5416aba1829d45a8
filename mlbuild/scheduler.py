"""The dynamic scheduler: a target starts as soon as its own deps are done.

::

    ready heap (build order) ──▶ decide ──FRESH──▶ done (unlock dependents)
         ▲                         │RESTORE / RUN
         │                         ▼
         └──── unlock ◀── worker thread: restore, or run + commit ◀── -j slots + resources

The main thread decides and launches; each running job has one worker thread that blocks
on its subprocess or loky future, so ``-j`` bounds jobs in flight, not CPU use. What a
launched target does (restore, or run and commit) is runner.py's `TargetRunner`; which
executor and how many jobs, wiring.py's. No rich here: results go out through `BuildEvents`.
"""

from __future__ import annotations

import heapq
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from .config import Pipeline, TargetSpec
from .errors import MlbuildError, UsageError
from .events import BuildEvents
from .executors import Executor
from .executors.local import reap_orphans
from .graph import BuildGraph
from .interrupts import Terminated, stop_on_signals
from .options import BuildOptions
from .rebuild import Decide
from .results import Action, BuildResult, Decision, Outcome, TargetResult
from .runner import Done, TargetRunner
from .store import OutRecord

__all__ = ["Scheduler", "plan"]

WAKE_SECONDS = 0.2  # the longest a signal waits for the main thread (see `_collect`)


def plan(
    graph: BuildGraph,
    pipeline: Pipeline,
    decider: Decide,
    order: list[str],
    forced: set[str],
) -> list[Decision]:
    """Decide every target without running anything (status, -n, -q).

    A target whose upstream would run cannot know its key yet (keys use the upstream's
    actual out digests), so it is reported as RUN with every cause: its own, then an
    "upstream is stale" reason per such upstream (`Decider.decide_behind`). A target
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
            decision = decider.decide_behind(spec, known, unknown, force=name in forced)
            decisions.append(decision)
            actions[name] = decision.action
            continue
        decision = decider.decide(spec, known, force=name in forced)
        if decision.action is Action.FRESH:
            restoring = [d for d in graph.deps[name] if actions.get(d) is not Action.FRESH]
            behind = decider.built_from_others(spec, restoring) if restoring else []
            if behind:
                # Its outs stay as they are (the restore makes them right again), so its
                # own downstream is judged against them.
                decision = Decision(name, Action.RUN, None, tuple(behind), decision.components)
                known[name] = decider.current_outs(name)
        decisions.append(decision)
        actions[name] = decision.action
        if decision.action is Action.FRESH:
            known[name] = decider.current_outs(name)
        elif decision.action is Action.RESTORE and decision.key is not None:
            recs = decider.restore_outs(spec, decision.key)
            if recs is not None:
                known[name] = recs
    return decisions


class _Build:
    """The state of one `Scheduler.run`: what each target waits on, what is ready (a heap
    in build order), what runs, what finished and with which outs."""

    def __init__(
        self, graph: BuildGraph, order: list[str], events: BuildEvents, *, keep_going: bool
    ) -> None:
        self.graph = graph
        self.events = events
        self.keep_going = keep_going
        self.index = {name: i for i, name in enumerate(order)}
        self.in_build = set(order)
        self.waiting = {n: {d for d in graph.deps[n] if d in self.in_build} for n in order}
        self.dependents: dict[str, list[str]] = {n: [] for n in order}
        for n in order:
            for d in self.waiting[n]:
                self.dependents[d].append(n)
        self.ready = [(self.index[n], n) for n in order if not self.waiting[n]]
        heapq.heapify(self.ready)
        self.outs: dict[str, tuple[OutRecord, ...]] = {}
        self.results: dict[str, TargetResult] = {}
        self.running: dict[Future[Done], str] = {}
        self.stopping = False
        self.dropped: set[str] = set()  # temp targets whose outs this build removed

    def finish(self, name: str, done: Done) -> None:
        """Record how ``name`` ended: its dependents are unlocked, or (--keep-going, it
        failed) its whole downstream is skipped."""
        self.results[name] = done.result
        self.events.target_finished(done.result)
        if done.outs is not None:
            self.outs[name] = done.outs
            for child in self.dependents[name]:
                self.waiting[child].discard(name)
                if not self.waiting[child]:
                    heapq.heappush(self.ready, (self.index[child], child))
        elif self.keep_going:
            for child in self.graph.downstream([name]):
                if child in self.in_build and child not in self.results:
                    self.results[child] = TargetResult(
                        child, Outcome.SKIPPED, error=f"upstream {name} failed"
                    )
                    self.events.target_finished(self.results[child])


class Scheduler:
    """The ready-queue loop of one build, over a decider, a runner and an executor that
    wiring.py chose (with ``jobs``, the -j bound)."""

    def __init__(
        self,
        pipeline: Pipeline,
        graph: BuildGraph,
        decider: Decide,
        runner: TargetRunner,
        options: BuildOptions,
        events: BuildEvents,
        executor: Executor,
        *,
        jobs: int,
        running_dir: str,
    ) -> None:
        self.pipeline = pipeline
        self.graph = graph
        self.decider = decider
        self.runner = runner
        self.options = options
        self.events = events
        self.capacity = dict(options.resources)
        self.in_use = {name: 0 for name in self.capacity}
        self.running_dir = running_dir
        self.jobs = jobs
        self.executor = executor

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
        build = _Build(self.graph, order, self.events, keep_going=self.options.keep_going)
        interrupted = False
        terminated: Terminated | None = None
        executor = self.executor
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="mlbuild-job")
        self.events.build_started(order, self.jobs)
        try:
            while True:
                self._launch(build, pool, forced)
                if not build.running:
                    break
                self._collect(build)
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (see interrupts.py)
            interrupted = True
            terminated = exc if isinstance(exc, Terminated) else None
            executor.kill_all()
            for fut, name in build.running.items():
                try:
                    build.finish(name, fut.result())
                except Exception as error:  # pragma: no cover - best effort on the way out
                    failed = TargetResult(name, Outcome.FAILED, error=str(error))
                    build.finish(name, Done(failed, None))
        except BaseException:
            # Anything else escaping the loop (a handler of the caller's own that raises
            # SystemExit, a bug): no command may outlive the build, writing outs.
            executor.kill_all()
            raise
        finally:
            pool.shutdown(wait=True)
            executor.shutdown()
        for name in order:
            if name not in build.results:
                build.results[name] = TargetResult(
                    name, Outcome.SKIPPED, error="interrupted" if interrupted else "not started"
                )
        result = BuildResult(
            targets=tuple(build.results[n] for n in order),
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

    def _launch(self, build: _Build, pool: ThreadPoolExecutor, forced: set[str]) -> None:
        """Start every ready target that fits (-j and --resources), in build order, each
        decided first: a FRESH one, one that cannot be decided, and (`mlbuild pull`) one
        that would have to run finish here, without a job."""
        deferred: list[tuple[int, str]] = []
        while build.ready and not build.stopping and len(build.running) < self.jobs:
            item = heapq.heappop(build.ready)
            name = item[1]
            if name in build.results:
                continue
            spec = self.pipeline.targets[name]
            if not self._fits(spec):
                deferred.append(item)
                continue
            try:
                decision = self.decider.decide(spec, build.outs, force=name in forced)
            except MlbuildError as exc:
                failed = TargetResult(name, Outcome.FAILED, error=exc.message)
                build.finish(name, Done(failed, None))
                build.stopping = build.stopping or not self.options.keep_going
                continue
            if decision.action is Action.RUN and not self.options.run:
                # `mlbuild pull`: restore what the caches hold, run nothing.
                error = "not in the local cache or the remote: build it with mlbuild"
                build.finish(name, Done(TargetResult(name, Outcome.SKIPPED, error=error), None))
                continue
            if decision.action is Action.FRESH:
                fresh = TargetResult(name, Outcome.FRESH)
                build.finish(name, Done(fresh, self.decider.current_outs(name)))
                self._drop_temps(build, name)
                continue
            self.events.target_started(decision)
            self._take(spec, +1)
            temps = tuple(
                up
                for up in (self.pipeline.targets[d] for d in sorted(self.graph.deps[name]))
                if up.temp
            )
            job = pool.submit(self.runner.execute, spec, decision, dict(build.outs), temps)
            build.running[job] = name
        for item in deferred:
            heapq.heappush(build.ready, item)

    def _collect(self, build: _Build) -> None:
        """Wait for at least one running target to end; finish those that did, in build
        order (a failure stops the launching unless --keep-going)."""
        finished: set[Future[Done]] = set()
        while not finished:
            # Never one blocking wait: the kernel may hand SIGTERM/SIGINT to any thread, and
            # then nothing wakes a main thread blocked on a lock; Python would run the
            # handler only when a job ends. Waking every WAKE_SECONDS runs it meanwhile.
            finished, _ = wait(list(build.running), WAKE_SECONDS, FIRST_COMPLETED)
        for fut in sorted(finished, key=lambda f: build.index[build.running[f]]):
            name = build.running.pop(fut)
            self._take(self.pipeline.targets[name], -1)
            done = fut.result()
            build.finish(name, done)
            if done.outs is None and not self.options.keep_going:
                build.stopping = True
            elif done.outs is not None:
                self._drop_temps(build, name)

    def _drop_temps(self, build: _Build, name: str) -> None:
        """``name`` succeeded: each `temp` upstream whose every dependent in this build has
        now succeeded loses its outs (those the cache holds; runner.py). A temp target with
        no dependent in the build keeps them: it was asked for (as Snakemake does)."""
        for up in self.graph.deps[name]:
            spec = self.pipeline.targets[up]
            children = build.dependents.get(up, [])
            if not spec.temp or up in build.dropped or up not in build.outs or not children:
                continue
            if all(child in build.outs for child in children):
                build.dropped.add(up)
                try:
                    removed = self.runner.drop_temp(spec, build.outs[up])
                except OSError as exc:
                    self.events.warning(f"{up}: could not remove its temp outs ({exc})")
                    continue
                if removed:
                    self.events.target_output(up, f"removed temp outs {', '.join(removed)}")
