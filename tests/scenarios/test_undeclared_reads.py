"""mlbuild notices a target that reads a workspace file it does not declare (issue 10,
part 2): every Python process of the job records what it opens (mlbuild/reads.py)."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import Project

Workspace = Callable[..., Project]

PIPELINE = """
targets:
  script:
    cmd: python train.py
    deps: [data.csv]
    outs: [model.txt]
  callable:
    python: job:run
    deps: [data.csv]
    outs: [c.txt]
  clean:
    cmd: python clean.py
    deps: [data.csv, tables]
    outs: [clean.txt]
    env: {PYTHONPATH: vendor/lib/python3/site-packages}
"""
FILES = {
    "data.csv": "a\n",
    "extra.csv": "b\n",
    "sub_extra.txt": "c\n",
    "tables/t1.csv": "t\n",
    # a script that reads an undeclared file and starts a Python that reads another
    "train.py": (
        "import subprocess, sys\n"
        "open('data.csv').read()\n"
        "open('extra.csv').read()\n"
        "subprocess.run([sys.executable, 'sub.py'], check=True)\n"
        "open('model.txt', 'w').write('m')\n"
    ),
    "sub.py": "open('sub_extra.txt').read()\n",
    # a python: callable that reads an undeclared file
    "job.py": (
        "def run(deps, outs, params):\n"
        "    open('extra.csv').read()\n"
        "    open(outs[0], 'w').write('c')\n"
    ),
    # declared reads only: a dep, a file in a dep directory, its own scratch file read
    # back, a missing file probed, and an installed package's data file
    "clean.py": (
        "import os, fakepkg\n"
        "open('data.csv').read()\n"
        "open('tables/t1.csv').read()\n"
        "open('scratch.tmp', 'w').write('s')\n"
        "open('scratch.tmp').read()\n"
        "os.path.exists('nope.cfg') and open('nope.cfg').read()\n"
        "fakepkg.load()\n"
        "open('clean.txt', 'w').write('ok')\n"
    ),
    "vendor/lib/python3/site-packages/fakepkg/__init__.py": (
        "import os\n"
        "def load():\n"
        "    return open(os.path.join(os.path.dirname(__file__), 'data.txt')).read()\n"
    ),
    "vendor/lib/python3/site-packages/fakepkg/data.txt": "pkg\n",
}


def _undeclared_lines(err: str) -> list[str]:
    return sorted(line.split("warning: ", 1)[1] for line in err.splitlines() if "warning: " in line)


def test_undeclared_reads_are_warned_recorded_and_make_the_target_stale_when_they_change(
    workspace: Workspace,
) -> None:
    ws = workspace(PIPELINE, FILES)
    first = ws.mlbuild()
    assert first.code == 0, first.err
    assert _undeclared_lines(first.err) == [
        "callable read extra.csv, which it does not declare: its key does not cover it",
        "script read extra.csv, which it does not declare: its key does not cover it",
        "script read sub.py, which it does not declare: its key does not cover it",
        "script read sub_extra.txt, which it does not declare: its key does not cover it",
    ]
    lock = ws.lock_entries()
    assert sorted(lock["script"]["undeclared"]) == ["extra.csv", "sub.py", "sub_extra.txt"]
    assert sorted(lock["callable"]["undeclared"]) == ["extra.csv"]
    assert "undeclared" not in lock["clean"]  # deps, dirs, scratch, probes, packages: silent
    _, doc = ws.manifest("script")
    assert [r["path"] for r in doc["undeclared_reads"]] == ["extra.csv", "sub.py", "sub_extra.txt"]
    show = ws.mlbuild("show", "script")
    assert "reads     extra.csv, which it does not declare: its key does not cover it" in show.out

    # The key does not cover extra.csv, yet a change to it is never silently "fresh".
    ws.write("extra.csv", "changed\n")
    status = ws.mlbuild("status", "--json")
    assert status.code == 0, status.err
    reasons = {
        e["target"]: [r["text"] for r in e["reasons"]]
        for e in json.loads(status.out)["targets"]
    }
    assert reasons["script"] == ["extra.csv, which it read but does not declare, changed"]
    assert reasons["callable"] == ["extra.csv, which it read but does not declare, changed"]
    assert reasons["clean"] == []
    reads = {e["target"]: e["undeclared_reads"] for e in json.loads(status.out)["targets"]}
    assert reads == {
        "callable": ["extra.csv"],
        "clean": [],
        "script": ["extra.csv", "sub.py", "sub_extra.txt"],
    }
    explain = ws.mlbuild("explain", "callable")
    assert explain.out.splitlines() == [
        "callable would run",
        "  - extra.csv, which it read but does not declare, changed",
        "  ! its last build read extra.csv, which it does not declare: its key does not cover it",
    ]
    again = ws.build()
    assert again.ran == ["callable", "script"]

    # Declaring the file ends the warnings; the next build with nothing changed is a no-op.
    ws.replace(
        "mlbuild.yaml",
        "deps: [data.csv]\n    outs: [c.txt]",
        "deps: [data.csv, extra.csv]\n    outs: [c.txt]",
    )
    declared = ws.mlbuild()
    assert declared.code == 0, declared.err
    assert not any(line.startswith("callable") for line in _undeclared_lines(declared.err))
    assert "undeclared" not in ws.lock_entries()["callable"]
    assert ws.build().ran == []


def test_a_cached_build_that_read_a_changed_undeclared_file_is_not_restored(
    workspace: Workspace,
) -> None:
    ws = workspace(
        "targets:\n  t:\n    cmd: python t.py\n    outs: [o.txt]\n",
        {
            "x.txt": "1\n",
            "t.py": "open('o.txt', 'w').write(open('x.txt').read())\n",
        },
    )
    assert ws.build().ran == ["t"]
    ws.write("t.py", "open('o.txt', 'w').write(open('x.txt').read() + '2')\n")
    assert ws.build().ran == ["t"]
    # Back to the first script: its key's cached result read x.txt=1; x.txt is 3 now.
    ws.write("t.py", "open('o.txt', 'w').write(open('x.txt').read())\n")
    ws.write("x.txt", "3\n")
    run = ws.build()
    assert run.ran == ["t"] and run.restored == []
    assert ws.read("o.txt") == "3\n"


def test_strict_inputs_fails_the_target_and_caches_nothing(workspace: Workspace) -> None:
    ws = workspace(
        "strict_inputs: true\n"
        "targets:\n"
        "  t:\n    cmd: python t.py\n    outs: [o.txt]\n"
        "  loose:\n    cmd: python t.py o2.txt\n    outs: [o2.txt]\n    strict_inputs: false\n",
        {
            "x.txt": "1\n",
            "t.py": (
                "import sys\n"
                "out = sys.argv[1] if len(sys.argv) > 1 else 'o.txt'\n"
                "open(out, 'w').write(open('x.txt').read())\n"
            ),
        },
    )
    run = ws.mlbuild("-k")
    assert run.code == 1
    assert "t: read x.txt, which it does not declare (strict_inputs)" in run.err
    entries = ws.lock_entries()
    assert "t" not in entries and "loose" in entries
    assert not ws.path(".mlbuild/cache/runs").exists() or len(
        list(ws.path(".mlbuild/cache/runs").rglob("*.json"))
    ) == 1  # only loose's result


def test_a_users_own_sitecustomize_still_runs(workspace: Workspace) -> None:
    ws = workspace(
        "targets:\n  t:\n    cmd: python -c \"open('o.txt', 'w').write('x')\"\n"
        "    outs: [o.txt]\n    env: {PYTHONPATH: site}\n",
        {"site/sitecustomize.py": "open('marker.txt', 'w').write('ran')\n"},
    )
    ws.build()
    assert ws.read("marker.txt") == "ran"
