"""Shared fakes for in-process tests: a workspace built on the spot, the inline executor,
and an in-memory lock file and state memo, so the decision logic, the scheduler, the
rebuilder and the audit run in milliseconds with no ``python -m mlbuild`` and no loky pool.

What is faked and why (everything else is the real code on real files in ``tmp_path``):

- executor: `mlbuild.executors.inline.InlineExecutor` runs ``python:`` callables in this
  process (starting a loky pool costs more than a test's callables); shell commands stay
  real subprocesses.
- lock file and state memo: `MemoryLockFile` and `memory_memo` keep what a build records in
  memory, for tests of decisions over a hand-made lock (no file to write and re-read).
- manifests: `minimal_manifest` makes the smallest record `build_manifest` writes, for tests
  of the strict parser that then forge one field of it.
- the content-addressed cache is NOT faked: on a tmpfs-backed ``tmp_path`` it costs
  microseconds, and a fake would hide the very hashing and restoring under test.

Scenario tests whose point is the CLI keep using tests/conftest.py's `Project`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlbuild.events import BuildEvents
from mlbuild.executors.inline import InlineExecutor
from mlbuild.options import BuildOptions
from mlbuild.rebuild import Rebuilder
from mlbuild.results import BuildResult, Decision
from mlbuild.scheduler import plan
from mlbuild.store import LockEntry, LockFile, StateMemo
from mlbuild.workspace import Workspace

__all__ = [
    "MemoryLockFile",
    "build_inline",
    "decide",
    "inline_executor",
    "make_workspace",
    "memory_memo",
    "memory_rebuilder",
    "minimal_manifest",
]


def make_workspace(root: Path, config: str, files: Mapping[str, str] | None = None) -> Workspace:
    """Write ``mlbuild.yaml`` and ``files`` under ``root`` (created) → its `Workspace`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "mlbuild.yaml").write_text(config)
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return Workspace(root)


def inline_executor(ws: Workspace, *, stream: bool = False) -> InlineExecutor:
    """The inline executor for ``ws``, registering its shell commands where a build's
    `reap_orphans` looks (``.mlbuild/running``)."""
    return InlineExecutor(stream=stream, running_dir=ws.layout.running_dir)


def build_inline(
    ws: Workspace,
    targets: Iterable[str] | None = None,
    *,
    events: BuildEvents | None = None,
    **options: Any,
) -> BuildResult:
    """``ws.build(targets)`` through the real wiring (lock, rebuilder, scheduler), with
    callables run in-process; ``options`` are `BuildOptions` fields (``jobs=2``...)."""
    opts = replace(BuildOptions(), **options)
    return ws.build(
        None if targets is None else list(targets),
        options=opts,
        events=events,
        executor=inline_executor(ws, stream=opts.verbose),
    )


class MemoryLockFile(LockFile):
    """A lock file that never touches the disk: starts from ``entries`` (or empty), and
    `save` keeps the rendered bytes in `saved` (None until a save changed something)."""

    def __init__(
        self, path: str = "mlbuild.lock", entries: Mapping[str, LockEntry] | None = None
    ) -> None:
        self.path = path
        self.entries = dict(entries or {})
        self.dirty = False
        self.saved: bytes | None = None

    def save(self) -> None:
        if self.dirty:
            self.saved = self.render()
            self.dirty = False


def memory_memo(ws: Workspace) -> StateMemo:
    """A state memo that starts empty and is never saved (``path=None``): every digest is
    computed afresh, as on a first build."""
    return StateMemo(ws.root, None)


def memory_rebuilder(
    ws: Workspace,
    lock: LockFile | None = None,
    options: BuildOptions | None = None,
) -> Rebuilder:
    """A `Rebuilder` over ``ws``'s pipeline and real cache, with ``lock`` (default: the
    workspace's lock file, read into memory) and an in-memory memo."""
    return Rebuilder.create(
        ws.pipeline,
        memory_memo(ws),
        ws.cache,
        lock if lock is not None else LockFile(ws.lock_path),
        options or BuildOptions(),
        ws.layout,
        ws.manifest_store,
    )


def decide(
    ws: Workspace, targets: Iterable[str] | None = None, *, lock: LockFile | None = None
) -> dict[str, Decision]:
    """What a build of ``targets`` would do, target by target (`scheduler.plan`), without
    the workspace lock or writing anything."""
    order = ws.graph.closure(ws.select(None if targets is None else list(targets)))
    decisions = plan(ws.graph, ws.pipeline, memory_rebuilder(ws, lock).decider, order, set())
    return {d.target: d for d in decisions}


def minimal_manifest(
    status: str = "built",
    *,
    cmd: list[str] | None = None,
    params: Mapping[str, Any] | None = None,
    undeclared: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of target ``t`` with nothing in it but what the arguments give, as
    `build_manifest` writes it (a plain dict, so a test can forge any field)."""
    from mlbuild.provenance.records import Identity, build_manifest

    identity = Identity("u", "h", "3.11", "linux", {"commit": None, "dirty": False})
    doc = build_manifest(
        target="t",
        status=status,
        key="xxh3-128:" + "1" * 32,
        components={"cmd": cmd, "deps": {}, "params": dict(params or {}), "code": {}, "env": {}},
        started=0.0,
        finished=1.0,
        identity=identity,
        deps=[],
        outs=[],
        log_digest=None,
        env={},
        undeclared=undeclared,
        overrides=overrides,
    )
    return dict(doc)
