"""The inline executor and the shared fakes (tests/fakes.py): a whole build through the
real wiring, in this process, in milliseconds; and the same lock file as the local
executor's."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlbuild.options import BuildOptions
from mlbuild.results import Action, Outcome
from mlbuild.store import LockEntry
from tests.fakes import MemoryLockFile, build_inline, decide, make_workspace

PIPELINE = """
params: {n: 3}
targets:
  data:
    cmd: python make.py ${params.n} ${outs[0]}
    outs: [data.txt]
  model:
    python: train:fit
    deps: [data]
    outs: [model.txt]
  broken:
    python: train:boom
    outs: [never.txt]
"""
MAKE = "import sys\nopen(sys.argv[2], 'w').write('x' * int(sys.argv[1]) + '\\n')\n"
TRAIN = """
import os


def fit(deps, outs, params):
    print("fitting in", os.getpid())
    with open(outs[0], "w") as f:
        f.write(VERSION + open(deps[0]).read())


def boom(deps, outs, params):
    raise ValueError("no luck")


VERSION = "v1:"
"""


FILES = {"make.py": MAKE, "train.py": TRAIN}


def _outcomes(result: object) -> dict[str, Outcome]:
    return {t.target: t.outcome for t in result.targets}  # type: ignore[attr-defined]


def test_a_callable_runs_in_this_process_and_a_rebuild_runs_nothing(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", PIPELINE, FILES)
    first = build_inline(ws, ["model"])
    assert _outcomes(first) == {"data": Outcome.RAN, "model": Outcome.RAN}
    assert (tmp_path / "ws/model.txt").read_text() == "v1:xxx\n"
    log = (tmp_path / "ws/.mlbuild/logs/model.log").read_text()
    assert f"fitting in {os.getpid()}" in log  # no worker process
    assert "train" not in sys.modules  # the workspace's module is not kept
    assert str(tmp_path / "ws") not in sys.path
    assert decide(ws, ["model"])["model"].action is Action.FRESH
    report = ws.audit(["model"], allow_dirty=True)  # the manifests an inline build wrote
    assert report.ok, report.findings
    assert sorted(report.manifests) == ["data", "model"]
    assert _outcomes(build_inline(ws, ["model"])) == {
        "data": Outcome.FRESH,
        "model": Outcome.FRESH,
    }


def test_an_edited_module_is_imported_afresh(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", PIPELINE, FILES)
    build_inline(ws, ["model"])
    (tmp_path / "ws/train.py").write_text(TRAIN.replace('"v1:"', '"v2:"'))
    assert decide(ws, ["model"])["model"].action is Action.RUN
    assert _outcomes(build_inline(ws, ["model"], jobs=2))["model"] is Outcome.RAN
    assert (tmp_path / "ws/model.txt").read_text() == "v2:xxx\n"


def test_a_raising_callable_fails_its_target_and_the_build_goes_on(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", PIPELINE, FILES)
    result = build_inline(ws, ["broken", "model"], keep_going=True)
    outcomes = _outcomes(result)
    assert outcomes["broken"] is Outcome.FAILED
    assert outcomes["model"] is Outcome.RAN
    failed = next(t for t in result.targets if t.target == "broken")
    assert "train:boom raised ValueError: no luck" in (failed.error or "")
    assert result.exit_code == 1


def test_inline_and_local_executors_record_the_same_lock_file(tmp_path: Path) -> None:
    inline = make_workspace(tmp_path / "a", PIPELINE, FILES)
    local = make_workspace(tmp_path / "b", PIPELINE, FILES)
    build_inline(inline, ["model"])
    local.build(["model"], options=BuildOptions(jobs=1))  # loky, as the CLI does
    assert (tmp_path / "a/mlbuild.lock").read_bytes() == (tmp_path / "b/mlbuild.lock").read_bytes()


def test_a_memory_lock_decides_without_touching_the_disk(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws", PIPELINE, FILES)
    build_inline(ws, ["data"])
    recorded = dict(MemoryLockFile(entries=_disk_entries(ws.lock_path)).entries)
    assert decide(ws, ["data"], lock=MemoryLockFile(entries=recorded))["data"].action is (
        Action.FRESH
    )
    # Without its entry (and its outs in the workspace), the cache restores it.
    (tmp_path / "ws/data.txt").unlink()
    assert decide(ws, ["data"], lock=MemoryLockFile())["data"].action is Action.RESTORE
    assert not (tmp_path / "ws/data.txt").exists()  # deciding restores nothing


def _disk_entries(path: str) -> dict[str, LockEntry]:
    from mlbuild.store import LockFile

    return LockFile(path).entries
