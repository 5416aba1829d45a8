"""The environment's faults — disk full, a read-only `.mlbuild/`, a file truncated while it
is hashed — are one-line errors naming the path and a next step (exit 1), never a
traceback (exit 70); nothing finished is lost, and the next build on a healed machine is
correct. Disk full and read-only use a real small tmpfs, mounted by the test (root only:
otherwise the test is skipped and says why)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Project

Workspace = Callable[..., Project]

PIPELINE = """
targets:
  small:
    cmd: echo small > ${outs[0]}
    outs: [small.txt]
  big:
    cmd: head -c 300000 /dev/zero > ${outs[0]}
    deps: [small]
    outs: [big.bin]
"""


def _mount_tmpfs(where: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; this fault is not simulated here")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): fault not simulated")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1200 KiB filesystem: with the 700 KB filler, room for one copy of big.bin, not
    two; without it, room for the failed copy kept aside, the new one and its cache copy."""
    where = tmp_path / "disk"
    _mount_tmpfs(where, "1200k")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def _project(root: Path) -> Project:
    root.mkdir()
    (root / "mlbuild.yaml").write_text(PIPELINE)
    return Project(root)


def _one_line_error(err: str) -> None:
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("mlbuild: error:")]
    assert len(errors) == 1, err


def test_a_full_disk_is_a_one_line_error_and_nothing_finished_is_lost(
    small_disk: Path,
) -> None:
    p = _project(small_disk / "ws")
    filler = small_disk / "filler"
    filler.write_bytes(b"f" * 700_000)  # big.bin fits in the workspace, its cache copy not

    run = p.mlbuild()

    assert run.code == 1, run.err
    _one_line_error(run.err)
    assert "No space left on device" in run.out + run.err
    assert p.mlbuild("-q", "small").code == 0  # finished before the fault: recorded
    filler.unlink()  # the machine is healed
    again = p.mlbuild()
    assert again.code == 0, again.err
    assert p.mlbuild("-q").code == 0
    assert p.mlbuild("cache", "verify").code == 0
    assert p.path("big.bin").read_bytes() == b"\0" * 300_000


def test_a_read_only_state_directory_is_a_one_line_error(tmp_path: Path) -> None:
    p = _project(tmp_path / "ws")
    assert p.mlbuild().code == 0
    p.replace("mlbuild.yaml", "echo small", "echo smaller")
    state = p.root / ".mlbuild"
    _mount_tmpfs(state, "1m")  # hides the real .mlbuild/ until unmounted
    try:
        subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
        run = p.mlbuild()
        assert run.code == 1, run.err
        _one_line_error(run.err)
        assert "Read-only file system" in run.err, run.err
        assert ".mlbuild" in run.err
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)
    again = p.mlbuild()
    assert again.code == 0, again.err
    assert p.read("small.txt") == "smaller\n"


def test_a_file_truncated_while_it_is_hashed_never_kills_mlbuild(tmp_path: Path) -> None:
    """Hashing by mmap died with SIGBUS (no message) when another process truncated the
    file; now the hash sees a short read and says the file changed."""
    script = tmp_path / "race.py"
    data = tmp_path / "big.bin"
    script.write_text(
        "import os, sys, threading\n"
        "from mlbuild.digest import FileChanged, hash_file\n"
        f"path = {str(data)!r}\n"
        "stop = False\n"
        "def churn():\n"
        "    while not stop:\n"
        "        with open(path, 'r+b') as f:\n"
        "            f.truncate(1 << 20)\n"
        "            f.truncate(64 << 20)\n"
        "t = threading.Thread(target=churn)\n"
        "open(path, 'wb').truncate(64 << 20)\n"
        "t.start()\n"
        "changed = 0\n"
        "for _ in range(40):\n"
        "    try:\n"
        "        hash_file(path, want_sha256=False)\n"
        "    except FileChanged:\n"
        "        changed += 1\n"
        "stop = True\n"
        "t.join()\n"
        "print('changed', changed)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (done.returncode, done.stderr)  # -7 was SIGBUS
    assert done.stdout.startswith("changed ")
