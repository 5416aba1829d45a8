"""What every step of the rebuilder shares: the stores of one build and its settings,
gathered once (`Context`), with the workspace's `Layout` (every path under ``.mlbuild/``)
and its one `ManifestStore` (owned by the `Workspace`, so its in-memory index of current
manifests is the one every reader of the workspace sees).

A `Context` is built complete by `Rebuilder.create` before any step exists: nothing is
set on it afterwards. Its one mutable part is `Notes`, the build's refused records and
failed remote lookups, which every step may add to and the workspace prints at the end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..config import Pipeline, TargetSpec, check_inside
from ..errors import BuildFailed
from ..options import BuildOptions
from ..provenance.store import ManifestStore
from ..store import Cache, Layout, LockFile, StateMemo
from ..store.layout import target_file_name

if TYPE_CHECKING:
    from ..provenance.signing import SigningKey
    from ..transfer import Transfer

__all__ = ["Context", "Notes", "safe_name"]


def safe_name(target: str) -> str:
    """A file name for per-target state (logs, aside and failed outs): names are data,
    never paths (store/layout.py: ``model:prod`` → ``model__prod``, ``..`` → ``%%2E%2E``)."""
    return target_file_name(target)


@dataclass
class Notes:
    """Refused records and failed remote lookups of one build, each said once."""

    lines: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        if text not in self.lines:
            self.lines.append(text)


@dataclass(frozen=True)
class Context:
    pipeline: Pipeline
    memo: StateMemo
    cache: Cache
    lock: LockFile
    options: BuildOptions
    layout: Layout  # every path under .mlbuild/ (logs, aside, failed)
    manifest_store: ManifestStore  # the workspace's one instance
    signer: SigningKey | None = None  # manifests are signed when a key is configured
    transfer: Transfer | None = None  # the remote, for --pull (and the Dask remote mode)
    notes: Notes = field(default_factory=Notes)

    @property
    def root(self) -> str:
        return self.pipeline.root

    def log_path(self, name: str) -> str:
        return self.layout.log(name)

    def ensure_inside(self, spec: TargetSpec, rel: str) -> None:
        """Outs are checked again at write time: a symlink made since load must not lead out."""
        parent = os.path.dirname(rel)
        if parent and not check_inside(self.root, parent):
            raise BuildFailed(f"out {rel!r} of {spec.name!r} leads outside the workspace (symlink)")
        full = os.path.join(self.root, rel)
        if os.path.islink(full) and not check_inside(self.root, rel):
            raise BuildFailed(f"out {rel!r} of {spec.name!r} is a symlink out of the workspace")
