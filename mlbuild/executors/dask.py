"""The Dask executor: the scheduler's jobs run on a ``dask.distributed`` cluster.

mlbuild keeps its own dynamic scheduling (a target is submitted when its deps are done,
at most ``-j`` at a time, resource pools respected); Dask only places each job on a
worker. This is the shared-filesystem mode: workers see the workspace at the same path,
run the job there exactly as the local executor would (`LocalExecutor` inside the worker,
``in_worker=True``), and the client commits the outs as usual.

Resource pools (``resources: {gpu: 1}``) become Dask task resources for the pools that
some worker declares (``dask worker --resources gpu=1``); pools no worker declares stay
mlbuild-side only, or such a job would wait forever.

A worker killed mid-job: Dask reschedules the task on another worker (up to
``distributed.scheduler.allowed-failures`` times), and every process the job started dies
with the killed worker, so nothing half-written keeps changing. If Dask gives up, the
target fails; nothing is recorded from a job that did not finish.

``dask.distributed`` is imported only when this executor is used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..errors import UsageError
from ..jobs import Job, JobResult

__all__ = ["DaskExecutor", "run_on_worker"]


def run_on_worker(job: Job) -> tuple[JobResult, str]:
    """The task a Dask worker runs: the job, in the shared workspace. Returns the result
    and the worker's address (recorded in the manifest)."""
    from distributed import get_worker

    from .local import LocalExecutor

    executor = LocalExecutor(1, stream=False, running_dir=job.running_dir, in_worker=True)
    result = executor.run(job, lambda target, line: None)
    return result, str(get_worker().address)


class DaskExecutor:
    """Submits jobs to the cluster at ``address``; see the module docstring."""

    def __init__(self, address: str, *, retries: int = 1) -> None:
        try:
            from distributed import Client as client_class
        except ImportError:
            raise UsageError(
                "the dask executor needs dask.distributed",
                hint='pip install "mlbuild[dask]"',
            ) from None
        try:
            connect: Any = client_class  # untyped in distributed
            self.client: Any = connect(address, timeout="10s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise UsageError(
                f"cannot reach the Dask scheduler at {address}: {exc}",
                hint="start one with `dask scheduler`, or check --dask-address",
            ) from None
        self.address = address
        self.retries = retries
        self._futures: set[Any] = set()
        self._lock = threading.Lock()
        workers = self.client.scheduler_info().get("workers", {})
        self.pools = {name for w in workers.values() for name in (w.get("resources") or {})}
        self.threads = sum(int(w.get("nthreads") or 1) for w in workers.values()) or 1
        self.last_worker: dict[str, str] = {}  # target → worker address of its last run

    def run(self, job: Job, on_output: Callable[[str, str], None]) -> JobResult:
        resources = {k: v for k, v in job.resources.items() if k in self.pools}
        future = self.client.submit(
            run_on_worker,
            job,
            key=f"mlbuild-{job.target}-{id(job):x}",
            pure=False,
            retries=self.retries,
            resources=resources or None,
        )
        with self._lock:
            self._futures.add(future)
        try:
            result, worker = future.result()
        except Exception as exc:  # KilledWorker, a lost scheduler, a cancelled task
            return JobResult(ok=False, exit_code=None, error=f"dask: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._futures.discard(future)
        self.last_worker[job.target] = worker
        assert isinstance(result, JobResult)
        return result

    def kill_all(self) -> None:
        with self._lock:
            futures = list(self._futures)
        for future in futures:
            future.cancel()
        self.shutdown()

    def shutdown(self) -> None:
        self.client.close()

    def executor_record(self, target: str) -> dict[str, Any]:
        """What the manifest says about where ``target`` ran."""
        return {"type": "dask", "scheduler": self.address, "worker": self.last_worker.get(target)}
