"""Job and JobResult: the plain, picklable description of one command and how it ended.

A Job carries everything a worker needs (paths, env, params) and nothing it must not touch
(no pipeline, no cache, no lock file), so the same Job can run in a thread, a loky process
or, later, on a Dask worker.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .store.atomic import atomic_write

__all__ = ["Job", "JobResult", "Masker", "call_python", "tail_lines"]


@dataclass(frozen=True)
class Job:
    target: str
    root: str
    cmds: tuple[str, ...] | None
    python: str | None
    env: Mapping[str, str]  # declared env plus MLBUILD_TARGET / MLBUILD_OUTS
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    params: Mapping[str, Any]
    matrix: Mapping[str, Any]
    log_path: str
    running_dir: str  # where a running job registers itself (see register_running)
    retries: int = 0
    resources: Mapping[str, int] = field(default_factory=dict)  # pools it holds while running
    # Files the job reads (deps, code files), for executors that must ship them (Dask
    # without a shared filesystem); relative to ``root``.
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobResult:
    ok: bool
    exit_code: int | None
    error: str = ""


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat): with the pid, it
    names one process for good, even after the pid is reused. None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def register_running(running_dir: str, pid: int) -> str:
    """Record ``pid`` as running a job (``<running_dir>/<pid>`` holds its start time), so a
    build after a kill -9 of mlbuild can stop it; the caller removes the file when done."""
    os.makedirs(running_dir, exist_ok=True)
    marker = os.path.join(running_dir, str(pid))
    with open(marker, "w") as f:
        f.write(process_start_time(pid) or "")
    return marker


class Masker:
    """Replaces secret values by ``***`` in text and log files (as CI systems do).

    Values shorter than 4 characters are not masked: masking "1" would garble every log
    and hide nothing worth hiding."""

    def __init__(self, values: list[str]) -> None:
        self.values = sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.values)

    def __call__(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, "***")
        return text

    def file(self, path: str) -> None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return
        masked = data
        for value in self.values:
            masked = masked.replace(value.encode(), b"***")
        if masked != data:
            atomic_write(path, masked)


def tail_lines(path: str, n: int = 20) -> tuple[str, ...]:
    """The last ``n`` lines of a log file (reads only its end)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except FileNotFoundError:
        return ()
    lines = data.decode("utf-8", "replace").splitlines()
    return tuple(lines[-n:])


@contextlib.contextmanager
def _redirected(log_path: str, env: Mapping[str, str], root: str) -> Iterator[None]:
    """Point fds 1 and 2 at the log, set env and cwd; undo it all afterwards."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = (os.dup(1), os.dup(2))
    saved_env = {k: os.environ.get(k) for k in env}
    saved_cwd = os.getcwd()
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.environ.update(env)
        os.chdir(root)
        if root not in sys.path:
            sys.path.insert(0, root)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for fd in (*saved_fds, log_fd):
            os.close(fd)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        os.chdir(saved_cwd)


def call_python(job: Job) -> JobResult:
    """Run ``job.python`` (``module:function``) in this process; used inside a worker.

    The callable gets ``deps``, ``outs``, ``params`` and the matrix variables as keyword
    arguments. Its exception becomes a failed JobResult carrying the traceback's last line.
    """
    assert job.python is not None
    module_name, func_name = job.python.split(":", 1)
    marker = register_running(job.running_dir, os.getpid())
    try:
        return _call(job, module_name, func_name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker)


def _call(job: Job, module_name: str, func_name: str) -> JobResult:
    with _redirected(job.log_path, job.env, job.root):
        try:
            module = importlib.import_module(module_name)
            func = getattr(module, func_name)
            func(
                deps=list(job.deps),
                outs=list(job.outs),
                params=dict(job.params),
                **dict(job.matrix),
            )
        except BaseException as exc:  # the user's code may raise anything, SystemExit too
            traceback.print_exc()
            last = f"{type(exc).__name__}: {exc}".strip()
            return JobResult(ok=False, exit_code=None, error=f"{job.python} raised {last}")
    return JobResult(ok=True, exit_code=0)
