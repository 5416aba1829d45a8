"""`call_python`: run a Job's ``python:`` callable in this process (inside a worker),
its output sent to the job's log (masked), its env and cwd set, and undone afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping

from ..reads import start_in_process
from .masking import StreamMasker, pump
from .registry import register_running
from .spec import Job, JobResult

__all__ = ["call_python"]


@contextlib.contextmanager
def _redirected(
    log_path: str, env: Mapping[str, str], root: str, masker: StreamMasker
) -> Iterator[None]:
    """Point fds 1 and 2 at the log, set env and cwd; undo it all afterwards.

    With secrets, fds 1 and 2 are a pipe instead, which a thread of this process copies
    to the log through ``masker``: the callable's own prints, its C extensions' and its
    subprocesses' output alike are masked before they are written."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = (os.dup(1), os.dup(2))
    saved_env = {k: os.environ.get(k) for k in env}
    saved_cwd = os.getcwd()
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    out_fd, copier = log_fd, None
    if masker:
        read_fd, out_fd = os.pipe()
        copier = threading.Thread(target=_copy_masked, args=(read_fd, log_fd, masker), daemon=True)
        copier.start()
    try:
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
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
        for fd in saved_fds:
            os.close(fd)
        os.close(out_fd)
        if copier is not None:
            # EOF once every writer is gone; a process the callable left running may keep
            # the pipe open: the copier then goes on masking, the job does not wait.
            copier.join(timeout=5)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        os.chdir(saved_cwd)


def _copy_masked(read_fd: int, log_fd: int, masker: StreamMasker) -> None:
    """The copier thread of `_redirected`: owns both fds and closes them at EOF."""
    try:
        pump(read_fd, lambda data: _write_all(log_fd, data), masker)
    finally:
        os.close(read_fd)
        os.close(log_fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


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
    with _redirected(job.log_path, job.env, job.root, job.masker()):
        hook = start_in_process(job.env)
        try:
            module = importlib.import_module(module_name)
            func = getattr(module, func_name)
            func(**job.call_kwargs())  # what `mlbuild -n` prints (Job.command_text)
        except BaseException as exc:  # the user's code may raise anything, SystemExit too
            traceback.print_exc()
            last = f"{type(exc).__name__}: {exc}".strip()
            return JobResult(ok=False, exit_code=None, error=f"{job.python} raised {last}")
        finally:
            if hook is not None:
                hook.end()
    return JobResult(ok=True, exit_code=0)
