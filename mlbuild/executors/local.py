"""The local executor: shell commands as subprocesses, Python callables in loky workers.

`run` is called from one scheduler thread per running job, and blocks until the job ends.
Shell commands run as ``/bin/sh -c CMD`` in the workspace root with the caller's
environment plus the declared env (as make does), each in its own process group so that
`kill_all` (Ctrl-C) can stop a command and its children. Python callables go to joblib's
loky pool, imported only when the first callable runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..jobs import Job, JobResult, call_python

__all__ = ["LocalExecutor"]


class LocalExecutor:
    def __init__(self, jobs: int, *, stream: bool) -> None:
        self.jobs = jobs
        self.stream = stream
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._pool: Any = None
        self._stopping = False

    def run(self, job: Job, on_output: Callable[[str, str], None]) -> JobResult:
        os.makedirs(os.path.dirname(job.log_path), exist_ok=True)
        with open(job.log_path, "wb"):
            pass  # a fresh log per build of the target
        result = JobResult(ok=False, exit_code=None, error="not run")
        for attempt in range(job.retries + 1):
            if self._stopping:
                return JobResult(ok=False, exit_code=None, error="interrupted")
            if attempt:
                with open(job.log_path, "ab") as log:
                    log.write(f"\n--- mlbuild: retry {attempt} of {job.retries} ---\n".encode())
            result = self._run_python(job) if job.python else self._run_shell(job, on_output)
            if result.ok:
                break
        return result

    def _run_shell(self, job: Job, on_output: Callable[[str, str], None]) -> JobResult:
        env = command_env(job.env)
        for cmd in job.cmds or ():
            with open(job.log_path, "ab") as log:
                proc = subprocess.Popen(
                    ["/bin/sh", "-c", cmd],
                    cwd=job.root,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE if self.stream else log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                with self._lock:
                    self._procs.add(proc)
                try:
                    if self.stream:
                        assert proc.stdout is not None
                        for raw in proc.stdout:
                            log.write(raw)
                            log.flush()
                            on_output(job.target, raw.decode("utf-8", "replace").rstrip("\n"))
                    code = proc.wait()
                finally:
                    with self._lock:
                        self._procs.discard(proc)
            if code != 0:
                what = f"killed by signal {-code}" if code < 0 else f"exited with {code}"
                return JobResult(ok=False, exit_code=code, error=f"command {what}: {cmd}")
        return JobResult(ok=True, exit_code=0)

    def _run_python(self, job: Job) -> JobResult:
        with self._lock:
            if self._pool is None:
                from joblib.externals.loky import get_reusable_executor

                self._pool = get_reusable_executor(max_workers=self.jobs, timeout=60)
            pool = self._pool
        try:
            result: JobResult = pool.submit(call_python, job).result()
        except Exception as exc:  # a worker died (killed, segfault): the target fails
            return JobResult(ok=False, exit_code=None, error=f"python worker failed: {exc}")
        return result

    def kill_all(self) -> None:
        """Stop every running command (SIGTERM, then SIGKILL after 2 s) and the workers."""
        self._stopping = True
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 2.0
        for proc in procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
        self.shutdown(kill=True)

    def shutdown(self, *, kill: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=not kill, kill_workers=kill)
            self._pool = None


def command_env(declared: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment plus the declared env, with mlbuild's own interpreter first
    on PATH: ``python`` in a command means the Python mlbuild runs under (its venv), even
    when the venv is not activated (``.venv/bin/mlbuild model:prod``)."""
    env = dict(os.environ)
    bindir = os.path.dirname(sys.executable)
    path = env.get("PATH", "")
    if bindir and bindir not in path.split(os.pathsep):
        env["PATH"] = bindir + (os.pathsep + path if path else "")
    env.update(declared)
    return env


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
