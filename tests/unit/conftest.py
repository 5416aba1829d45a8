"""Fixtures for the unit tests: tiny real workspaces in tmp_path."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mlbuild.config import Pipeline, load_pipeline

WriteConfig = Callable[[str], Path]
LoadConfig = Callable[[str], Pipeline]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """An empty workspace directory (resolved, so realpath checks compare cleanly)."""
    root = tmp_path / "ws"
    root.mkdir()
    return root.resolve()


@pytest.fixture
def write_config(ws: Path) -> WriteConfig:
    """Write a dedented mlbuild.yaml into the workspace and return its path."""

    def write(text: str) -> Path:
        path = ws / "mlbuild.yaml"
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def load(write_config: WriteConfig) -> LoadConfig:
    """Write a dedented mlbuild.yaml and load it as a Pipeline."""

    def do(text: str) -> Pipeline:
        return load_pipeline(str(write_config(text)))

    return do
