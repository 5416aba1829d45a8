"""Shared fixtures: copy a tiny real project from tests/projects/ and drive the real CLI.

Every scenario runs ``python -m mlbuild`` as a subprocess in a fresh copy of its project,
so the tests exercise exactly what a user types, with real files, processes and exit codes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    """A copy of tests/projects/<name> in a temporary directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mlbuild(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> Run:
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
