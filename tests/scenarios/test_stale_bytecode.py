"""An edited workspace module runs as edited, never from a stale ``__pycache__`` entry.

Python checks a cached ``.pyc`` against its source by mtime in whole seconds and size only.
An edit that keeps the size within the same second (a generated module, a script that
rewrites a constant, an editor's save right after a build) leaves a ``.pyc`` Python takes
for current: mlbuild sees the new content (its digest changed, so the target reruns) while
the job would execute the old code and record its output as the new code's. The jobs'
Python processes therefore compile workspace sources from the source itself.
"""

from __future__ import annotations

import os
import py_compile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Project

Workspace = Callable[..., Project]

PIPELINE = """
targets:
  script:
    cmd: python make.py
    outs: [script.txt]
  callable:
    python: fitting:fit
    outs: [callable.txt]
"""
FILES = {
    "helper.py": "VERSION = 'v1'\n",
    "make.py": "import helper\nopen('script.txt', 'w').write(helper.VERSION + '\\n')\n",
    "fitting.py": (
        "import helper\n"
        "def fit(deps, outs, params):\n"
        "    open(outs[0], 'w').write(helper.VERSION + '\\n')\n"
    ),
}


def _stale_edit(path: Path, old: str, new: str) -> None:
    """Compile ``path`` into its ``__pycache__`` (as an earlier import would have), then
    edit it keeping its size and its mtime to the second: the cache still looks current."""
    py_compile.compile(str(path), doraise=True)
    before = path.stat()
    text = path.read_text()
    assert len(old) == len(new)
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.mark.parametrize("target", ["script", "callable"])
def test_an_edit_that_fools_the_bytecode_cache_still_runs_the_new_code(
    workspace: Workspace, target: str
) -> None:
    p = workspace(PIPELINE, FILES)
    assert p.build(target).ran == [target]
    assert p.read(f"{target}.txt") == "v1\n"
    _stale_edit(p.path("helper.py"), "v1", "v2")
    assert p.build(target).ran == [target]  # the digest of helper.py changed
    assert p.read(f"{target}.txt") == "v2\n"
