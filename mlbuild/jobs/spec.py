"""Job and JobResult: the plain, picklable description of one command and how it ended,
and `build_job` / `read_secrets`, which make a target's Job from its spec (`planned_job`:
the Job a build would make, whose `Job.command_text` `mlbuild -n` prints).

A Job carries everything a worker needs (paths, env, params) and nothing it must not touch
(no pipeline, no cache, no lock file), so the same Job can run in a thread, a loky process
or on a Dask worker. Both classes pickle by this module's path (``mlbuild.jobs.spec``),
which the client, a loky worker, a Dask worker and executors/pyjob.py all import.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .masking import Masker, StreamMasker

if TYPE_CHECKING:  # only attribute reads: a worker unpickling a Job never imports config
    from ..config import TargetSpec

__all__ = ["Job", "JobResult", "build_job", "planned_job", "read_secrets"]


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
        return StreamMasker(self._secret_values())

    def text_masker(self) -> Masker:
        """Masks this job's secret values in text shown to a user (`command_text`)."""
        return Masker(self._secret_values())

    def _secret_values(self) -> list[str]:
        return [self.env[name] for name in self.secret_env if name in self.env]

    def call_kwargs(self) -> dict[str, Any]:
        """The keyword arguments the ``python:`` callable gets (jobs/call.py), in this
        order: ``deps``, ``outs``, ``params``, then the matrix variables."""
        return {
            "deps": list(self.deps),
            "outs": list(self.outs),
            "params": dict(self.params),
            **dict(self.matrix),
        }

    def command_text(self) -> tuple[str, ...]:
        """What this job runs, as text (`mlbuild -n`): each ``cmd`` exactly as ``/bin/sh -c``
        gets it, or the callable's call, ``module:function(deps=[...], ...)``, with the
        arguments of `call_kwargs` as Python literals. Secret values are ``***``, as in logs:
        a command cannot interpolate a secret, but a param or literal may hold its value."""
        if self.python is not None:
            args = ", ".join(f"{k}={v!r}" for k, v in self.call_kwargs().items())
            texts: tuple[str, ...] = (f"{self.python}({args})",)
        else:
            texts = self.cmds or ()
        mask = self.text_masker()
        return tuple(mask(t) for t in texts) if mask else texts


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
        from ..errors import BuildFailed

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


def planned_job(spec: TargetSpec, *, root: str, environ: Mapping[str, str]) -> Job:
    """The Job a build would give ``spec``, never run (``mlbuild -n``): the secrets set in
    ``environ`` are read, only so that `Job.command_text` masks their values; one not set
    is left out (the build itself reports it). No log or running directory: none is used."""
    secrets = {name: environ[src] for name, src in spec.secrets.items() if src in environ}
    return build_job(spec, root=root, code=(), secrets=secrets, log_path="", running_dir="")
