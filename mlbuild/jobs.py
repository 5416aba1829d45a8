"""Job and JobResult: the plain, picklable description of one command and how it ended.

A Job carries everything a worker needs (paths, env, params) and nothing it must not touch
(no pipeline, no cache, no lock file), so the same Job can run in a thread, a loky process
or, later, on a Dask worker.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import select
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .reads import start_in_process

if TYPE_CHECKING:  # only attribute reads: a worker unpickling a Job never imports config
    from .config import TargetSpec

__all__ = [
    "Job",
    "JobResult",
    "Masker",
    "StreamMasker",
    "build_job",
    "call_python",
    "pump",
    "read_secrets",
    "tail_lines",
]


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
    # Names of the env entries that are secrets: their values are masked in the log before
    # a byte of it is written (see StreamMasker).
    secret_env: tuple[str, ...] = ()

    def masker(self) -> StreamMasker:
        return StreamMasker([self.env[name] for name in self.secret_env if name in self.env])


@dataclass(frozen=True)
class JobResult:
    ok: bool
    exit_code: int | None
    error: str = ""
    # Workspace files the job's Python processes opened for reading / for writing
    # (mlbuild/reads.py), workspace-relative and sorted.
    read: tuple[str, ...] = ()
    written: tuple[str, ...] = ()


def read_secrets(spec: TargetSpec, environ: Mapping[str, str]) -> dict[str, str]:
    """The values of ``spec``'s secret env entries, read from ``environ`` (the process's,
    at run time: a secret is never stored). One not set: BuildFailed naming the sources."""
    missing = sorted(n for n, source in spec.secrets.items() if source not in environ)
    if missing:
        from .errors import BuildFailed

        sources = ", ".join(f"${spec.secrets[n]}" for n in missing)
        raise BuildFailed(
            f"secret env {', '.join(missing)} is read from {sources}, which is not set"
        )
    return {name: environ[source] for name, source in spec.secrets.items()}


def build_job(
    spec: TargetSpec,
    *,
    root: str,
    code: Sequence[str],
    secrets: Mapping[str, str],
    log_path: str,
    running_dir: str,
) -> Job:
    """The Job of ``spec``: its declared env plus ``secrets`` (masked in its log) and the
    MLBUILD_* variables; ``code``: its code files, shipped with its deps where the executor
    has no shared filesystem."""
    return Job(
        target=spec.name,
        root=root,
        cmds=spec.cmd,
        python=spec.python,
        env={
            **spec.env,
            **secrets,
            "MLBUILD_TARGET": spec.name,
            "MLBUILD_OUTS": " ".join(spec.outs),
        },
        deps=spec.dep_paths,
        outs=spec.outs,
        params=dict(spec.params),
        matrix=dict(spec.matrix),
        log_path=log_path,
        secret_env=tuple(sorted(secrets)),
        running_dir=running_dir,
        retries=spec.retries,
        resources=dict(spec.resources),
        inputs=tuple(sorted({*spec.dep_paths, *code})),
    )


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
    """Replaces secret values by ``***`` in text (as CI systems do): a line shown with -v,
    an error message.

    Values shorter than 4 characters are not masked: masking "1" would garble every log
    and hide nothing worth hiding."""

    def __init__(self, values: Sequence[str]) -> None:
        # Longest first (a value inside a longer one must not break it up), then by value:
        # the same output whatever the order of the env.
        self.values = sorted({v for v in values if len(v) >= 4}, key=lambda v: (-len(v), v))

    def __bool__(self) -> bool:
        return bool(self.values)

    def __call__(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, "***")
        return text


class StreamMasker:
    """Masks secret values (as `Masker`, in their UTF-8 bytes) in a stream read in chunks,
    before anything reaches a file: a log never holds a secret, even for an instant, so
    not even a kill -9 of mlbuild leaves one behind.

    A value may straddle two reads: `feed` holds back the end of a chunk that could be the
    start of a value (at most ``len(value) - 1`` bytes), and any whole value reaching into
    it, until the next chunk or `flush`. Other output is passed on at once (a live log).
    """

    def __init__(self, values: Sequence[str]) -> None:
        self.values = [v.encode() for v in Masker(values).values]  # longest first
        self.pending = b""

    def __bool__(self) -> bool:
        return bool(self.values)

    def feed(self, chunk: bytes) -> bytes:
        """The masked bytes that can be written now."""
        if not self.values:
            return chunk
        buf = self.pending + chunk
        cut = self._held(buf)
        moved = True
        while moved and cut > 0:  # never cut through an occurrence
            moved = False
            for value in self.values:
                at = buf.find(value, max(0, cut - len(value) + 1), cut + len(value) - 1)
                if at != -1 and at < cut:
                    cut, moved = at, True
        self.pending = buf[cut:]
        return self._mask(buf[:cut])

    def _held(self, buf: bytes) -> int:
        """Where the end of ``buf`` that could begin a value starts (``len(buf)``: none)."""
        held = len(buf)
        for value in self.values:
            at = buf.find(value[:1], max(0, len(buf) - len(value) + 1))
            while at != -1 and at < held:
                if value.startswith(buf[at:]):
                    held = at
                    break
                at = buf.find(value[:1], at + 1)
        return held

    def flush(self) -> bytes:
        """The rest, at the end of the stream."""
        rest, self.pending = self.pending, b""
        return self._mask(rest)

    def _mask(self, data: bytes) -> bytes:
        for value in self.values:
            data = data.replace(value, b"***")
        return data


CHUNK = 1 << 16


def pump(
    fd: int,
    write: Callable[[bytes], object],
    masker: StreamMasker,
    finished: Callable[[], bool] | None = None,
) -> None:
    """Copy a command's output from the pipe ``fd`` to ``write``, masked, until EOF.

    With ``finished`` (the command's leader has exited), stop once the pipe is drained
    even without EOF: a background process the command left behind may hold the pipe
    open for ever (whatever it writes later is not logged). What the leader wrote is in
    the pipe before it exits, so draining after ``finished()`` loses none of it.
    """
    drain_until = 0.0  # once the leader has exited: read what is left, for 1 s at most
    while True:
        if finished is not None:
            if not drain_until and finished():
                drain_until = time.monotonic() + 1.0
            if drain_until and time.monotonic() > drain_until:
                break
            ready, _, _ = select.select([fd], [], [], 0 if drain_until else 0.1)
            if not ready:
                if drain_until:
                    break
                continue
        data = os.read(fd, CHUNK)
        if not data:
            break
        write(masker.feed(data))
    write(masker.flush())


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
        finally:
            if hook is not None:
                hook.end()
    return JobResult(ok=True, exit_code=0)
