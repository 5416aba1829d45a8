"""Executors run Jobs: `local` (subprocesses and loky) and `dask` (a distributed cluster,
imported only when used)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..jobs.spec import Job, JobResult
from .local import LocalExecutor

__all__ = ["Executor", "LocalExecutor"]


class Executor(Protocol):
    """What the scheduler needs from an executor (tests use an in-memory fake)."""

    def run(self, job: Job, on_output: Callable[[str, str], None]) -> JobResult:
        """Run one job to its end, from a scheduler worker thread."""
        ...

    def kill_all(self) -> None:
        """Ctrl-C: stop every running job now."""
        ...

    def shutdown(self) -> None:
        """The build is over: release workers."""
        ...

    def executor_record(self, target: str) -> dict[str, Any]:
        """Where ``target``'s last job ran, for its manifest (``{"type", ...}``)."""
        ...
