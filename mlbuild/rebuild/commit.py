"""Committing a finished run: hash and store its outs, re-hash its inputs, write its
manifest, run-cache entry and lock entry; and the files it read undeclared.

Order of a commit (each step atomic, so a kill -9 between any two leaves a consistent
state in which the target is simply stale)::

    outs exist? ──no──▶ fail (partial outs moved to .mlbuild/failed/<target>/)
      │yes
    hash outs (xxh3 + sha256, one read) ─▶ store objects ─▶ re-hash inputs
      │ an input changed during the run? ──yes──▶ keep outs, record nothing
      │no
    run-cache entry (key → outs) ─▶ lock entry (saved with the lock file)
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .. import reads
from ..config import TargetSpec
from ..errors import BuildFailed
from ..kinds import LinkType, ManifestStatus, OutType
from ..results import Decision
from ..store import LockEntry, OutRecord
from .context import Context
from .keys import Keys
from .manifests import Manifests
from .validate import Validator

__all__ = ["CommitResult", "Committer"]


@dataclass(frozen=True)
class CommitResult:
    outs: tuple[OutRecord, ...]
    recorded: bool
    warnings: tuple[str, ...] = ()


class Committer:
    """Records finished runs (and promotions) of one build."""

    def __init__(
        self, ctx: Context, keys: Keys, manifests: Manifests, validator: Validator
    ) -> None:
        self.ctx = ctx
        self.keys = keys
        self.manifests = manifests
        self.validator = validator

    def commit(
        self,
        spec: TargetSpec,
        decision: Decision,
        upstream: Mapping[str, tuple[OutRecord, ...]],
        started: float,
        promotion: dict[str, Any] | None = None,
        ran_on: dict[str, Any] | None = None,
        undeclared: Mapping[str, str] | None = None,
    ) -> CommitResult:
        """Hash and store the outs of a successful run, then record it (see module doc).
        ``undeclared``: files it read without declaring them (`undeclared_reads`)."""
        assert decision.key is not None
        missing = [
            rel for rel in spec.outs if not os.path.lexists(os.path.join(self.ctx.root, rel))
        ]
        if missing:
            raise BuildFailed(f"the command did not write declared out(s): {', '.join(missing)}")
        quality, warnings = self.validator.assess(spec, promotion)
        outs = self._store_outs(spec)
        if self.ctx.options.store:
            for path, digest in decision.components["code"].items():
                # for explain diffs
                self.ctx.cache.store_file(os.path.join(self.ctx.root, path), digest)
        changed = self._changed_inputs(spec, decision, upstream)
        if changed:
            return CommitResult(
                outs,
                recorded=False,
                warnings=(
                    *warnings,
                    f"{spec.name}: input(s) changed while it ran "
                    f"({', '.join(sorted(changed))}); not recorded; the next build runs it again",
                ),
            )
        mid = self.manifests.write_manifest(
            spec.name,
            decision,
            ManifestStatus.BUILT.value,
            outs,
            started,
            log=self.ctx.log_path(spec.name),
            quality=quality,
            executor=ran_on,
            undeclared=undeclared,
        )
        if self.ctx.options.store:
            self.ctx.cache.put_run(
                decision.key, spec.name, list(outs), mid, undeclared, ran_for=time.time() - started
            )
        self.ctx.lock.record(
            spec.name,
            LockEntry(
                decision.key, decision.components, outs, quality.metrics, dict(undeclared or {})
            ),
        )
        return CommitResult(outs, recorded=True, warnings=tuple(warnings))

    def _store_outs(self, spec: TargetSpec) -> tuple[OutRecord, ...]:
        """Hash the outs (xxh3 + sha256, one read) and store their objects (unless
        --no-cache): files, then tree objects."""
        records: list[OutRecord] = []
        for rel in spec.outs:
            self.ctx.ensure_inside(spec, rel)
            full = os.path.join(self.ctx.root, rel)
            if os.path.isdir(full):
                entries, digest = self.ctx.memo.tree(rel, want_sha256=True, confine=True)
                if self.ctx.options.store:
                    self.ctx.cache.store_tree(full, entries)
                    if LinkType.HARDLINK in self.ctx.cache.link:
                        self.ctx.memo.restat(rel)
                rec = OutRecord(rel, OutType.DIR.value, digest.xxh, digest.sha256, digest.size)
                records.append(rec)
            else:
                fd = self.ctx.memo.file_digest(rel, want_sha256=True)
                if self.ctx.options.store:
                    self.ctx.cache.store_file(full, fd.xxh, share=True)
                    if LinkType.HARDLINK in self.ctx.cache.link:
                        self.ctx.memo.restat(rel)
                executable = bool(os.stat(full).st_mode & 0o100)
                rec = OutRecord(rel, OutType.FILE.value, fd.xxh, fd.sha256, fd.size, executable)
                records.append(rec)
        return tuple(records)

    def _changed_inputs(
        self, spec: TargetSpec, decision: Decision, upstream: Mapping[str, tuple[OutRecord, ...]]
    ) -> list[str]:
        """Every input is re-hashed from the workspace, target deps included: one that
        changed while the command ran poisons the result."""
        after = {
            "deps": self.keys.dep_digests(spec, upstream, rehash=True),
            "code": {p: self.ctx.memo.file_digest(p).xxh for p in decision.components["code"]},
        }
        return [
            p
            for part in ("deps", "code")
            for p, d in decision.components[part].items()
            if after[part].get(p) != d
        ]

    def undeclared_reads(
        self, spec: TargetSpec, decision: Decision, read: Iterable[str], written: Iterable[str]
    ) -> dict[str, str]:
        """The workspace files the job's Python read that its key does not cover (not a
        dep, code dep, params file or its own out), with their digests now."""
        declared = [
            *decision.components["deps"],
            *decision.components["code"],
            *spec.dep_paths,
            *self.ctx.pipeline.param_files,
            *spec.outs,
        ]
        found = reads.undeclared(read, written, declared, self.ctx.root)
        return {path: self.keys.rehash(path) for path in found}
