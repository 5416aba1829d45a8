"""Deciding: is a target FRESH, can it be RESTOREd, or must it RUN, and why.

One method, `Decider.decide`, answers "must this run?", and it always returns reasons
(`explain` prints them). `plan` (status, -n, explain) also uses `decide_behind` for a
target below one that would run, and `built_from_others` for one whose upstream would
be restored over other outs. The scheduler sees this through the `Decide` protocol.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

from ..config import TargetSpec
from ..digest import LinkOutside, build_key
from ..errors import MlbuildError
from ..kinds import OutType
from ..results import Action, Decision, Reason, ReasonKind
from ..store import LockEntry, OutRecord, RecordError, RunEntry
from .context import Context
from .keys import Keys, diff_components

__all__ = ["Decide", "Decider"]

Upstream = Mapping[str, tuple[OutRecord, ...]]


class Decide(Protocol):
    """What the scheduler and `plan` ask of the decision logic (tests use a fake)."""

    def decide(self, spec: TargetSpec, upstream: Upstream, *, force: bool) -> Decision: ...

    def decide_behind(
        self, spec: TargetSpec, upstream: Upstream, stale: Collection[str], *, force: bool
    ) -> Decision: ...

    def built_from_others(self, spec: TargetSpec, restoring: Collection[str]) -> list[Reason]: ...

    def current_outs(self, name: str) -> tuple[OutRecord, ...]:
        """The outs of ``name``'s lock entry (a target just found FRESH)."""
        ...

    def restore_outs(self, spec: TargetSpec, key: str) -> tuple[OutRecord, ...] | None:
        """The outs a restore of ``key`` would bring (local run cache, else the remote)."""
        ...


