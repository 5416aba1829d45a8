"""The inline executor: shell commands as subprocesses, ``python:`` callables in THIS process.

A test double first (tests/fakes.py wires it in): starting joblib's loky pool costs more
than the tiny callables of a test, and a callable run here can be stepped through with a
debugger. It is usable for real where a process pool is unwanted (a notebook, a debug
session), through the Python API only: ``Workspace(path).build(executor=InlineExecutor(...))``;
the CLI always runs `LocalExecutor` (or Dask).

Shell commands run exactly as under `LocalExecutor` (their own process group, registered
for `reap_orphans`, stopped by `kill_all`). A callable runs in the scheduler's worker
thread through `jobs.call.call_python`, which points fds 1 and 2 at the log and sets the job's
cwd and env for the process, so callables run one at a time (the lock below) while shell
jobs still run in parallel. What differs from a loky worker, by design:

- A running callable cannot be stopped: `kill_all` stops the shell commands; a callable
  runs to its end (the scheduler then records nothing for it, as after any Ctrl-C).
- The callable shares this process: a crash or ``os._exit`` in it ends the build, and
  while it runs, this process's stdout and stderr (fds 1 and 2, and ``sys.stdout``) are
  its log.
- Each call imports the workspace's modules afresh (they are dropped from ``sys.modules``
  afterwards, and the workspace from ``sys.path``), as a fresh loky pool per build would:
  an edited ``train.py`` is never served from an earlier import.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import threading
from collections.abc import Callable

from ..jobs.call import call_python
from ..jobs.spec import Job, JobResult
from .local import LocalExecutor, _follow

__all__ = ["InlineExecutor"]

# One callable at a time in the whole process: call_python swaps fds 1/2, cwd and environ.
_CALL_LOCK = threading.Lock()


class InlineExecutor(LocalExecutor):
    """`LocalExecutor` with ``python:`` callables called in-process; see the module
    docstring. ``jobs`` bounds nothing here (the scheduler's -j does); it is kept for the
    same constructor as `LocalExecutor`."""

    def __init__(self, jobs: int = 1, *, stream: bool = False, running_dir: str) -> None:
        super().__init__(jobs, stream=stream, running_dir=running_dir)

    def _run_python(self, job: Job, on_output: Callable[[str, str], None]) -> JobResult:
        if self._procs.stopping:
            return JobResult(ok=False, exit_code=None, error="interrupted")
        root = os.path.join(os.path.realpath(job.root), "")
        with _CALL_LOCK, tempfile.TemporaryDirectory(prefix="mlbuild-inline-") as private:
            # call_python registers its own pid as a running job; this process is not one
            # that a later build may stop as an orphan, so the marker goes to a private dir.
            job = dataclasses.replace(job, running_dir=private)
            saved_path = list(sys.path)
            before = set(sys.modules)
            saved_streams = sys.stdout, sys.stderr
            # call_python points fds 1 and 2 at the log; sys.stdout may be no fd at all
            # (pytest's capture, a notebook's stream): print() must reach the log too.
            streams = sys.stdout, sys.stderr = (
                open(1, "w", buffering=1, closefd=False),  # noqa: SIM115
                open(2, "w", buffering=1, closefd=False),  # noqa: SIM115
            )
            try:
                result = call_python(job)
            finally:
                sys.stdout, sys.stderr = saved_streams
                for stream in streams:
                    stream.close()  # flushes; fds 1 and 2 stay open (closefd=False)
                sys.path[:] = saved_path
                for name in set(sys.modules) - before:
                    file = getattr(sys.modules[name], "__file__", None)
                    if file and os.path.realpath(file).startswith(root):
                        del sys.modules[name]
        if self.stream:
            _follow(job.log_path, 0, job.target, on_output, final=True)
        return result

    def kill_all(self) -> None:
        """Stop every running shell command (see `LocalExecutor.kill_all`); a callable
        already running finishes (it cannot be stopped from another thread)."""
        self._procs.stop_all()

    def shutdown(self, *, kill: bool = False) -> None:
        """Nothing to release: there is no pool."""
