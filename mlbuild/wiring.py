"""Wiring a build, once: from the flags (`BuildOptions`) and mlbuild.yaml to the executor
that runs the jobs, the -j bound and the remote a build talks to (`Wiring`, immutable).

Every check of the combination happens here, in this order, before anything runs: a
``--dask-mode`` without the Dask executor; a no-op build on Dask falls back to the local
executor (it never needs, or waits for, the cluster); the remote (--pull, --push,
``remote_write``, the Dask remote mode) is opened; then the executor: Dask needs a
scheduler address, its remote mode a remote, and an unknown executor is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .config import Pipeline
from .errors import UsageError
from .executors import Executor, LocalExecutor
from .kinds import DaskMode, ExecutorType, words
from .options import BuildOptions, default_jobs
from .store import Cache, StateMemo

if TYPE_CHECKING:
    from .transfer import Transfer

__all__ = ["Wiring", "cluster_executor", "pushes", "wire"]


@dataclass(frozen=True)
class Wiring:
    options: BuildOptions  # as resolved: ``executor`` is "local" for a no-op build on Dask
    executor: Executor
    jobs: int  # -j: the flag, else the file's executor.jobs, else the cluster's threads/CPUs
    transfer: Transfer | None  # the remote, when the build pulls, pushes or stages through it
    push: bool  # upload the builds at the end (--push, or remote_write)


def pushes(pipeline: Pipeline, options: BuildOptions) -> bool:
    """--push, or remote_write: true for a build that runs things (not `mlbuild pull`)."""
    return options.push or (pipeline.remote_write and options.run)


def wire(
    pipeline: Pipeline,
    options: BuildOptions,
    *,
    memo: StateMemo,
    cache: Cache,
    running_dir: str,
    nothing_to_run: Callable[[], bool],
    open_transfer: Callable[[BuildOptions], Transfer],
    executor: Executor | None = None,
) -> Wiring:
    """The wiring of one build (see the module docstring). ``nothing_to_run``: whether every
    target is fresh (asked only on Dask); ``executor``: one chosen by the caller (tests,
    the inline executor), used as given."""
    on_dask = (options.executor or pipeline.executor) == ExecutorType.DASK
    if options.dask_mode is not None and not on_dask:
        raise UsageError(
            "--dask-mode goes with the dask executor",
            hint="add --executor dask --dask-address ADDR, or set executor: in mlbuild.yaml",
        )
    if on_dask and nothing_to_run() and not (options.force or options.force_all):
        # Nothing to run: a no-op build never needs (or waits for) the cluster.
        options = replace(options, executor=ExecutorType.LOCAL.value)
        on_dask = False
    remote_mode = on_dask and (options.dask_mode or pipeline.executor_mode) == DaskMode.REMOTE
    push = pushes(pipeline, options)
    transfer = open_transfer(options) if options.pull or push or remote_mode else None
    if executor is None:
        executor = cluster_executor(
            pipeline, options, memo, cache, lambda: transfer, root=pipeline.root
        )
    jobs = default_jobs(options.jobs, pipeline.jobs, getattr(executor, "threads", None))
    if executor is None:
        executor = LocalExecutor(jobs, stream=options.verbose, running_dir=running_dir)
    return Wiring(options, executor, jobs, transfer, push)


def cluster_executor(
    pipeline: Pipeline,
    options: BuildOptions,
    memo: StateMemo,
    cache: Cache,
    transfer: Callable[[], Transfer | None],
    *,
    root: str,
) -> Executor | None:
    """The Dask executor when the options and the file choose it (None: local). Its
    remote mode stages the job's inputs from ``root`` (the workspace, or a reproduction's
    scratch copy) through ``transfer()``, asked only then, after the address check."""
    kind = options.executor or pipeline.executor
    if kind == ExecutorType.LOCAL:
        return None
    if kind != ExecutorType.DASK:
        raise UsageError(
            f"unknown executor {kind!r}", hint=f"use {' or '.join(words(ExecutorType))}"
        )
    from .executors.dask import DaskExecutor

    address = options.dask_address or pipeline.executor_address
    if address is None:
        raise UsageError(
            "the dask executor needs a scheduler address",
            hint="pass --dask-address tcp://HOST:8786 or set executor.address",
        )
    staging = None
    if (options.dask_mode or pipeline.executor_mode) == DaskMode.REMOTE:
        from .staging import RemoteStaging

        remote = transfer()
        if remote is None:
            raise UsageError(
                "the dask executor's remote mode moves data through the remote "
                "cache, and no remote is configured",
                hint="add remote: URL to mlbuild.yaml or pass --remote URL",
            )
        staging = RemoteStaging(root, memo, cache, remote)
    return DaskExecutor(
        address, staging=staging, connect_timeout=pipeline.executor_connect_timeout
    )
