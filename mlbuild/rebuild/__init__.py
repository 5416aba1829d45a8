"""The rebuilder, split by step: decide whether a target is FRESH, can be RESTOREd, or
must RUN (`decide`, over the key components of `keys`); put outs in place (`materialize`:
restore, rollback, promote, the aside/failed moves); judge a finished run (`validate`);
record it (`commit`, writing through `manifests`). `accept` is `mlbuild commit`: the outs
in the workspace recorded as a build of the current key, nothing run.

`Rebuilder` is the façade that builds the steps, complete, over one `Context`: they share
its stores (the lock file each step reads or records into, the stat memo), its notes and
one `Manifests` (git is asked once per build), so they are built together, in dependency
order, and the workspace saves the lock file and the memo through it at the end. The
workspace passes in its `Layout` and its one `ManifestStore`: no step builds a path under
``.mlbuild/`` or a second store over the same directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import Pipeline
from ..options import BuildOptions
from ..provenance.store import ManifestStore
from ..store import Cache, Layout, LockFile, StateMemo
from .accept import Accepted, AcceptOutcome, accept
from .commit import CommitResult, Committer
from .context import Context, Notes, safe_name
from .decide import Decide, Decider
from .keys import Keys, code_diff, diff_components
from .manifests import Manifests
from .materialize import Materializer
from .validate import Validator

if TYPE_CHECKING:
    from ..provenance.signing import SigningKey
    from ..transfer import Transfer

__all__ = [
    "AcceptOutcome",
    "Accepted",
    "CommitResult",
    "Committer",
    "Context",
    "Decide",
    "Decider",
    "Keys",
    "Manifests",
    "Materializer",
    "Notes",
    "Rebuilder",
    "Validator",
    "accept",
    "code_diff",
    "diff_components",
    "safe_name",
]


@dataclass(frozen=True)
class Rebuilder:
    """The steps of one build over one `Context`; see the module docstring."""

    ctx: Context
    keys: Keys
    decider: Decider
    manifests: Manifests
    materializer: Materializer
    validator: Validator
    committer: Committer

    @classmethod
    def create(
        cls,
        pipeline: Pipeline,
        memo: StateMemo,
        cache: Cache,
        lock: LockFile,
        options: BuildOptions,
        layout: Layout,
        manifest_store: ManifestStore,
        *,
        signer: SigningKey | None = None,
        transfer: Transfer | None = None,
        notes: Notes | None = None,
    ) -> Rebuilder:
        """The steps over one context; ``notes`` shared with another rebuilder of the same
        build (the workspace's no-op check on Dask plans before the build is wired)."""
        ctx = Context(
            pipeline,
            memo,
            cache,
            lock,
            options,
            layout,
            manifest_store,
            signer,
            transfer,
            notes or Notes(),
        )
        keys = Keys(pipeline.root, memo)
        decider = Decider(ctx, keys)
        manifests = Manifests(ctx)
        materializer = Materializer(ctx, decider, manifests)
        validator = Validator(ctx, manifests, materializer)
        committer = Committer(ctx, keys, manifests, validator)
        return cls(ctx, keys, decider, manifests, materializer, validator, committer)

    @property
    def lock(self) -> LockFile:
        return self.ctx.lock

    @property
    def memo(self) -> StateMemo:
        return self.ctx.memo

    @property
    def notes(self) -> list[str]:
        return self.ctx.notes.lines

    def save(self) -> None:
        """End of a build (also on failure and Ctrl-C): what the build wrote made durable
        (`Cache.settle`), then the lock file once, which names it, then the memo."""
        self.ctx.cache.settle()
        self.ctx.lock.save()
        self.ctx.memo.save()
