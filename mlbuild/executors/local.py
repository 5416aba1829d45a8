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

from ..jobs import Job, JobResult, call_python, process_start_time, register_running

__all__ = ["LocalExecutor"]


class LocalExecutor:
    """Runs jobs on this machine; see the module docstring.

    Every running command is registered as ``<running_dir>/<pid>`` (holding the process's
    start time) while it runs. A command outlives a kill -9 of mlbuild (it has its own
    session); `reap_orphans`, called by the next build while it holds the workspace lock,
    stops such leftovers before they can race with the new build's writes.
    """

    def __init__(
        self, jobs: int, *, stream: bool, running_dir: str, in_worker: bool = False
    ) -> None:
        self.jobs = jobs
        self.stream = stream
        self.running_dir = running_dir
        # On a Dask worker (executors/dask.py): callables run in a plain subprocess (a
        # worker may not start a process pool), and every child dies with the worker, so
        # a killed worker leaves nothing writing outs while Dask retries the job elsewhere.
        self.in_worker = in_worker
        if in_worker:
            _resolve_prctl()
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
            if job.python:
                result = self._run_python(job, on_output)
            else:
                result = self._run_shell(job, on_output)
            if result.ok:
                break
        return result

    def _run_shell(self, job: Job, on_output: Callable[[str, str], None]) -> JobResult:
        env = command_env(job.env)
        for cmd in job.cmds or ():
            with open(job.log_path, "ab") as log:
                argv = ["/bin/sh", "-c", cmd]
                if self.in_worker:  # see executors/supervise.py
                    argv = [sys.executable, "-m", "mlbuild.executors.supervise", cmd]
                proc = subprocess.Popen(
                    argv,
                    cwd=job.root,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE if self.stream else log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_terminate_with_parent if self.in_worker else None,
                )
                with self._lock:
                    self._procs.add(proc)
                marker = register_running(self.running_dir, proc.pid)
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
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(marker)
            if code != 0:
                what = f"killed by signal {-code}" if code < 0 else f"exited with {code}"
                return JobResult(ok=False, exit_code=code, error=f"command {what}: {cmd}")
        return JobResult(ok=True, exit_code=0)

    def _run_python(self, job: Job, on_output: Callable[[str, str], None]) -> JobResult:
        from concurrent.futures import TimeoutError as FutureTimeout

        if self.in_worker:
            return _run_python_subprocess(job)

        with self._lock:
            if self._pool is None:
                from joblib.externals.loky import get_reusable_executor

                self._pool = get_reusable_executor(max_workers=self.jobs, timeout=60)
            pool = self._pool
        future = pool.submit(call_python, job)
        offset = 0
        while True:
            try:
                result: JobResult = future.result(timeout=0.1 if self.stream else None)
                break
            except FutureTimeout:
                offset = _follow(job.log_path, offset, job.target, on_output)
            except Exception as exc:  # a worker died (killed, segfault): the target fails
                return JobResult(ok=False, exit_code=None, error=f"python worker failed: {exc}")
        if self.stream:
            _follow(job.log_path, offset, job.target, on_output, final=True)
        return result

    def executor_record(self, target: str) -> dict[str, Any]:
        import socket

        return {"type": "local", "host": socket.gethostname()}

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


_PRCTL: Any = None  # libc's prctl, looked up in the parent: a forked child must not import


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the parent (a Dask worker) dies (Linux).
    Only calls a function resolved beforehand (see `_resolve_prctl`): between fork and
    exec in a threaded process, importing or allocating could deadlock."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _terminate_with_parent() -> None:
    """As `_die_with_parent`, with SIGTERM: the supervisor then stops its command's group."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)


def _resolve_prctl() -> None:
    global _PRCTL
    if _PRCTL is None:
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            _PRCTL = ctypes.CDLL(None, use_errno=True).prctl


def _run_python_subprocess(job: Job) -> JobResult:
    """Run a callable in a fresh interpreter (executors/pyjob.py: the Job pickled on
    stdin, the JobResult pickled on stdout), dying with its parent."""
    import pickle

    proc = subprocess.run(
        [sys.executable, "-m", "mlbuild.executors.pyjob"],
        input=pickle.dumps(job),
        capture_output=True,
        cwd=job.root,
        env=command_env(job.env),
        preexec_fn=_die_with_parent,
    )
    try:
        result = pickle.loads(proc.stdout)
    except Exception:  # the interpreter died before answering (killed, crashed)
        with open(job.log_path, "ab") as log:
            log.write(proc.stderr)
        return JobResult(
            ok=False,
            exit_code=proc.returncode,
            error=f"python job died without a result (exit {proc.returncode}; see the log)",
        )
    if not isinstance(result, JobResult):
        return JobResult(ok=False, exit_code=proc.returncode, error="python job answered nonsense")
    return result


def command_env(declared: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment plus the declared env, with mlbuild's own interpreter first
    on PATH: ``python`` in a command means the Python mlbuild runs under (its venv), even
    when the venv is not activated (``.venv/bin/mlbuild model:prod``) or comes later on
    PATH than another Python (pyenv shims)."""
    env = dict(os.environ)
    bindir = os.path.dirname(sys.executable)
    if bindir:
        rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != bindir]
        env["PATH"] = os.pathsep.join([bindir, *rest])
    env.update(declared)
    return env


def _follow(
    path: str,
    offset: int,
    target: str,
    on_output: Callable[[str, str], None],
    *,
    final: bool = False,
) -> int:
    """Emit the complete new lines of a log from ``offset``; returns the new offset."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return offset
    end = len(data) if final else data.rfind(b"\n") + 1
    for line in data[:end].decode("utf-8", "replace").splitlines():
        on_output(target, line)
    return offset + end


def reap_orphans(running_dir: str) -> list[str]:
    """Stop commands left running by an mlbuild that was killed; returns what was stopped."""
    stopped: list[str] = []
    try:
        names = sorted(os.listdir(running_dir))
    except FileNotFoundError:
        return stopped
    for name in names:
        marker = os.path.join(running_dir, name)
        try:
            with open(marker) as f:
                recorded = f.read().strip()
            pid = int(name)
        except (OSError, ValueError):
            recorded, pid = "", 0
        if pid and recorded and process_start_time(pid) == recorded:
            # A shell command leads its own process group (start_new_session); a python
            # worker does not: signal the group where there is one, and the process.
            for sig in (signal.SIGTERM, signal.SIGKILL):
                _signal_group_pid(pid, sig)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
                deadline = time.monotonic() + 2.0
                while process_start_time(pid) == recorded and time.monotonic() < deadline:
                    time.sleep(0.02)
                if process_start_time(pid) != recorded:
                    break
            stopped.append(f"process {pid}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker)
    return stopped


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    _signal_group_pid(proc.pid, sig)


def _signal_group_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
