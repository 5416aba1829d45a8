"""Fixtures shared by scenario files: one real Dask cluster for the whole session.

Starting `dask scheduler` and its workers costs seconds (processes, imports, registration),
so every Dask test (tests/scenarios/test_dask.py, the Dask test of test_reproduce.py) uses
the same cluster, started on first use and stopped at the end of the session. The tests
build in their own workspaces and never change the cluster's shape: a worker a test kills
is restarted by its nanny, under the same name and resources."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

BIN = Path(sys.executable).parent
# name → extra `dask worker` arguments: three single-threaded workers, one declaring gpu=1.
WORKERS: dict[str, list[str]] = {"w1": [], "w2": [], "gpu": ["--resources", "gpu=1"]}


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[str]:
    """`dask scheduler` and the `dask worker`s of WORKERS (each with its nanny), as
    separate processes; yields the scheduler's address once every worker registered."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port)]
    procs = [
        subprocess.Popen(
            [*scheduler, "--no-dashboard"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        for name, extra in WORKERS.items():
            procs.append(
                subprocess.Popen(
                    [
                        str(BIN / "dask"),
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--no-dashboard",
                        "--name",
                        name,
                        *extra,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(len(WORKERS), timeout=60)
        yield address
    finally:
        # Workers first, while their scheduler still answers (~1 s); stopping all at once
        # left a worker retrying the gone scheduler for ~8 s.
        for group in (procs[1:], procs[:1]):
            for proc in group:
                proc.terminate()
            for proc in group:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


@pytest.fixture
def cluster(dask_cluster: str) -> str:
    """The session's cluster, once all of its workers are registered again (a test before
    may have killed one: its nanny brings it back within a second or two)."""
    from distributed import Client

    with Client(dask_cluster, timeout="30s") as client:
        client.wait_for_workers(len(WORKERS), timeout=60)
    return dask_cluster
