"""The local executor: shell commands as subprocesses, Python callables in loky workers.

`run` is called from one scheduler thread per running job, and blocks until the job ends.
Shell commands run as ``/bin/sh -c CMD`` in the workspace root with the caller's
environment plus the declared env (as make does), each in its own process group so that
`kill_all` (Ctrl-C) can stop a command and its children. Python callables go to joblib's
loky pool, imported only when the first callable runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO

from .. import reads
from ..jobs.call import call_python
from ..jobs.masking import StreamMasker, pump
from ..jobs.registry import process_start_time, register_running
from ..jobs.spec import Job, JobResult

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
        self._procs = _Registry()
        self._lock = threading.Lock()  # guards the pool
        self._pool: Any = None

    def run(self, job: Job, on_output: Callable[[str, str], None]) -> JobResult:
        os.makedirs(os.path.dirname(job.log_path), exist_ok=True)
        with open(job.log_path, "wb"):
            pass  # a fresh log per build of the target
        # Every Python the job starts records the workspace files it opens (reads.py).
        with reads.recording() as log_dir:
            env = {**job.env, **reads.hook_env(log_dir, job.root, job.env)}
            result = self._attempts(dataclasses.replace(job, env=env), on_output)
            read, written = reads.collect(log_dir, job.root)
        return dataclasses.replace(result, read=read, written=written)

    def _attempts(self, job: Job, on_output: Callable[[str, str], None]) -> JobResult:
        result = JobResult(ok=False, exit_code=None, error="not run")
        for attempt in range(job.retries + 1):
            if self._procs.stopping:
                return JobResult(ok=False, exit_code=None, error="interrupted")
            if attempt:
                with open(job.log_path, "ab") as log:
                    log.write(f"\n--- mlbuild: retry {attempt} of {job.retries} ---\n".encode())
            if job.python:
                result = self._run_python(job, on_output)
            else:
                result = self._run_shell(job, on_output)
            if self._procs.stopping:
                # Stopped by a signal: even a command that caught it and exited 0 left
                # a partial result, never to be recorded.
                return JobResult(ok=False, exit_code=result.exit_code, error="interrupted")
            if result.ok:
                break
        return result

    def _run_shell(self, job: Job, on_output: Callable[[str, str], None]) -> JobResult:
        env = command_env(job.env)
        masker = job.masker()
        for cmd in job.cmds or ():
            if self._procs.stopping:
                return JobResult(ok=False, exit_code=None, error="interrupted")
            # With a secret or -v, the output comes through a pipe that this thread copies
            # to the log, masked (see jobs.masking.pump); otherwise straight into the log file.
            piped = self.stream or bool(masker)
            with open(job.log_path, "ab") as log:
                argv = ["/bin/sh", "-c", cmd]
                if self.in_worker:  # see executors/supervise.py
                    argv = [sys.executable, "-m", "mlbuild.executors.supervise", cmd]
                proc = subprocess.Popen(
                    argv,
                    cwd=job.root,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE if piped else log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_terminate_with_parent if self.in_worker else None,
                )
                with self._procs.running(proc):
                    marker = register_running(self.running_dir, proc.pid)
                    try:
                        if piped:
                            lines = _Lines(job.target, on_output) if self.stream else None
                            _copy_output(proc, log, masker, lines)
                        code = proc.wait()
                    finally:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(marker)
            if code != 0:
                what = f"killed by signal {-code}" if code < 0 else f"exited with {code}"
                return JobResult(ok=False, exit_code=code, error=f"command {what}: {cmd}")
        return JobResult(ok=True, exit_code=0)

    def _run_python(self, job: Job, on_output: Callable[[str, str], None]) -> JobResult:
        from concurrent.futures import TimeoutError as FutureTimeout

        if self.in_worker:
            return _run_python_subprocess(job, self._procs)

        with self._lock:
            if self._procs.stopping:  # kill_all already shut the pool down
                return JobResult(ok=False, exit_code=None, error="interrupted")
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

        from ..kinds import ExecutorType

        return {"type": ExecutorType.LOCAL.value, "host": socket.gethostname()}

    def kill_all(self) -> None:
        """Stop every running job: each command's whole process group gets SIGTERM, then
        SIGKILL after `GRACE_SECONDS`; the loky workers (and their children) are killed."""
        self._procs.stop_all()
        with self._lock:
            self.shutdown(kill=True)

    def shutdown(self, *, kill: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=not kill, kill_workers=kill)
            self._pool = None


class _Registry:
    """The processes of running jobs, each leading its own process group. Once
    `stop_all` has begun, a process that registers is stopped at once: a job that was
    starting while the build stopped must not run on."""

    def __init__(self) -> None:
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self.stopping = False

    @contextlib.contextmanager
    def running(self, proc: subprocess.Popen[bytes]) -> Iterator[None]:
        with self._lock:
            self._procs.add(proc)
            stopping = self.stopping
        if stopping:
            _stop_groups([proc])
        try:
            yield
        finally:
            with self._lock:
                self._procs.discard(proc)

    def stop_all(self) -> None:
        with self._lock:
            self.stopping = True
            procs = list(self._procs)
        _stop_groups(procs)


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


def _run_python_subprocess(job: Job, procs: _Registry) -> JobResult:
    """Run a callable in a fresh interpreter (executors/pyjob.py: the Job pickled on
    stdin, the JobResult pickled on stdout), dying with its parent. It leads its own
    process group, registered in ``procs`` while it runs, so that `kill_all` (a cancel
    from the client) stops it and whatever it started."""
    import pickle

    proc = subprocess.Popen(
        [sys.executable, "-m", "mlbuild.executors.pyjob"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=job.root,
        env=command_env(job.env),
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    with procs.running(proc):
        stdout, stderr = proc.communicate(pickle.dumps(job))
    try:
        result = pickle.loads(stdout)
    except Exception:  # the interpreter died before answering (killed, crashed)
        masker = job.masker()
        with open(job.log_path, "ab") as log:
            log.write(masker.feed(stderr) + masker.flush())
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
        started = process_start_time(pid) if pid and recorded else None
        if started == recorded or (pid and recorded and started is None and _group_alive(pid)):
            # A group outliving its leader is still ours: Linux hands out no pid that is a
            # live group's id, so no other process can have made a group of that number.
            _stop_orphan(pid, recorded)
            stopped.append(f"process {pid}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker)
    return stopped


def _stop_orphan(pid: int, recorded: str) -> None:
    """SIGTERM, then SIGKILL after the grace period, to ``pid`` (while it is the process
    started at ``recorded``) and to its process group. A shell command leads its own group
    (start_new_session); a python worker does not, and its group is not signalled."""

    def alive() -> bool:
        return process_start_time(pid) == recorded or _group_alive(pid)

    for sig in (signal.SIGTERM, signal.SIGKILL):
        _signal_group_pid(pid, sig)
        if process_start_time(pid) == recorded:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + GRACE_SECONDS
        while alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not alive():
            return


GRACE_SECONDS = 2.0  # from SIGTERM to SIGKILL, as `docker stop` but shorter: a build waits


def _stop_groups(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each command's process group; SIGKILL the groups with a member left after
    the grace period: a child that ignores SIGTERM must not outlive its leader."""
    for proc in procs:
        _signal_group_pid(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline:
        for proc in procs:
            proc.poll()  # reap the leader: a zombie leader would keep its group alive
        if not any(_group_alive(proc.pid) for proc in procs):
            return
        time.sleep(0.02)
    for proc in procs:
        # The group's id stays reserved while a member lives, so this hits no stranger.
        _signal_group_pid(proc.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` has a member that is not a zombie (where pid 1 does
    not reap orphans, a zombie member stays until the machine's end)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no /proc: a member exists, zombie or not
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


def _signal_group_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _copy_output(
    proc: subprocess.Popen[bytes], log: BinaryIO, masker: StreamMasker, lines: _Lines | None
) -> None:
    """Copy a command's piped output to its log (and to ``lines``, for -v), masked."""
    assert proc.stdout is not None

    def write(data: bytes) -> None:
        log.write(data)
        log.flush()  # the log stays live (tail -f), and holds no more than was masked
        if lines is not None:
            lines.feed(data)

    pump(proc.stdout.fileno(), write, masker, lambda: proc.poll() is not None)
    if lines is not None:
        lines.feed(b"", final=True)
    proc.stdout.close()


class _Lines:
    """Cuts masked output into lines for ``on_output`` (-v), holding a partial last line."""

    def __init__(self, target: str, on_output: Callable[[str, str], None]) -> None:
        self.target = target
        self.on_output = on_output
        self.partial = b""

    def feed(self, data: bytes, *, final: bool = False) -> None:
        data = self.partial + data
        end = len(data) if final else data.rfind(b"\n") + 1
        self.partial = data[end:]
        for line in data[:end].decode("utf-8", "replace").splitlines():
            self.on_output(self.target, line)
