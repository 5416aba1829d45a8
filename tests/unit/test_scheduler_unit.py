"""The scheduler over in-memory fakes: what ran, in which order, with how much parallelism.

The fakes stand in for the rebuilder's steps (every target must RUN, commits are free) and
the executor (jobs are Python functions), so these tests see scheduling alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from mlbuild.config import Pipeline, load_pipeline
from mlbuild.events import NullEvents
from mlbuild.graph import BuildGraph
from mlbuild.jobs import Job, JobResult
from mlbuild.options import BuildOptions
from mlbuild.rebuild import CommitResult
from mlbuild.results import Action, Decision, Outcome
from mlbuild.runner import TargetRunner
from mlbuild.scheduler import Scheduler
from mlbuild.store import Cache, Layout, LockFile, OutRecord


class FakeRebuilder:
    """Every target must run; committing records a fake out digest. One object stands in
    for every step (decider, materializer, committer, validator, context)."""

    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir
        self.root = state_dir
        self.lock = LockFile(str(Path(state_dir) / "unused.lock"))
        self.layout = Layout(state_dir)  # where the runner notes failed attempts
        self.cache = Cache(str(Path(state_dir) / "cache"))  # places nothing here
        self.ctx = self.decider = self.materializer = self.committer = self.validator = self

    def current_outs(self, name: str) -> tuple[OutRecord, ...]:
        return self.lock.entries[name].outs

    def decide(self, spec: Any, upstream: Mapping[str, Any], *, force: bool) -> Decision:
        return Decision(spec.name, Action.RUN, "xxh3-128:" + "0" * 32)

    def log_path(self, name: str) -> str:
        return str(Path(self.state_dir) / f"{name}.log")

    def prepare(self, spec: Any) -> None:
        pass

    def keep_failed(self, spec: Any) -> None:
        pass

    def commit(
        self,
        spec: Any,
        decision: Decision,
        upstream: Any,
        started: float,
        promotion: Any = None,
        ran_on: Any = None,
        undeclared: Any = None,
    ) -> CommitResult:
        outs = tuple(OutRecord(o, "file", "xxh3-128:" + "1" * 32, None, 1) for o in spec.outs)
        return CommitResult(outs, recorded=True)

    def undeclared_reads(
        self, spec: Any, decision: Decision, read: Any, written: Any
    ) -> dict[str, str]:
        return {}


class FakeExecutor:
    """Runs each job by calling ``behaviour[target]()``; records start/end order."""

    def __init__(self, behaviour: dict[str, Callable[[], bool]]) -> None:
        self.behaviour = behaviour
        self.log: list[str] = []
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def run(self, job: Job, on_output: Callable[[str, str], None]) -> JobResult:
        with self._lock:
            self.log.append(f"start {job.target}")
            self.running += 1
            self.peak = max(self.peak, self.running)
        ok = self.behaviour.get(job.target, lambda: True)()
        with self._lock:
            self.running -= 1
            self.log.append(f"end {job.target}")
        return JobResult(ok=ok, exit_code=0 if ok else 1, error="" if ok else "failed")

    def kill_all(self) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def executor_record(self, target: str) -> dict[str, Any]:
        return {"type": "fake"}


def _pipeline(tmp_path: Path, body: str) -> Pipeline:
    (tmp_path / "mlbuild.yaml").write_text("targets:\n" + body)
    return load_pipeline(str(tmp_path / "mlbuild.yaml"))


def _schedule(
    tmp_path: Path, body: str, behaviour: dict[str, Callable[[], bool]], **opts: Any
) -> tuple[FakeExecutor, dict[str, Outcome]]:
    pipeline = _pipeline(tmp_path, body)
    graph = BuildGraph.from_pipeline(pipeline)
    executor = FakeExecutor(behaviour)
    fake = FakeRebuilder(str(tmp_path))
    options = BuildOptions(**opts)
    running_dir = str(tmp_path / "running")
    runner = TargetRunner(
        fake,  # type: ignore[arg-type]
        executor,
        NullEvents(),
        run=options.run,
        running_dir=running_dir,
    )
    scheduler = Scheduler(
        pipeline,
        graph,
        fake,  # type: ignore[arg-type]
        runner,
        options,
        NullEvents(),
        executor,
        jobs=options.effective_jobs(pipeline.jobs),
        running_dir=running_dir,
    )
    result = scheduler.run(list(graph.order), set())
    return executor, {t.target: t.outcome for t in result.targets}


CHAIN_AND_SLOW = (
    "  a:\n    cmd: x\n    outs: [a]\n"
    "  c:\n    cmd: x\n    deps: [a]\n    outs: [c]\n"
    "  slow:\n    cmd: x\n    outs: [s]\n"
)


def test_a_target_starts_when_its_own_deps_finish_not_level_by_level(tmp_path: Path) -> None:
    c_started = threading.Event()

    def slow() -> bool:
        # Level-by-level scheduling would wait for `slow` before starting `c`: deadlock.
        return c_started.wait(timeout=10)

    def c() -> bool:
        c_started.set()
        return True

    executor, outcomes = _schedule(tmp_path, CHAIN_AND_SLOW, {"slow": slow, "c": c}, jobs=2)
    assert outcomes == {"a": Outcome.RAN, "c": Outcome.RAN, "slow": Outcome.RAN}
    assert executor.log.index("start c") < executor.log.index("end slow")


def test_jobs_bound_the_number_of_running_jobs(tmp_path: Path) -> None:
    body = "".join(f"  t{i}:\n    cmd: x\n    outs: [o{i}]\n" for i in range(6))

    def busy() -> bool:
        time.sleep(0.05)
        return True

    executor, _ = _schedule(tmp_path, body, {f"t{i}": busy for i in range(6)}, jobs=3)
    assert executor.peak == 3


def test_failure_stops_new_work_but_keep_going_skips_only_downstream(tmp_path: Path) -> None:
    stop, keep = tmp_path / "stop", tmp_path / "keep"
    stop.mkdir()
    keep.mkdir()
    fail_a = {"a": lambda: False}
    _, outcomes = _schedule(stop, CHAIN_AND_SLOW, fail_a, jobs=1)
    assert outcomes == {"a": Outcome.FAILED, "c": Outcome.SKIPPED, "slow": Outcome.SKIPPED}
    _, outcomes = _schedule(keep, CHAIN_AND_SLOW, fail_a, jobs=1, keep_going=True)
    assert outcomes == {"a": Outcome.FAILED, "c": Outcome.SKIPPED, "slow": Outcome.RAN}


@pytest.mark.parametrize("capacity", [1, 2])
def test_resource_pools_are_never_oversubscribed(tmp_path: Path, capacity: int) -> None:
    body = "".join(
        f"  g{i}:\n    cmd: x\n    resources: {{gpu: 1}}\n    outs: [g{i}]\n" for i in range(4)
    )

    def hold() -> bool:
        time.sleep(0.05)
        return True

    executor, outcomes = _schedule(
        tmp_path, body, {f"g{i}": hold for i in range(4)}, jobs=4, resources={"gpu": capacity}
    )
    assert set(outcomes.values()) == {Outcome.RAN}
    assert executor.peak == capacity
