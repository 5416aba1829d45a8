"""Putting outs in the workspace: restore a cached build, roll back to an earlier one,
promote a candidate's outs; and moving outs out of the way (``aside/`` before a run or
restore, ``failed/`` after a failure). Nothing a user wrote is ever deleted outright."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Collection
from typing import Any

from ..config import TargetSpec, check_inside
from ..digest import FileDigest
from ..errors import BuildFailed, UsageError
from ..kinds import ManifestStatus, OutType
from ..metrics import pick_winner
from ..provenance.records import Manifest
from ..results import Action, Decision
from ..store import Cache, LockEntry, OutRecord, RecordError
from ..store.cache import remove_tree
from ..store.records import check_declared
from .context import Context
from .decide import Decider
from .manifests import Manifests
from .partial import set_aside, sync_dir

__all__ = ["Materializer"]


class Materializer:
    """Restore, rollback, promote and the aside/failed moves of one build."""

    def __init__(self, ctx: Context, decider: Decider, manifests: Manifests) -> None:
        self.ctx = ctx
        self.decider = decider
        self.manifests = manifests
        self._aside_begun: set[str] = set()  # targets whose aside/ this build emptied

    def restore(
        self, spec: TargetSpec, decision: Decision, started: float
    ) -> tuple[OutRecord, ...]:
        """Copy a cached build's outs into the workspace and record it as the current one."""
        assert decision.key is not None
        run = self.decider.local_run(spec, decision.key)
        if (run is None or not self.decider.restorable(spec, run)) and (
            self.ctx.transfer is not None and self.ctx.options.pull
        ):
            run = self.ctx.transfer.pull(decision.key, spec.outs)  # verified, or RemoteError
        if run is None:
            raise BuildFailed(f"run-cache entry for {spec.name!r} vanished during the build")
        changed = self.decider.changed_reads(run.undeclared)
        if changed:
            raise BuildFailed(
                f"its cached build read {', '.join(changed)} without declaring it, "
                "and that has changed since"
            )
        outs = self.materialize(spec, run.outs)
        quality = self.manifests.recorded_quality(spec, run.manifest)
        self.manifests.write_manifest(
            spec.name,
            decision,
            ManifestStatus.RESTORED.value,
            outs,
            started,
            restored_from=run.manifest,
            quality=quality,
        )
        self.ctx.lock.record(
            spec.name,
            LockEntry(decision.key, decision.components, outs, quality.metrics, run.undeclared),
        )
        return outs

    def materialize(self, spec: TargetSpec, recs: list[OutRecord]) -> tuple[OutRecord, ...]:
        """Put cached outs in the workspace (the current copies moved aside first). Only
        the declared outs are ever written, whatever a record lists."""
        check_declared(recs, spec.outs, f"the cached build of {spec.name}")
        aside = self._aside_dir(spec)  # a hand-edited out is kept, never overwritten
        for rec in recs:
            self.ctx.ensure_inside(spec, rec.path)
            if rec.type == OutType.DIR and sync_dir(
                self.ctx.cache,
                self.ctx.memo,
                self.ctx.root,
                rec.path,
                rec.xxh,
                os.path.join(aside, rec.path),
            ):
                continue  # only the entries that differed were set aside and restored
            full = os.path.join(self.ctx.root, rec.path)
            set_aside(full, os.path.join(aside, rec.path))
            if rec.type == OutType.DIR:
                self._restore_dir(rec, full)
                continue
            self.ctx.cache.restore_out(rec, full, at=rec.path)
            if rec.type == OutType.FILE:
                self.ctx.memo.remember(rec.path, FileDigest(rec.size, rec.xxh, rec.sha256))
        return tuple(recs)

    def _restore_dir(self, rec: OutRecord, full: str) -> None:
        """Restore a directory out whole, its verification read done by the memo, which
        keeps it as the out's tree record: the next no-op walks the 100,000 restored files
        and compares stats instead of reading them all again."""
        memo = self.ctx.memo
        try:
            self.ctx.cache.restore_out(
                rec, full, at=rec.path, hash_dir=lambda tmp: memo.hash_restored(rec.path, tmp)
            )
        except BaseException:
            memo.drop_record(rec.path)
            raise

    def rollback(self, spec: TargetSpec, mid: str, doc: Manifest) -> str | None:
        """Make the build recorded in manifest ``mid`` current again, from the cache alone.

        Writes a ``rollback`` manifest pointing to ``mid``; the lock entry follows. Nothing
        runs; if the cache no longer holds every object, nothing changes (clear error).
        Returns the new manifest's id, or None when ``mid``'s build is the current one
        already (same key, same outs, intact in the workspace): then nothing is written."""
        started = time.time()
        recs = self.ctx.cache.get_run(doc["key"], spec.outs) or [
            OutRecord.from_json(
                {
                    k: o.get(v)
                    for k, v in (
                        ("path", "path"),
                        ("type", "type"),
                        ("xxh", "xxh3"),
                        ("sha256", "sha256"),
                        ("size", "size"),
                    )
                },
                f"manifest {mid}: outs[{i}]",
            )
            for i, o in enumerate(doc.get("outs", []))
        ]
        if self.is_current(spec, doc["key"], recs):
            return None
        missing = [r.path for r in recs if not _has_out(self.ctx.cache, r)]
        if missing:
            raise UsageError(
                f"cannot roll {spec.name} back to {mid}: the cache no longer holds "
                f"{', '.join(missing)} (collected, or built with --no-cache)",
                hint="rebuild that version instead (check out its sources and params)",
            )
        outs = self.materialize(spec, recs)
        components = dict(doc["components"])  # the lock entry's shape: a plain mapping
        decision = Decision(spec.name, Action.RESTORE, doc["key"], (), components)
        quality = self.manifests.recorded_quality(spec, mid)
        new = self.manifests.write_manifest(
            spec.name,
            decision,
            ManifestStatus.ROLLBACK.value,
            outs,
            started,
            restored_from=mid,
            quality=quality,
        )
        self.ctx.lock.record(spec.name, LockEntry(doc["key"], components, outs, quality.metrics))
        return new

    def is_current(self, spec: TargetSpec, key: str, recs: Collection[OutRecord]) -> bool:
        """Whether the build of ``key`` with outs ``recs`` is the target's current one:
        its lock entry has that key and those outs, and the workspace holds them intact."""
        self.ctx.memo.forget_walks(spec.outs)  # a restore reuses only this check's walk
        entry = self.ctx.lock.entries.get(spec.name)
        if entry is None or entry.key != key:
            return False
        ours = sorted((r.path, r.type, r.xxh) for r in entry.outs)
        if ours != sorted((r.path, r.type, r.xxh) for r in recs):
            return False
        return not self.decider.check_outs(entry.outs, spec.outs)

    def prepare(self, spec: TargetSpec) -> None:
        """Before a run: move existing outs aside and create their parent dirs."""
        self.move_aside(spec)
        for rel in spec.outs:
            os.makedirs(
                os.path.dirname(os.path.join(self.ctx.root, rel)) or self.ctx.root, exist_ok=True
            )

    def move_aside(self, spec: TargetSpec) -> None:
        """Move the workspace copies of ``spec``'s outs to .mlbuild/aside/<target>/ (the
        previous build's aside copy is dropped): nothing a user wrote is ever deleted
        outright. An out that leads outside the workspace is an error here (write-time
        check)."""
        self._move_outs(spec, self._aside_dir(spec), strict=True)

    def keep_failed(self, spec: TargetSpec) -> None:
        """Move a failed run's partial outs to .mlbuild/failed/<target>/ for debugging; an
        out behind a symlink leading out of the workspace is left alone, never reached."""
        failed = self.ctx.layout.failed(spec.name)
        with contextlib.suppress(OSError):
            remove_tree(failed)
        self._move_outs(spec, failed, strict=False)

    def _aside_dir(self, spec: TargetSpec) -> str:
        """``spec``'s aside directory, emptied the first time this build sets something
        aside for it, not again: a restore that fails halfway (a corrupt object) and the
        run that follows share one generation, so the run's move aside cannot drop what
        the restore kept there."""
        aside = self.ctx.layout.aside(spec.name)
        if spec.name not in self._aside_begun:
            self._aside_begun.add(spec.name)
            with contextlib.suppress(OSError):
                remove_tree(aside)
        return aside

    def _move_outs(self, spec: TargetSpec, dest_root: str, *, strict: bool) -> None:
        for rel in spec.outs:
            if strict:
                self.ctx.ensure_inside(spec, rel)
            elif os.path.dirname(rel) and not check_inside(self.ctx.root, os.path.dirname(rel)):
                continue
            set_aside(os.path.join(self.ctx.root, rel), os.path.join(dest_root, rel))

    def promote(self, spec: TargetSpec) -> dict[str, Any]:
        """Copy the best candidate's outs (from the cache, else from the workspace) to
        ``spec``'s outs; returns the promotion record (with the winner's metrics)."""
        assert spec.promote is not None
        scores = {
            c: (e.metrics if (e := self.ctx.lock.entries.get(c)) else None) or {}
            for c in spec.promote.candidates
        }
        winner, table = pick_winner(spec.name, spec.promote, scores)
        entry = self.ctx.lock.entries[winner]
        cand = self.ctx.pipeline.targets[winner]
        mine = [o for o in spec.outs if o not in spec.metrics]
        theirs = [r for r in entry.outs if r.path not in cand.metrics]
        pairs = list(zip(theirs, mine, strict=True))
        if spec.metrics:
            by_path = {r.path: r for r in entry.outs}
            pairs += list(zip([by_path[m] for m in cand.metrics], spec.metrics, strict=True))
        for rec, dest in pairs:
            self.ctx.ensure_inside(spec, dest)
            full = os.path.join(self.ctx.root, dest)
            if _has_out(self.ctx.cache, rec):
                self.ctx.cache.restore_out(rec, full, at=dest)
            elif rec.type == OutType.DIR:
                shutil.copytree(os.path.join(self.ctx.root, rec.path), full, symlinks=True)
            else:
                shutil.copy2(os.path.join(self.ctx.root, rec.path), full)
        # The first job of a fresh clone may be this promotion (`mlbuild -B model:prod`).
        os.makedirs(os.path.dirname(self.ctx.log_path(spec.name)), exist_ok=True)
        with open(self.ctx.log_path(spec.name), "w", encoding="utf-8") as log:
            json.dump({"winner": winner, "scores": table}, log, sort_keys=True)
            log.write("\n")
        return {
            **spec.promote.to_json(),
            "winner": winner,
            "scores": table,
            "metrics": dict(scores[winner]),
        }


def _has_out(cache: Cache, rec: OutRecord) -> bool:
    """`Cache.has_out`, with a corrupt tree counting as absent (promote and rollback then
    fall back or say what is missing)."""
    try:
        return cache.has_out(rec)
    except RecordError:
        return False