class Decider:
    """`Decide` over the lock file, the run cache and (with --pull) the remote."""

    def __init__(self, ctx: Context, keys: Keys) -> None:
        self.ctx = ctx
        self.keys = keys
        self._remote_down = False  # the remote failed once: not asked again this build

    def current_outs(self, name: str) -> tuple[OutRecord, ...]:
        return self.ctx.lock.entries[name].outs

    def restore_outs(self, spec: TargetSpec, key: str) -> tuple[OutRecord, ...] | None:
        run = self.local_run(spec, key)
        recs = run.outs if run is not None else self.remote_outs(spec, key)
        return tuple(recs) if recs is not None else None

    def decide(
        self, spec: TargetSpec, upstream: Mapping[str, tuple[OutRecord, ...]], *, force: bool
    ) -> Decision:
        comps = self.keys.components(spec, upstream)
        key = build_key(comps)
        entry = self.ctx.lock.entries.get(spec.name)
        reasons: list[Reason] = []
        self.ctx.memo.forget_walks(spec.outs)  # a restore reuses only this decision's walk
        if force:
            reasons.append(Reason(ReasonKind.FORCED, spec.name))
        elif spec.always:
            reasons.append(Reason(ReasonKind.ALWAYS, spec.name))
        elif entry is not None and entry.key == key:
            reasons = self.check_outs(entry.outs, spec.outs)
            if spec.temp and self.temp_in_cache(spec.name, entry.outs, reasons):
                reasons = []  # removed on purpose; restored when a dependent must run
            reasons = reasons or [
                Reason(ReasonKind.UNDECLARED_READ, path)
                for path in self.changed_reads(entry.undeclared)
            ]
            if not reasons:
                return Decision(spec.name, Action.FRESH, key, (), comps)
        elif entry is None:
            reasons.append(Reason(ReasonKind.NEVER_BUILT, spec.name))
        else:
            reasons = diff_components(entry.components, comps) or [
                Reason(ReasonKind.KEY_SCHEMA, spec.name)
            ]
        if self.ctx.options.restore and not force and not spec.always:
            run = self.local_run(spec, key)
            if run is not None and self.restorable(spec, run):
                return Decision(spec.name, Action.RESTORE, key, tuple(reasons), comps)
            if self.in_remote(spec, key):
                return Decision(spec.name, Action.RESTORE, key, tuple(reasons), comps)
        return Decision(spec.name, Action.RUN, key, tuple(reasons), comps)

    def local_run(self, spec: TargetSpec, key: str) -> RunEntry | None:
        """The local run-cache entry of ``key`` if it passes the strict parser for ``spec``
        (exactly its declared outs); a rejected entry is a note and counts as none."""
        try:
            return self.ctx.cache.read_run(key, spec.outs)
        except RecordError as exc:
            self.ctx.notes.add(f"{spec.name}: {exc.message}; not restoring from it")
            return None

    def restorable(self, spec: TargetSpec, run: RunEntry) -> bool:
        """Whether the local cache holds every object of ``run``'s outs; a tree object that
        fails its check (dropped by the cache) is a note, and the target is not restored."""
        if self.changed_reads(run.undeclared):
            return False  # it read a file its key does not cover, which has changed since
        try:
            return all(self.ctx.cache.has_out(r) for r in run.outs)
        except RecordError as exc:
            self.ctx.notes.add(f"{spec.name}: {exc.message}; dropped it, not restoring from it")
            return False

    def changed_reads(self, recorded: Mapping[str, str] | None) -> list[str]:
        """The files a recorded build read without declaring them (reads.py) whose digest
        is not the one they had then, a file now missing included: the key does not cover
        them, so only this check keeps such a result from being reused stale."""
        return sorted(p for p, d in (recorded or {}).items() if self.keys.rehash(p) != d)

    def remote_outs(self, spec: TargetSpec, key: str) -> list[OutRecord] | None:
        """The outs the remote recorded for ``key`` (planning with --pull), if it has it."""
        if self.ctx.transfer is None or not self.ctx.options.pull or self._remote_down:
            return None
        from ..store.remote import RemoteError

        try:
            entry = self.ctx.transfer.remote_run(key, spec.outs)
        except RemoteError:
            return None
        return None if entry is None else entry.outs

    def in_remote(self, spec: TargetSpec, key: str) -> bool:
        """--pull: does the remote hold a usable build of ``key``? (Only its small run-cache
        entry is read here, through the strict parser; objects come in `restore`, in a
        worker thread.) A remote that cannot be reached is a note, not a failure: the
        target is built instead; an entry the parser refuses is a note for that target."""
        if self.ctx.transfer is None or not self.ctx.options.pull or self._remote_down:
            return False  # after one failure the remote is not asked again this build
        from ..store.remote import RefusedRecord, RemoteError

        try:
            entry = self.ctx.transfer.remote_run(key, spec.outs)
            return entry is not None and not self.changed_reads(entry.undeclared)
        except RefusedRecord as exc:
            self.ctx.notes.add(f"{spec.name}: {exc.message}; building it here")
            return False
        except RemoteError as exc:
            self._remote_down = True
            self.ctx.notes.add(
                f"{exc.message}; not asking the remote again in this build: "
                f"{spec.name} and the rest are built here"
            )
            return False

    def check_outs(self, outs: tuple[OutRecord, ...], declared: Collection[str]) -> list[Reason]:
        """Reasons the workspace's outs no longer match their records (empty: intact). The
        declared outs decide: one the record does not cover counts as missing."""
        recorded = {rec.path for rec in outs}
        reasons = [
            Reason(ReasonKind.OUT_MISSING, rel) for rel in sorted(declared) if rel not in recorded
        ]
        for rec in outs:
            if rec.path not in declared:
                reasons.append(Reason(ReasonKind.OUT_MODIFIED, rec.path))
                continue
            try:
                digest, is_dir = self.ctx.memo.digest(rec.path, out=True)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                reasons.append(Reason(ReasonKind.OUT_MISSING, rec.path))
                continue
            except LinkOutside:  # a link out of the workspace was put in it since
                reasons.append(Reason(ReasonKind.OUT_MODIFIED, rec.path))
                continue
            if digest.xxh != rec.xxh or is_dir != (rec.type == OutType.DIR):
                reasons.append(Reason(ReasonKind.OUT_MODIFIED, rec.path))
        return reasons

    def temp_in_cache(
        self, name: str, outs: tuple[OutRecord, ...], reasons: Collection[Reason]
    ) -> bool:
        """Whether ``reasons`` are only outs of a `temp` target that are gone and that the
        cache can bring back: then the target is "temp (in cache)", not stale. An out
        modified, or one the cache lost, keeps it stale (never call gone what cannot come
        back)."""
        by_path = {rec.path: rec for rec in outs}
        for reason in reasons:
            rec = by_path.get(reason.subject)
            if reason.kind is not ReasonKind.OUT_MISSING or rec is None:
                return False
            try:
                if not self.ctx.cache.has_out(rec):
                    return False
            except RecordError as exc:
                self.ctx.notes.add(f"{name}: {exc.message}; its temp outs are stale")
                return False
        return True

    def decide_behind(
        self,
        spec: TargetSpec,
        upstream: Mapping[str, tuple[OutRecord, ...]],
        stale: Collection[str],
        *,
        force: bool,
    ) -> Decision:
        """The decision for a target whose ``stale`` upstream would run first (`plan`).

        Its key cannot be known (keys use the upstream's actual outs), so it RUNs, never
        FRESH. Its reasons are every cause: its own (param, code, command, env, packages,
        its outs…: its components with each stale upstream's *recorded* outs standing in
        for the ones it will write, diffed against its lock entry; a dep that is an out of
        a stale upstream is left to that upstream), then each stale upstream."""
        entry = self.ctx.lock.entries.get(spec.name)
        reasons: list[Reason] = []
        if entry is None:
            reasons.append(Reason(ReasonKind.NEVER_BUILT, spec.name))
        if force:
            reasons.append(Reason(ReasonKind.FORCED, spec.name))
        elif spec.always:
            reasons.append(Reason(ReasonKind.ALWAYS, spec.name))
        if entry is not None:
            reasons += self._own_reasons(spec, entry, upstream, stale)
        reasons += [Reason(ReasonKind.UPSTREAM, name) for name in sorted(stale)]
        return Decision(spec.name, Action.RUN, None, tuple(reasons))

    def _own_reasons(
        self,
        spec: TargetSpec,
        entry: LockEntry,
        upstream: Mapping[str, tuple[OutRecord, ...]],
        stale: Collection[str],
    ) -> list[Reason]:
        stand_in = dict(upstream)
        theirs: set[str] = set()  # paths a stale upstream will write
        for name in stale:
            recorded = self.ctx.lock.entries.get(name)
            stand_in[name] = recorded.outs if recorded is not None else ()
            theirs.update(self.ctx.pipeline.targets[name].outs)
            theirs.update(rec.path for rec in stand_in[name])
        try:
            comps = self.keys.components(spec, stand_in)
        except MlbuildError:
            return []  # e.g. a file changing as it is hashed: the build names it
        own = [
            r
            for r in diff_components(entry.components, comps)
            if not (r.kind is ReasonKind.DEP and r.subject in theirs)
        ]
        if own:
            return own
        # Nothing of its own changed: as `decide` does then, its outs and reads are looked at.
        broken = self.check_outs(entry.outs, spec.outs)
        if spec.temp and self.temp_in_cache(spec.name, entry.outs, broken):
            broken = []  # gone on purpose (temp), and the cache holds them
        if broken:
            return broken
        return [Reason(ReasonKind.UNDECLARED_READ, p) for p in self.changed_reads(entry.undeclared)]

    def built_from_others(self, spec: TargetSpec, restoring: Collection[str]) -> list[Reason]:
        """For a target otherwise FRESH (`plan`): each upstream in ``restoring`` (to be
        restored by the build) whose outs in the workspace now are not the ones the target
        recorded as its deps, e.g. after `rollback` of that upstream. The restore may bring
        them back, but until then the target's outs were not made from what the workspace
        holds, so it is not called fresh."""
        entry = self.ctx.lock.entries.get(spec.name)
        if entry is None:
            return []
        recorded: Mapping[str, str] = entry.components.get("deps") or {}
        reasons: list[Reason] = []
        for name in sorted(restoring):
            outs = sorted(self.ctx.pipeline.targets[name].outs)
            moved = [p for p in outs if p in recorded and self.keys.rehash(p) != recorded[p]]
            if moved:
                detail = f"{spec.name} was built from another {', '.join(moved)}"
                reasons.append(Reason(ReasonKind.UPSTREAM, name, detail=detail))
        return reasons
