"""The undeclared-read recorder (mlbuild/reads.py and its audit hook) without a build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlbuild import reads


def test_every_python_started_with_the_hook_env_records_its_workspace_opens(
    tmp_path: Path,
) -> None:
    root = tmp_path / "ws"
    (root / "data").mkdir(parents=True)
    (root / "data" / "a.csv").write_text("a")
    outside = tmp_path / "outside.txt"
    outside.write_text("o")
    script = (
        "import os, subprocess, sys\n"
        "open('data/a.csv').read()\n"
        f"open({str(outside)!r}).read()\n"
        "open('out.txt', 'w').write('x')\n"
        "open('out.txt').read()\n"  # a scratch file read back: written, not an input
        "os.close(os.open('data/a.csv', os.O_RDONLY))\n"
        "subprocess.run([sys.executable, '-c', \"open('child.txt', 'a').close()\"])\n"
    )
    with reads.recording() as log_dir:
        env = {**os.environ, **reads.hook_env(log_dir, str(root), {})}
        subprocess.run([sys.executable, "-c", script], cwd=root, env=env, check=True)
        read, written = reads.collect(log_dir, str(root))
    assert read == ("data/a.csv", "out.txt")  # the file outside the root is not recorded
    assert written == ("out.txt",)  # child.txt is written, never read: not kept
    assert not os.path.exists(log_dir)  # the log goes with the job


def test_the_hook_comes_before_the_callers_pythonpath_and_keeps_it() -> None:
    env = reads.hook_env("/logs", "/ws", {"PYTHONPATH": "src"})
    assert env["PYTHONPATH"].split(os.pathsep) == [reads.HOOK_DIR, "src"]


def test_a_hostile_log_line_is_dropped_never_followed(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    log = tmp_path / "log"
    log.mkdir()
    (log / "1-0").write_bytes(
        b"r\t" + str(root / "ok.txt").encode() + b"\n"
        b"r\t" + str(root / ".." / "escape.txt").encode() + b"\n"
        b"r\trelative.txt\n"
        b"x\t" + str(root / "kind.txt").encode() + b"\n"
        b"r\t" + str(root / ".git" / "config").encode() + b"\n"
        b"r\t" + str(root / "pkg" / "__pycache__" / "m.pyc").encode() + b"\n"
        b"r\t" + str(root / ".venv/lib/site-packages/x.py").encode() + b"\n"
        b"garbage without a tab\n\xff\xfe\n"
    )
    assert reads.collect(str(log), str(root)) == (("ok.txt",), ())


def test_what_a_target_declares_covers_its_reads(tmp_path: Path) -> None:
    for rel in ("dep.csv", "dir/x/y.csv", "extra.csv", "scratch.tmp", "dirx.csv", "own/o.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    found = reads.undeclared(
        read=["dep.csv", "dir/x/y.csv", "dirx.csv", "extra.csv", "gone.csv", "own/o.txt",
              "scratch.tmp", "dir"],
        written=["scratch.tmp"],
        declared=["dep.csv", "dir/", "own"],
        root=str(tmp_path),
    )
    # a declared directory covers its files but not a sibling sharing its prefix; a file
    # the job wrote, one that no longer exists and a directory are not inputs
    assert found == ["dirx.csv", "extra.csv"]


def test_a_callables_worker_records_only_while_a_job_runs(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "in.txt").write_text("i")
    code = (
        "import os, sys\n"
        "from mlbuild import reads\n"
        f"root, log = {str(root)!r}, sys.argv[1]\n"
        "hook = reads.start_in_process({'MLBUILD_READS': log, 'MLBUILD_READS_ROOT': root})\n"
        "open(os.path.join(root, 'in.txt')).read()\n"
        "hook.end()\n"
        "open(os.path.join(root, 'after.txt'), 'w').close()\n"
        "assert reads.start_in_process({}) is None\n"
    )
    with reads.recording() as log_dir:
        subprocess.run([sys.executable, "-c", code, log_dir], check=True)
        assert reads.collect(log_dir, str(root)) == (("in.txt",), ())


def test_installed_package_metadata_in_the_workspace_is_not_an_undeclared_read(
    tmp_path: Path,
) -> None:
    """`pip install -e .` writes NAME.egg-info/ at the workspace root, and importlib.metadata
    (scikit-learn's narwhals lists entry points) reads it from a job's cwd: package metadata,
    covered by `packages:` like site-packages, never an input a target should declare."""
    root = tmp_path / "ws"
    root.mkdir()
    log = tmp_path / "log"
    log.mkdir()
    (log / "1-0").write_bytes(
        b"r\t" + str(root / "mlbuild.egg-info" / "entry_points.txt").encode() + b"\n"
        b"r\t" + str(root / "build/lib/pkg-1.0.dist-info/METADATA").encode() + b"\n"
        b"r\t" + str(root / "data" / "train.csv").encode() + b"\n"
    )
    assert reads.collect(str(log), str(root)) == (("data/train.csv",), ())
