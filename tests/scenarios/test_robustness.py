"""Parallelism, determinism, kill -9, concurrent invocations, Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Project


def _wait_for(path: Path, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while not path.exists():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_j2_really_runs_two_commands_at_once(project: Callable[[str], Project]) -> None:
    p = project("parallel")
    run = p.build("-j", "2", "pair:a", "pair:b")
    assert run.ran == ["pair:a", "pair:b"]
    assert p.read("out/a.txt") == "a saw b\n"


def test_j1_runs_one_at_a_time(project: Callable[[str], Project]) -> None:
    p = project("parallel")
    p.replace("mlbuild.yaml", "patience: 20", "patience: 1")
    run = p.mlbuild("--json", "-j", "1", "-k", "pair:a", "pair:b")
    # With one slot the first waits for a partner that cannot start: it fails.
    assert run.code == 1
    assert len(run.outcomes("failed")) >= 1


def test_resource_pool_is_never_oversubscribed(project: Callable[[str], Project]) -> None:
    p = project("parallel")
    run = p.build("-j", "2", "--resources", "gpu=1", "gpu:*")
    assert run.ran == ["gpu:one", "gpu:two"]
    too_big = p.mlbuild("-j", "2", "--resources", "gpu=0", "gpu:one")
    assert too_big.code == 2
    assert "needs gpu=1 but --resources gives gpu=0" in too_big.err


def test_lock_file_is_byte_identical_across_two_clean_builds(
    project: Callable[..., Project],  # project(name, dest)
) -> None:
    first, second = project("basic", "one"), project("basic", "two")
    first.build("-j", "1")
    second.build("-j", "2")
    assert first.read("mlbuild.lock") == second.read("mlbuild.lock")
    assert "time" not in first.read("mlbuild.lock")


@pytest.mark.cli_subprocess
@pytest.mark.parametrize("target", ["slow:job", "slow:py"])
def test_kill_9_mid_command_records_nothing_and_the_rebuild_is_correct(
    project: Callable[[str], Project], target: str
) -> None:
    p = project("slow")
    out = "out/result.txt" if target == "slow:job" else "out/py.txt"
    proc = p.popen(target)
    _wait_for(p.path("started"))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    orphan = int(p.read("started"))
    assert _alive(orphan)  # the command outlives mlbuild (its own session) ...
    assert p.read(out) == "partial\n"
    assert not p.path("mlbuild.lock").exists()
    p.path("started").unlink()
    second = p.popen("--json", target)
    _wait_for(p.path("started"))
    # ... until the next build stops it, before running the target again.
    assert not _alive(orphan)
    p.write("release", "")
    stdout, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "left running by an mlbuild that was killed" in stdout
    assert p.read(out) == "partial\ndone\n"
    assert p.build(target).ran == []


@pytest.mark.cli_subprocess
def test_second_invocation_waits_or_exits_5(project: Callable[[str], Project]) -> None:
    p = project("slow")
    first = p.popen("slow:job")
    _wait_for(p.path("started"))
    busy = p.mlbuild("--no-wait", "slow:job")
    assert busy.code == 5
    assert "another mlbuild is running in this workspace" in busy.err
    waiter = p.popen("--json", "slow:job")
    time.sleep(0.5)
    assert waiter.poll() is None  # queued behind the lock
    p.write("release", "")
    assert first.wait(timeout=60) == 0
    out, err = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, err
    assert '"outcome": "fresh"' in out  # it saw the first build's result, ran nothing
    assert p.read("out/result.txt") == "partial\ndone\n"


@pytest.mark.cli_subprocess
def test_ctrl_c_stops_running_commands_and_exits_130(project: Callable[[str], Project]) -> None:
    p = project("slow")
    proc = p.popen("slow:job")
    _wait_for(p.path("started"))
    child = int(p.read("started"))
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    deadline = time.time() + 10
    while _alive(child) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the running command survived Ctrl-C"
    assert p.mlbuild("-q").code == 1  # nothing recorded


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_switching_branches_back_restores_instead_of_rebuilding(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    p.build()
    lock_a = p.read("mlbuild.lock")
    p.write("src/extra.txt", "10\n20\n")
    p.build()
    # "git checkout" of the old sources and lock file:
    p.write("src/extra.txt", "10\n")
    p.write("mlbuild.lock", lock_a)
    run = p.build()
    assert run.ran == []
    assert run.restored == ["data:raw", "features:even", "model:depth", "model:lr"]
    shutil.rmtree(p.path("models"))
    assert p.build().restored == ["model:depth", "model:lr"]
