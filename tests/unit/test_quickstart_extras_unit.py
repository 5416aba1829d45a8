"""The light Quickstart (issue 12): the README's first command installs only the `demo` extra,
so that extra must bring every package the demo imports beyond mlbuild's own dependencies,
and `dev` (the second command, the tests build the demo) must include it. Checked on the
files, without installing anything: a demo script that starts importing a new package fails
here, naming it, instead of on a new user's first build.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
tomllib = pytest.importorskip("tomllib")  # Python >= 3.11; pyproject is read, not installed


def _name(requirement: str) -> str:
    """The normalized distribution name of a requirement string (PEP 503)."""
    head = re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", head).lower()


def _project() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    project: dict[str, Any] = data["project"]
    return project


def _demo_imports() -> set[str]:
    """Top-level third-party modules that examples/quickstart/*.py import."""
    found: set[str] = set()
    for path in sorted((ROOT / "examples" / "quickstart").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "examples"}


def test_demo_extra_brings_every_package_the_demo_needs() -> None:
    project = _project()
    installed = {_name(r) for r in project["dependencies"]}
    installed |= {_name(r) for r in project["optional-dependencies"]["demo"]}
    dists = packages_distributions()
    imported = {_name(dists[module][0]) for module in _demo_imports()}
    declared = yaml.safe_load((ROOT / "mlbuild.yaml").read_text(encoding="utf-8"))["packages"]
    needed = imported | {_name(p) for p in declared}
    assert "scikit-learn" in needed
    assert sorted(needed - installed) == []


def test_dev_extra_includes_the_demo_extra() -> None:
    extras = _project()["optional-dependencies"]
    dev = {r.replace(" ", "") for r in extras["dev"]}
    assert "mlbuild[demo]" in dev or {_name(r) for r in extras["demo"]} <= {_name(r) for r in dev}


def test_readme_quickstart_installs_demo_then_dev_in_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart\n", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    first, second = block.strip().splitlines()
    assert '-e ".[demo]"' in first and first.endswith("mlbuild model:prod")
    assert '-e ".[dev]"' in second and second.endswith("pytest -q")
