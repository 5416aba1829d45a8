"""store/layout.py: every path under ``.mlbuild/`` (the tree its docstring documents), no
target name able to leave its directory, and one `ManifestStore` per workspace, shared by
its builds (tests/fakes.py: in-process, no CLI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mlbuild.config
import mlbuild.config.paths
from mlbuild.options import BuildOptions
from mlbuild.provenance.store import ManifestStore
from mlbuild.results import Outcome
from mlbuild.store.layout import STATE_DIR, Layout
from mlbuild.workspace import Workspace
from tests.fakes import build_inline, make_workspace

ROOT = "/ws"

HOSTILE = [
    "..",
    ".",
    "",
    "a/../../x",
    "../../etc/passwd",
    "/abs",
    "a:..",
    "..:b",
    "x/y",
    "%",
    "a\x00b",
    "a\\..\\b",
    ".hidden",
]


def test_the_layout_names_the_documented_tree() -> None:
    layout = Layout(ROOT)
    assert {
        "state_dir": layout.state_dir,
        "workspace_lock": layout.workspace_lock,
        "state_file": layout.state_file,
        "cache_dir": layout.cache_dir,
        "parse_cache_dir": layout.parse_cache_dir,
        "manifests_dir": layout.manifests_dir,
        "logs_dir": layout.logs_dir,
        "log": layout.log("model:prod"),
        "reproduce_log": layout.reproduce_log("model:prod"),
        "running_dir": layout.running_dir,
        "aside": layout.aside("model:prod"),
        "failed": layout.failed("data.v2"),
        "tmp_dir": layout.tmp_dir,
    } == {
        "state_dir": "/ws/.mlbuild",
        "workspace_lock": "/ws/.mlbuild/lock",
        "state_file": "/ws/.mlbuild/state.json",
        "cache_dir": "/ws/.mlbuild/cache",
        "parse_cache_dir": "/ws/.mlbuild/cache",  # config/yaml.py adds yaml/<file>.marshal
        "manifests_dir": "/ws/.mlbuild/manifests",
        "logs_dir": "/ws/.mlbuild/logs",
        "log": "/ws/.mlbuild/logs/model__prod.log",
        "reproduce_log": "/ws/.mlbuild/logs/reproduce/model__prod.log",
        "running_dir": "/ws/.mlbuild/running",
        "aside": "/ws/.mlbuild/aside/model__prod",
        "failed": "/ws/.mlbuild/failed/data.v2",
        "tmp_dir": "/ws/.mlbuild/tmp",
    }


def test_state_dir_is_defined_once_and_config_refuses_outs_under_it() -> None:
    assert STATE_DIR == ".mlbuild"
    assert mlbuild.config.STATE_DIR is STATE_DIR
    assert mlbuild.config.paths.STATE_DIR is STATE_DIR


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_target_name_stays_in_its_directory(name: str) -> None:
    layout = Layout(ROOT)
    per_target = {
        layout.log(name): layout.logs_dir,
        layout.reproduce_log(name): os.path.join(layout.logs_dir, "reproduce"),
        layout.aside(name): os.path.join(layout.state_dir, "aside"),
        layout.failed(name): os.path.join(layout.state_dir, "failed"),
    }
    for path, directory in per_target.items():
        segment = os.path.basename(path)
        assert os.path.dirname(path) == directory, (name, path)
        assert os.path.normpath(path) == path, (name, path)
        assert segment not in ("", ".", "..") and "/" not in segment and "\x00" not in segment
    # two names never share a file
    assert len({Layout(ROOT).log(n) for n in HOSTILE}) == len(HOSTILE)


PIPELINE = """
targets:
  data:
    cmd: cp src.txt data.txt
    deps: [src.txt]
    outs: [data.txt]
  model:
    cmd: cp data.txt model.txt
    deps: [data]
    outs: [model.txt]
"""


def test_a_build_through_the_workspace_writes_through_its_one_manifest_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = make_workspace(tmp_path / "ws", PIPELINE, {"src.txt": "v1\n"})
    created: list[ManifestStore] = []
    writers: list[ManifestStore] = []
    init, put = ManifestStore.__init__, ManifestStore.put

    def counting_init(self: ManifestStore, directory: str) -> None:
        created.append(self)
        init(self, directory)

    def recording_put(self: ManifestStore, *args: object, **kwargs: object) -> str:
        writers.append(self)
        return put(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ManifestStore, "__init__", counting_init)
    monkeypatch.setattr(ManifestStore, "put", recording_put)
    result = build_inline(ws)
    assert {t.target: t.outcome for t in result.targets} == {
        "data": Outcome.RAN,
        "model": Outcome.RAN,
    }
    ws.plan(None, BuildOptions())
    assert created == [ws.manifest_store]
    assert len(writers) == 2 and all(w is ws.manifest_store for w in writers)


def test_a_build_links_to_the_upstream_manifest_another_process_wrote(tmp_path: Path) -> None:
    """The workspace's one store remembers what it wrote; a build through it must still
    link a dep to the manifest another process (here: another Workspace) wrote since."""
    ws = make_workspace(tmp_path / "ws", PIPELINE, {"src.txt": "v1\n"})
    build_inline(ws)
    (tmp_path / "ws/src.txt").write_text("v2\n")
    other = Workspace(tmp_path / "ws")
    assert build_inline(other, ["data"]).targets[0].outcome is Outcome.RAN
    assert build_inline(ws, ["model"]).targets[-1].outcome is Outcome.RAN
    store = ManifestStore(ws.layout.manifests_dir)  # fresh: reads the histories on disk
    model = store.load(store.history("model")[-1])
    assert model["deps"][0]["manifest"] == store.history("data")[-1]
