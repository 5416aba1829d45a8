"""The provenance a build writes and reads back: its manifest (built, restored, rollback),
the previous build's manifest (drift profiles, max_drop metrics) and the quality a
restore carries over. Git is asked once per build (`_identity`)."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from typing import Any

from ..config import TargetSpec
from ..config.params import overrides_read
from ..digest import hash_file
from ..metrics import read_metrics
from ..provenance.records import (
    Identity,
    Manifest,
    ManifestError,
    Quality,
    build_manifest,
    environment,
)
from ..provenance.store import ManifestStore
from ..results import Decision
from ..store import OutRecord
from .context import Context

__all__ = ["Manifests"]


class Manifests:
    """Writes and reads the manifests of one build (``.mlbuild/manifests/``)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store: ManifestStore = ctx.manifest_store  # the workspace's one instance
        self._identity: Identity | None = None

    def write_manifest(
        self,
        target: str,
        decision: Decision,
        status: str,
        outs: tuple[OutRecord, ...],
        started: float,
        *,
        log: str | None = None,
        restored_from: str | None = None,
        quality: Quality | None = None,
        executor: dict[str, Any] | None = None,
        undeclared: Mapping[str, str] | None = None,
    ) -> str:
        """Record the provenance of a build or restore; returns the manifest id."""
        assert decision.key is not None
        if self._identity is None:
            # git is asked once per build; the lock file and the outs, rewritten by
            # builds and maybe committed after them, do not make the tree dirty.
            ignore = (self.ctx.lock.path_in(self.ctx.root), *self.ctx.pipeline.out_owner)
            self._identity = environment(self.ctx.root, ignore)
        deps: list[dict[str, Any]] = []
        for path, digest in sorted(decision.components["deps"].items()):
            link: dict[str, Any] = {"path": path, "xxh3": digest}
            producer = self.ctx.pipeline.owner_of(path)
            if producer is not None:
                link["target"] = producer
                link["manifest"] = self.store.current(producer)
            deps.append(link)
        log_digest = None
        if log is not None and os.path.exists(log):
            log_digest = hash_file(log, want_sha256=True).sha256
        env = dict(decision.components["env"])
        for name, source in self.ctx.pipeline.targets[target].secrets.items():
            env[name] = {"secret": True, "set": source in os.environ}  # never the value
        manifest = build_manifest(
            target=target,
            status=status,
            key=decision.key,
            components=decision.components,
            started=started,
            finished=time.time(),
            identity=self._identity,
            deps=deps,
            outs=[
                {"path": o.path, "type": o.type, "size": o.size, "xxh3": o.xxh, "sha256": o.sha256}
                for o in outs
            ],
            log_digest=log_digest,
            env=env,
            restored_from=restored_from,
            quality=quality,
            executor=executor,
            undeclared=undeclared,
            overrides=overrides_read(decision.components["params"], self.ctx.pipeline.overrides),
        )
        return self.store.put(manifest, self.ctx.signer)

    def recorded(self, target: str) -> Manifest | None:
        """The manifest of ``target``'s last successful build or restore (None: never)."""
        return self.usable(target, self.store.current(target))

    def usable(self, target: str, mid: str | None) -> Manifest | None:
        """A manifest this build only draws on (the previous build's profiles and metrics,
        a restored build's quality): a corrupt one is a note and counts as absent (as if
        deleted), so the build goes on; `audit` names it."""
        if mid is None:
            return None
        try:
            return self.store.get(mid)
        except ManifestError as exc:
            self.ctx.notes.add(f"{target}: {exc.message}; building as if it were absent")
            return None

    def recorded_quality(self, spec: TargetSpec, mid: str | None) -> Quality:
        """The quality of an earlier build, carried over by a restore or rollback. Metrics
        are read again from the restored files (byte for byte the same), so they survive a
        lost manifest."""
        doc = self.usable(spec.name, mid)
        quality = Quality.of(doc) if doc is not None else Quality()
        if spec.metrics:
            metrics, _ = read_metrics(self.ctx.root, spec.metrics)
            quality = dataclasses.replace(quality, metrics=metrics)
        return quality
