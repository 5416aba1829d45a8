"""Shared fixtures: copy a tiny real project from tests/projects/ and drive the real CLI.

Every scenario runs the real CLI, ``mlbuild.cli.main``, in a fresh copy of its project,
with real files, processes and exit codes. Starting ``python -m mlbuild`` costs ~0.3 s a
call, so by default `Project.mlbuild` calls ``main`` IN this process, as the subprocess
would see it: cwd, os.environ, stdout/stderr (as bytes, decoded as ``text=True`` does)
and the exit code, with the process state a call can leave behind (cwd, environ,
sys.path, the user's modules imported by a check, the GC thresholds ``main`` sets)
restored afterwards. The commands a build runs are real subprocesses either way.

Where the process boundary is the point (signals, kill -9, Ctrl-C, concurrent builds on
one lock, Dask workers, a moto server), a test or a file says so with
``@pytest.mark.cli_subprocess`` (the ``dask`` and ``s3`` markers imply it), and its
`Project` starts ``python -m mlbuild``. ``MLBUILD_TEST_CLI=subprocess`` runs every test
that way (to check that the in-process switch changes no outcome). `Project.popen` is
always a subprocess.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

PROJECTS = Path(__file__).parent / "projects"


@dataclass
class Run:
    """One finished mlbuild invocation."""

    code: int
    out: str
    err: str

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.startswith("{")]

    def outcomes(self, outcome: str) -> list[str]:
        return sorted(
            e["target"]
            for e in self.events
            if e["event"] == "target_finished" and e["outcome"] == outcome
        )

    @property
    def ran(self) -> list[str]:
        return self.outcomes("ran")

    @property
    def restored(self) -> list[str]:
        return self.outcomes("restored")


class Project:
    """A copy of tests/projects/<name> in a temporary directory.

    ``in_process`` (default: `Project.in_process_default`, which the autouse fixture
    `_cli_mode` sets from the test's markers) says how `mlbuild` calls the CLI; see the
    module docstring."""

    in_process_default: ClassVar[bool] = True

    def __init__(self, root: Path, *, in_process: bool | None = None) -> None:
        self.root = root
        self.in_process = Project.in_process_default if in_process is None else in_process

    def mlbuild(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> Run:
        if self.in_process:
            # No timeout in-process: pytest-timeout (pyproject) bounds the whole test.
            return run_cli_in_process(self.root, args, {**_clean_env(), **(env or {})})
        proc = subprocess.run(
            [sys.executable, "-m", "mlbuild", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**_clean_env(), **(env or {})},
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def build(self, *args: str) -> Run:
        """A --json build that must succeed."""
        run = self.mlbuild("--json", *args)
        assert run.code == 0, f"build failed ({run.code}):\n{run.out}\n{run.err}"
        return run

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "mlbuild", *args],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_clean_env(),
        )

    def path(self, rel: str) -> Path:
        return self.root / rel

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text()

    def write(self, rel: str, text: str) -> None:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    def replace(self, rel: str, old: str, new: str) -> None:
        text = self.read(rel)
        assert old in text, f"{old!r} not in {rel}"
        self.write(rel, text.replace(old, new))

    def manifest(self, target: str) -> tuple[str, dict[str, Any]]:
        """The id and content of ``target``'s current manifest (via the real CLI)."""
        run = self.mlbuild("manifest", "show", target, "--json")
        assert run.code == 0, run.err
        doc = json.loads(run.out)
        return doc["id"], doc["manifest"]

    def lock_entries(self) -> dict[str, Any]:
        """The lock file's targets (empty when nothing was ever recorded)."""
        if not self.path("mlbuild.lock").exists():
            return {}
        data: dict[str, Any] = json.loads(self.read("mlbuild.lock"))["targets"]
        return data

    def outputs(self, paths: list[str]) -> dict[str, bytes]:
        return {p: (self.root / p).read_bytes() for p in paths}


_CLI_OWN = tuple(
    os.path.join(os.path.realpath(p), "")
    for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, str(Path(__file__).parents[1])}
)


