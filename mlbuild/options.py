"""BuildOptions: every knob of a build in one frozen value (no **kwargs tunnels)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import UsageError

__all__ = ["BuildOptions", "default_jobs", "parse_resources"]


@dataclass(frozen=True)
class BuildOptions:
    jobs: int | None = None  # None: the pipeline's executor.jobs, else the CPU count
    dry_run: bool = False
    keep_going: bool = False
    force: bool = False  # rebuild the named targets even if fresh
    force_all: bool = False  # ... and their whole upstream
    store: bool = True  # --no-cache turns it off
    restore: bool = True  # --no-restore turns it off
    verbose: bool = False  # stream command output live
    wait: bool = True  # wait for the workspace lock (else exit 5)
    resources: Mapping[str, int] = field(default_factory=dict)
    remote: str | None = None  # --remote URL: overrides mlbuild.yaml's remote
    pull: bool = False  # restore stale targets from the remote by build key (--pull)
    push: bool = False  # upload successful builds to the remote (--push)
    run: bool = True  # False (mlbuild pull): restore what the caches have, run nothing
    executor: str | None = None  # --executor local|dask: overrides mlbuild.yaml's executor
    dask_address: str | None = None  # --dask-address: the Dask scheduler to send jobs to
    dask_mode: str | None = None  # --dask-mode shared|remote (executors/dask.py)

    def effective_jobs(self, pipeline_jobs: int | None) -> int:
        return default_jobs(self.jobs, pipeline_jobs)


def default_jobs(jobs: int | None, pipeline_jobs: int | None, threads: int | None = None) -> int:
    """-j, the one rule: the flag, else the file's ``executor.jobs``, else the executor's
    worker threads (a Dask cluster's), else this machine's CPUs."""
    return jobs or pipeline_jobs or threads or os.cpu_count() or 1


def parse_resources(text: str) -> dict[str, int]:
    """``gpu=1,mem=16`` → ``{"gpu": 1, "mem": 16}``."""
    pools: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        value = value.strip()
        if not sep or not name.strip() or not (value.isascii() and value.isdigit()):
            raise UsageError(f"bad --resources entry {part!r}", hint="use NAME=INT[,NAME=INT]")
        pools[name.strip()] = int(value)
    return pools