def run_cli_in_process(root: Path, args: tuple[str, ...] | list[str], env: dict[str, str]) -> Run:
    """``python -m mlbuild ARGS`` in ``root`` with exactly ``env``, without a new process.

    Only the entry point ``mlbuild.cli.main`` is used. Output is captured as bytes and
    decoded as ``subprocess.run(text=True)`` does (universal newlines). Whatever process
    state the call can change is put back: cwd, os.environ, sys.path, stdout/stderr, the
    GC thresholds, and modules imported from the workspace (a ``python:`` check): the next
    call, in another project with a module of the same name, must import its own."""
    from mlbuild.cli import main

    out, err = _Capture(), _Capture()
    code = 0
    with _process_state_restored(env):
        os.chdir(root)
        sys.dont_write_bytecode = True  # as PYTHONDONTWRITEBYTECODE=1 in _clean_env
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                main(list(args))
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:  # sys.exit("message"): the interpreter prints it and exits 1
                err.write(f"{exc.code}\n")
                code = 1
        finally:
            out.flush()
            err.flush()
    return Run(code, out.text(), err.text())


class _Capture(io.TextIOWrapper):
    """A text stream over bytes (click writes bytes to ``.buffer`` at times), not a tty."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors="strict", newline="")

    def text(self) -> str:
        self.flush()
        raw = self.buffer.getvalue()  # type: ignore[attr-defined]
        data: str = raw.decode("utf-8")
        return data.replace("\r\n", "\n").replace("\r", "\n")


@contextlib.contextmanager
def _process_state_restored(env: dict[str, str]) -> Iterator[None]:
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    saved_gc = gc.get_threshold()
    saved_bytecode = sys.dont_write_bytecode
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        sys.path[:] = saved_path
        gc.set_threshold(*saved_gc)
        sys.dont_write_bytecode = saved_bytecode
        for name in set(sys.modules) - saved_modules:
            file = getattr(sys.modules[name], "__file__", None) or ""
            if file and not os.path.realpath(file).startswith(_CLI_OWN):
                del sys.modules[name]  # the workspace's own code: never reused


def processes_in(root: Path) -> list[str]:
    """Live processes whose working directory is inside ``root`` (a zombie has none)."""
    found: list[str] = []
    prefix = str(root.resolve())
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cwd == prefix or cwd.startswith(prefix + os.sep):
            found.append(f"{pid} ({cmd})")
    return found


def free_port() -> int:
    """A TCP port nothing listens on now, for a server a test starts (moto, Dask)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MLBUILD_SIGNING_KEY", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


_SUBPROCESS_MARKERS = ("cli_subprocess", "dask", "s3")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``-n 2 --dist loadgroup``, pyproject.toml), every Dask test runs
    on one worker: the session's cluster is started once, not once per worker."""
    for item in items:
        if item.get_closest_marker("dask"):
            item.add_marker(pytest.mark.xdist_group("dask"))


@pytest.fixture(autouse=True)
def _cli_mode(request: pytest.FixtureRequest) -> Iterator[None]:
    """In-process CLI calls unless the test is marked as needing a process boundary."""
    in_process = os.environ.get("MLBUILD_TEST_CLI", "inprocess") != "subprocess" and not any(
        request.node.get_closest_marker(m) for m in _SUBPROCESS_MARKERS
    )
    Project.in_process_default = in_process
    yield
    Project.in_process_default = True


@pytest.fixture
def project(tmp_path: Path) -> Callable[[str], Project]:
    """``project("basic")`` → a fresh copy of tests/projects/basic."""

    def make(name: str, dest: str = "ws") -> Project:
        root = tmp_path / dest
        shutil.copytree(PROJECTS / name, root)
        return Project(root)

    return make


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[..., Project]:
    """``workspace(yaml_text, {"path": "content"})`` → a project written on the spot."""

    def make(config: str, files: dict[str, str] | None = None, dest: str = "inline") -> Project:
        root = tmp_path / dest
        root.mkdir()
        (root / "mlbuild.yaml").write_text(config)
        for rel, text in (files or {}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        return Project(root)

    return make
