"""The rebuilder: decide whether a target is FRESH, can be RESTOREd, or must RUN; restore
it; and commit a finished run.

One function, `Rebuilder.decide`, answers "must this run?", and it always returns reasons
(`explain` prints them). Build keys use the *actual* out digests of the immediate deps
(constructive traces with early cutoff): if an upstream reruns and writes identical bytes,
nothing downstream changes.

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

import contextlib
import dataclasses
import difflib
import json
import os
import shutil
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import reads
from .codedeps import CodeScanner, entry_points
from .config import DepKind, Pipeline, TargetSpec, check_inside, is_tabular
from .digest import FileDigest, LinkOutside, build_key, hash_file, hash_tree, same_value
from .errors import BuildFailed, CheckFailed, MlbuildError, UsageError
from .manifest import Identity, ManifestError, ManifestStore, Quality, build_manifest, environment
from .metrics import evaluate_gates, pick_winner, read_metrics
from .model import Action, Decision, Reason, ReasonKind
from .options import BuildOptions
from .store import Cache, LockEntry, LockFile, OutRecord, RecordError, RunEntry, StateMemo
from .store.cache import remove_tree
from .store.layout import target_file_name
from .store.records import check_declared

if TYPE_CHECKING:
    from .signing import SigningKey
    from .transfer import Transfer

__all__ = ["CommitResult", "Rebuilder", "safe_name"]


def safe_name(target: str) -> str:
    """A file name for per-target state (logs, aside and failed outs): names are data,
    never paths (store/layout.py: ``model:prod`` → ``model__prod``, ``..`` → ``%%2E%2E``)."""
    return target_file_name(target)


@dataclass(frozen=True)
class CommitResult:
    outs: tuple[OutRecord, ...]
    recorded: bool
    warnings: tuple[str, ...] = ()


class Rebuilder:
    def __init__(
        self,
        pipeline: Pipeline,
        memo: StateMemo,
        cache: Cache,
        lock: LockFile,
        options: BuildOptions,
        state_dir: str,
    ) -> None:
        self.pipeline = pipeline
        self.root = pipeline.root
        self.memo = memo
        self.cache = cache
        self.lock = lock
        self.options = options
        self.state_dir = state_dir
        self.scanner = CodeScanner(self.root, memo)
        self._packages: dict[str, str] = {}
        self.manifests = ManifestStore(os.path.join(state_dir, "manifests"))
        self._identity: Identity | None = None
        self.signer: SigningKey | None = None  # set by the workspace when a key is configured
        self.transfer: Transfer | None = None  # set by the workspace for --pull
        self.notes: list[str] = []  # refused records, failed remote lookups
        self._remote_down = False  # the remote failed once: not asked again this build

    # ----------------------------------------------------------------- key components
    def package_version(self, name: str) -> str:
        if name not in self._packages:
            from importlib import metadata

            try:
                self._packages[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                self._packages[name] = "not installed"
        return self._packages[name]

    def code_files(self, spec: TargetSpec) -> list[str]:
        entries = entry_points(spec.cmd, spec.python)
        entries += [
            ("module", c.options["python"].split(":", 1)[0])
            for c in spec.checks
            if c.check == "python"
        ]
        return self.scanner.files_for(entries)

    def dep_digests(
        self,
        spec: TargetSpec,
        upstream: Mapping[str, tuple[OutRecord, ...]],
        *,
        rehash: bool = False,
    ) -> dict[str, str]:
        """The digest of every dep. Target deps come from the upstream's records when
        deciding; with ``rehash`` (at commit) every dep is read again from the workspace,
        whatever produced it, so an out edited while its consumer ran is caught."""
        deps: dict[str, str] = {}
        for dep in spec.deps:
            if dep.kind is DepKind.TARGET:
                for rec in upstream[dep.value]:
                    deps[rec.path] = self._rehash(rec.path) if rehash else rec.xxh
                continue
            for path in dep.paths if dep.kind is DepKind.GLOB else (dep.value,):
                try:
                    deps[path] = self.memo.digest(path)[0].xxh
                except FileNotFoundError:
                    raise MlbuildError(
                        f"dep {path!r} of {spec.name!r} is missing",
                        hint="restore the file or remove it from deps",
                    ) from None
        return deps

    def _rehash(self, rel: str) -> str:
        """The current digest of a workspace path ("missing" when it is gone)."""
        try:
            return self.memo.digest(rel, out=True)[0].xxh
        except (FileNotFoundError, NotADirectoryError):
            return "missing"

    def components(
        self, spec: TargetSpec, upstream: Mapping[str, tuple[OutRecord, ...]]
    ) -> dict[str, Any]:
        """Everything that determines the target's outputs (SPEC §1), as plain data."""
        comps: dict[str, Any] = {
            "cmd": list(spec.cmd) if spec.cmd is not None else None,
            "python": spec.python,
            "code": {path: self.memo.file_digest(path).xxh for path in self.code_files(spec)},
            "deps": self.dep_digests(spec, upstream),
            "params": dict(spec.params),
            # A secret joins the key by name only: its value is never written anywhere.
            "env": {**spec.env, **{name: {"secret": True} for name in spec.secrets}},
            "packages": {name: self.package_version(name) for name in spec.packages},
            "matrix": dict(spec.matrix),
            "outs": sorted(spec.outs),
        }
        # Validation joins the key only where declared, so plain targets keep their keys.
        if spec.checks:
            comps["checks"] = [c.to_json() for c in spec.checks]
        if spec.gates:
            comps["gate"] = [g.to_json() for g in spec.gates]
        if spec.promote is not None:
            comps["promote"] = spec.promote.to_json()
        return comps

    # ----------------------------------------------------------------- decide
    def decide(
        self, spec: TargetSpec, upstream: Mapping[str, tuple[OutRecord, ...]], *, force: bool
    ) -> Decision:
        comps = self.components(spec, upstream)
        key = build_key(comps)
        entry = self.lock.entries.get(spec.name)
        reasons: list[Reason] = []
        if force:
            reasons.append(Reason(ReasonKind.FORCED, spec.name))
        elif spec.always:
            reasons.append(Reason(ReasonKind.ALWAYS, spec.name))
        elif entry is not None and entry.key == key:
            reasons = self.check_outs(entry.outs, spec.outs) or [
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
        if self.options.restore and not force and not spec.always:
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
            return self.cache.read_run(key, spec.outs)
        except RecordError as exc:
            self._note(f"{spec.name}: {exc.message}; not restoring from it")
            return None

    def restorable(self, spec: TargetSpec, run: RunEntry) -> bool:
        """Whether the local cache holds every object of ``run``'s outs; a tree object that
        fails its check (dropped by the cache) is a note, and the target is not restored."""
        if self.changed_reads(run.undeclared):
            return False  # it read a file its key does not cover, which has changed since
        try:
            return all(self.cache.has_out(r) for r in run.outs)
        except RecordError as exc:
            self._note(f"{spec.name}: {exc.message}; dropped it, not restoring from it")
            return False

    def changed_reads(self, recorded: Mapping[str, str] | None) -> list[str]:
        """The files a recorded build read without declaring them (reads.py) whose digest
        is not the one they had then, a file now missing included: the key does not cover
        them, so only this check keeps such a result from being reused stale."""
        return sorted(p for p, d in (recorded or {}).items() if self._rehash(p) != d)

    def undeclared_reads(
        self, spec: TargetSpec, decision: Decision, read: Iterable[str], written: Iterable[str]
    ) -> dict[str, str]:
        """The workspace files the job's Python read that its key does not cover (not a
        dep, code dep, params file or its own out), with their digests now."""
        declared = [
            *decision.components["deps"],
            *decision.components["code"],
            *spec.dep_paths,
            *self.pipeline.param_files,
            *spec.outs,
        ]
        found = reads.undeclared(read, written, declared, self.root)
        return {path: self._rehash(path) for path in found}

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def remote_outs(self, spec: TargetSpec, key: str) -> list[OutRecord] | None:
        """The outs the remote recorded for ``key`` (planning with --pull), if it has it."""
        if self.transfer is None or not self.options.pull or self._remote_down:
            return None
        from .store.remote import RemoteError

        try:
            entry = self.transfer.remote_run(key, spec.outs)
        except RemoteError:
            return None
        return None if entry is None else entry.outs

    def in_remote(self, spec: TargetSpec, key: str) -> bool:
        """--pull: does the remote hold a usable build of ``key``? (Only its small run-cache
        entry is read here, through the strict parser; objects come in `restore`, in a
        worker thread.) A remote that cannot be reached is a note, not a failure: the
        target is built instead; an entry the parser refuses is a note for that target."""
        if self.transfer is None or not self.options.pull or self._remote_down:
            return False  # after one failure the remote is not asked again this build
        from .store.remote import RefusedRecord, RemoteError

        try:
            entry = self.transfer.remote_run(key, spec.outs)
            return entry is not None and not self.changed_reads(entry.undeclared)
        except RefusedRecord as exc:
            self._note(f"{spec.name}: {exc.message}; building it here")
            return False
        except RemoteError as exc:
            self._remote_down = True
            self._note(
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
                digest, is_dir = self.memo.digest(rec.path, out=True)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                reasons.append(Reason(ReasonKind.OUT_MISSING, rec.path))
                continue
            except LinkOutside:  # a link out of the workspace was put in it since
                reasons.append(Reason(ReasonKind.OUT_MODIFIED, rec.path))
                continue
            if digest.xxh != rec.xxh or is_dir != (rec.type == "dir"):
                reasons.append(Reason(ReasonKind.OUT_MODIFIED, rec.path))
        return reasons

    # ----------------------------------------------------------------- planning
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
        entry = self.lock.entries.get(spec.name)
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
            recorded = self.lock.entries.get(name)
            stand_in[name] = recorded.outs if recorded is not None else ()
            theirs.update(self.pipeline.targets[name].outs)
            theirs.update(rec.path for rec in stand_in[name])
        try:
            comps = self.components(spec, stand_in)
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
        if broken:
            return broken
        return [Reason(ReasonKind.UNDECLARED_READ, p) for p in self.changed_reads(entry.undeclared)]

    def built_from_others(self, spec: TargetSpec, restoring: Collection[str]) -> list[Reason]:
        """For a target otherwise FRESH (`plan`): each upstream in ``restoring`` (to be
        restored by the build) whose outs in the workspace now are not the ones the target
        recorded as its deps, e.g. after `rollback` of that upstream. The restore may bring
        them back, but until then the target's outs were not made from what the workspace
        holds, so it is not called fresh."""
        entry = self.lock.entries.get(spec.name)
        if entry is None:
            return []
        recorded: Mapping[str, str] = entry.components.get("deps") or {}
        reasons: list[Reason] = []
        for name in sorted(restoring):
            outs = sorted(self.pipeline.targets[name].outs)
            moved = [p for p in outs if p in recorded and self._rehash(p) != recorded[p]]
            if moved:
                detail = f"{spec.name} was built from another {', '.join(moved)}"
                reasons.append(Reason(ReasonKind.UPSTREAM, name, detail=detail))
        return reasons

    # ----------------------------------------------------------------- restore
    def restore(
        self, spec: TargetSpec, decision: Decision, started: float
    ) -> tuple[OutRecord, ...]:
        """Copy a cached build's outs into the workspace and record it as the current one."""
        assert decision.key is not None
        run = self.local_run(spec, decision.key)
        if (run is None or not self.restorable(spec, run)) and (
            self.transfer is not None and self.options.pull
        ):
            run = self.transfer.pull(decision.key, spec.outs)  # verified, or RemoteError
        if run is None:
            raise BuildFailed(f"run-cache entry for {spec.name!r} vanished during the build")
        changed = self.changed_reads(run.undeclared)
        if changed:
            raise BuildFailed(
                f"its cached build read {', '.join(changed)} without declaring it, "
                "and that has changed since"
            )
        outs = self.materialize(spec, run.outs)
        quality = self.recorded_quality(spec, run.manifest)
        self.write_manifest(
            spec.name,
            decision,
            "restored",
            outs,
            started,
            restored_from=run.manifest,
            quality=quality,
        )
        self.lock.record(
            spec.name,
            LockEntry(decision.key, decision.components, outs, quality.metrics, run.undeclared),
        )
        return outs

    def recorded_quality(self, spec: TargetSpec, mid: str | None) -> Quality:
        """The quality of an earlier build, carried over by a restore or rollback. Metrics
        are read again from the restored files (byte for byte the same), so they survive a
        lost manifest."""
        doc = self._usable_manifest(spec.name, mid)
        quality = Quality.of(doc) if doc is not None else Quality()
        if spec.metrics:
            metrics, _ = read_metrics(self.root, spec.metrics)
            quality = dataclasses.replace(quality, metrics=metrics)
        return quality

    def materialize(self, spec: TargetSpec, recs: list[OutRecord]) -> tuple[OutRecord, ...]:
        """Put cached outs in the workspace (the current copies moved aside first). Only
        the declared outs are ever written, whatever a record lists."""
        check_declared(recs, spec.outs, f"the cached build of {spec.name}")
        self.move_aside(spec)  # a hand-edited out is kept, never overwritten
        for rec in recs:
            self.ensure_inside(spec, rec.path)
            self.cache.restore_out(rec, os.path.join(self.root, rec.path), at=rec.path)
            if rec.type == "file":
                self.memo.remember(rec.path, FileDigest(rec.size, rec.xxh, rec.sha256))
        return tuple(recs)

    def rollback(self, spec: TargetSpec, mid: str, doc: dict[str, Any]) -> str | None:
        """Make the build recorded in manifest ``mid`` current again, from the cache alone.

        Writes a ``rollback`` manifest pointing to ``mid``; the lock entry follows. Nothing
        runs; if the cache no longer holds every object, nothing changes (clear error).
        Returns the new manifest's id, or None when ``mid``'s build is the current one
        already (same key, same outs, intact in the workspace): then nothing is written."""
        started = time.time()
        recs = self.cache.get_run(doc["key"], spec.outs) or [
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
        missing = [r.path for r in recs if not _has_out(self.cache, r)]
        if missing:
            raise UsageError(
                f"cannot roll {spec.name} back to {mid}: the cache no longer holds "
                f"{', '.join(missing)} (collected, or built with --no-cache)",
                hint="rebuild that version instead (check out its sources and params)",
            )
        outs = self.materialize(spec, recs)
        decision = Decision(spec.name, Action.RESTORE, doc["key"], (), doc["components"])
        quality = self.recorded_quality(spec, mid)
        new = self.write_manifest(
            spec.name, decision, "rollback", outs, started, restored_from=mid, quality=quality
        )
        self.lock.record(spec.name, LockEntry(doc["key"], doc["components"], outs, quality.metrics))
        return new

    def is_current(self, spec: TargetSpec, key: str, recs: Collection[OutRecord]) -> bool:
        """Whether the build of ``key`` with outs ``recs`` is the target's current one:
        its lock entry has that key and those outs, and the workspace holds them intact."""
        entry = self.lock.entries.get(spec.name)
        if entry is None or entry.key != key:
            return False
        ours = sorted((r.path, r.type, r.xxh) for r in entry.outs)
        if ours != sorted((r.path, r.type, r.xxh) for r in recs):
            return False
        return not self.check_outs(entry.outs, spec.outs)

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
            ignore = (self.lock.path_in(self.root), *self.pipeline.out_owner)
            self._identity = environment(self.root, ignore)
        deps: list[dict[str, Any]] = []
        for path, digest in sorted(decision.components["deps"].items()):
            link: dict[str, Any] = {"path": path, "xxh3": digest}
            producer = self.pipeline.owner_of(path)
            if producer is not None:
                link["target"] = producer
                link["manifest"] = self.manifests.current(producer)
            deps.append(link)
        log_digest = None
        if log is not None and os.path.exists(log):
            log_digest = hash_file(log, want_sha256=True).sha256
        env = dict(decision.components["env"])
        for name, source in self.pipeline.targets[target].secrets.items():
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
        )
        return self.manifests.put(manifest, self.signer)

    def ensure_inside(self, spec: TargetSpec, rel: str) -> None:
        """Outs are checked again at write time: a symlink made since load must not lead out."""
        parent = os.path.dirname(rel)
        if parent and not check_inside(self.root, parent):
            raise BuildFailed(f"out {rel!r} of {spec.name!r} leads outside the workspace (symlink)")
        full = os.path.join(self.root, rel)
        if os.path.islink(full) and not check_inside(self.root, rel):
            raise BuildFailed(f"out {rel!r} of {spec.name!r} is a symlink out of the workspace")

    # ----------------------------------------------------------------- run support
    def log_path(self, name: str) -> str:
        return os.path.join(self.state_dir, "logs", safe_name(name) + ".log")

    def prepare(self, spec: TargetSpec) -> None:
        """Before a run: move existing outs aside and create their parent dirs."""
        self.move_aside(spec)
        for rel in spec.outs:
            os.makedirs(os.path.dirname(os.path.join(self.root, rel)) or self.root, exist_ok=True)

    def move_aside(self, spec: TargetSpec) -> None:
        """Move the workspace copies of ``spec``'s outs to .mlbuild/aside/<target>/ (the
        previous aside copy is dropped): nothing a user wrote is ever deleted outright.
        An out that leads outside the workspace is an error here (write-time check)."""
        self._move_outs(spec, "aside", strict=True)

    def keep_failed(self, spec: TargetSpec) -> None:
        """Move a failed run's partial outs to .mlbuild/failed/<target>/ for debugging; an
        out behind a symlink leading out of the workspace is left alone, never reached."""
        self._move_outs(spec, "failed", strict=False)

    def _move_outs(self, spec: TargetSpec, into: str, *, strict: bool) -> None:
        dest_root = os.path.join(self.state_dir, into, safe_name(spec.name))
        with contextlib.suppress(OSError):
            remove_tree(dest_root)
        for rel in spec.outs:
            if strict:
                self.ensure_inside(spec, rel)
            elif os.path.dirname(rel) and not check_inside(self.root, os.path.dirname(rel)):
                continue
            full = os.path.join(self.root, rel)
            if os.path.lexists(full):
                dest = os.path.join(dest_root, rel)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                os.replace(full, dest)

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
        missing = [rel for rel in spec.outs if not os.path.lexists(os.path.join(self.root, rel))]
        if missing:
            raise BuildFailed(f"the command did not write declared out(s): {', '.join(missing)}")
        quality, warnings = self.assess(spec, promotion)
        records: list[OutRecord] = []
        for rel in spec.outs:
            self.ensure_inside(spec, rel)
            full = os.path.join(self.root, rel)
            if os.path.isdir(full):
                entries = self.memo.tree_entries(rel, want_sha256=True, confine=True)
                digest = hash_tree(entries)
                if self.options.store:
                    self.cache.store_tree(full, entries)
                records.append(OutRecord(rel, "dir", digest.xxh, digest.sha256, digest.size))
            else:
                fd = self.memo.file_digest(rel, want_sha256=True)
                if self.options.store:
                    self.cache.store_file(full, fd.xxh)
                executable = bool(os.stat(full).st_mode & 0o100)
                records.append(OutRecord(rel, "file", fd.xxh, fd.sha256, fd.size, executable))
        outs = tuple(records)
        if self.options.store:
            for path, digest in decision.components["code"].items():
                self.cache.store_file(os.path.join(self.root, path), digest)  # for explain diffs
        # Every input is re-hashed from the workspace, target deps included: one that
        # changed while the command ran poisons the result.
        after = {
            "deps": self.dep_digests(spec, upstream, rehash=True),
            "code": {p: self.memo.file_digest(p).xxh for p in decision.components["code"]},
        }
        changed = [
            p
            for part in ("deps", "code")
            for p, d in decision.components[part].items()
            if after[part].get(p) != d
        ]
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
        mid = self.write_manifest(
            spec.name,
            decision,
            "built",
            outs,
            started,
            log=self.log_path(spec.name),
            quality=quality,
            executor=ran_on,
            undeclared=undeclared,
        )
        if self.options.store:
            self.cache.put_run(decision.key, spec.name, list(outs), mid, undeclared)
        self.lock.record(
            spec.name,
            LockEntry(
                decision.key, decision.components, outs, quality.metrics, dict(undeclared or {})
            ),
        )
        return CommitResult(outs, recorded=True, warnings=tuple(warnings))

    # ----------------------------------------------------------------- validation
    def assess(
        self, spec: TargetSpec, promotion: dict[str, Any] | None
    ) -> tuple[Quality, list[str]]:
        """Metrics, data checks with the profile, and gates of a finished run, judged
        before anything is recorded. A failed error-severity check or gate raises
        CheckFailed; warn-severity failures come back as warnings."""
        warnings: list[str] = []
        metrics: dict[str, Any] | None = None
        if promotion is not None:
            promotion = dict(promotion)
            metrics = promotion.pop("metrics")  # the winner's; its files, when declared, too
        if spec.metrics:
            metrics, notes = read_metrics(self.root, spec.metrics)
            warnings = [f"{spec.name}: {note}" for note in notes]
        tabular = any(is_tabular(o) for o in spec.outs)
        # The previous build (drift's profiles, max_drop's metrics): a manifest read that
        # the commit of a target with neither tabular outs nor gates does not pay for.
        previous = self.recorded(spec.name) if tabular or spec.gates else None
        checks: list[dict[str, Any]] = []
        profile: dict[str, Any] = {}
        failures: list[str] = []
        if tabular:
            from .checks import inspect_outs

            old_profiles = ((previous or {}).get("profile") or {}).get("tables") or {}
            try:
                results, profile = inspect_outs(self.root, spec.outs, spec.checks, old_profiles)
            except BuildFailed as exc:
                if spec.checks:
                    raise
                warnings.append(f"{spec.name}: no data profile: {exc.message}")
                results = []
            for r in results:
                checks.append(r.to_json())
                if not r.passed:
                    line = f"{r.check} check on {r.out}: {r.message}"
                    if r.severity == "error":
                        failures.append(line)
                    else:
                        warnings.append(f"{spec.name}: {line}")
        gates = evaluate_gates(
            spec.name, spec.gates, metrics or {}, (previous or {}).get("metrics")
        )
        failures += [f"gate failed: {g.message}" for g in gates if not g.passed]
        quality = Quality(
            metrics=metrics,
            checks=tuple(checks),
            gates=tuple(g.to_json() for g in gates),
            profile=profile,
            promotion=promotion,
        )
        if failures:
            findings = (*quality.checks, *quality.gates)
            raise CheckFailed("; ".join(failures), findings=findings)
        return quality, warnings

    def recorded(self, target: str) -> dict[str, Any] | None:
        """The manifest of ``target``'s last successful build or restore (None: never)."""
        return self._usable_manifest(target, self.manifests.current(target))

    def _usable_manifest(self, target: str, mid: str | None) -> dict[str, Any] | None:
        """A manifest this build only draws on (the previous build's profiles and metrics,
        a restored build's quality): a corrupt one is a note and counts as absent (as if
        deleted), so the build goes on; `audit` names it."""
        if mid is None:
            return None
        try:
            return self.manifests.get(mid)
        except ManifestError as exc:
            self._note(f"{target}: {exc.message}; building as if it were absent")
            return None

    def promote(self, spec: TargetSpec) -> dict[str, Any]:
        """Copy the best candidate's outs (from the cache, else from the workspace) to
        ``spec``'s outs; returns the promotion record (with the winner's metrics)."""
        assert spec.promote is not None
        scores = {
            c: (e.metrics if (e := self.lock.entries.get(c)) else None) or {}
            for c in spec.promote.candidates
        }
        winner, table = pick_winner(spec.name, spec.promote, scores)
        entry = self.lock.entries[winner]
        cand = self.pipeline.targets[winner]
        mine = [o for o in spec.outs if o not in spec.metrics]
        theirs = [r for r in entry.outs if r.path not in cand.metrics]
        pairs = list(zip(theirs, mine, strict=True))
        if spec.metrics:
            by_path = {r.path: r for r in entry.outs}
            pairs += list(zip([by_path[m] for m in cand.metrics], spec.metrics, strict=True))
        for rec, dest in pairs:
            self.ensure_inside(spec, dest)
            full = os.path.join(self.root, dest)
            if _has_out(self.cache, rec):
                self.cache.restore_out(rec, full, at=dest)
            elif rec.type == "dir":
                shutil.copytree(os.path.join(self.root, rec.path), full, symlinks=True)
            else:
                shutil.copy2(os.path.join(self.root, rec.path), full)
        with open(self.log_path(spec.name), "w", encoding="utf-8") as log:
            json.dump({"winner": winner, "scores": table}, log, sort_keys=True)
            log.write("\n")
        return {
            **spec.promote.to_json(),
            "winner": winner,
            "scores": table,
            "metrics": dict(scores[winner]),
        }

    def reject(self, spec: TargetSpec, findings: tuple[dict[str, object], ...]) -> str:
        """After a failed check or gate: the rejected outs go to .mlbuild/failed/<target>/
        (with checks.json, the verdicts), and the previous outs come back from aside/, so
        the workspace and the lock entry are as before the build. Returns the failed dir."""
        self.keep_failed(spec)
        failed = os.path.join(self.state_dir, "failed", safe_name(spec.name))
        aside = os.path.join(self.state_dir, "aside", safe_name(spec.name))
        for rel in spec.outs:
            src = os.path.join(aside, rel)
            if os.path.lexists(src):
                os.replace(src, os.path.join(self.root, rel))
        os.makedirs(failed, exist_ok=True)
        with open(os.path.join(failed, "checks.json"), "w", encoding="utf-8") as f:
            json.dump(list(findings), f, indent=2, sort_keys=True)
            f.write("\n")
        return failed

    # ----------------------------------------------------------------- explain support
    def code_diff(self, path: str, old_digest: str, max_lines: int = 40) -> str:
        """A unified diff of a code file against the version of the last build, if cached."""
        try:
            with open(self.cache.object_path(old_digest), encoding="utf-8") as f:
                old = f.read().splitlines()
            with open(os.path.join(self.root, path), encoding="utf-8") as f:
                new = f.read().splitlines()
        except (OSError, UnicodeDecodeError):
            return ""
        lines = list(difflib.unified_diff(old, new, f"a/{path}", f"b/{path}", n=1, lineterm=""))
        if len(lines) > max_lines:
            lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
        return "\n".join(lines)


def _has_out(cache: Cache, rec: OutRecord) -> bool:
    """`Cache.has_out`, with a corrupt tree counting as absent (promote and rollback then
    fall back or say what is missing)."""
    try:
        return cache.has_out(rec)
    except RecordError:
        return False


def diff_components(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Reason]:
    """Every difference between two sets of key components, as reasons (deterministic).

    Values are compared as the build key compares them (`digest.same_value`: canonical
    JSON text), so ``50`` → ``50.0`` or ``1`` → ``true``, which give another key, are named
    here too, never left to "recorded by another mlbuild key schema"."""
    reasons: list[Reason] = []
    for field_name in ("cmd", "python"):
        o, n = old.get(field_name), new.get(field_name)
        if not same_value(o, n):
            reasons.append(
                Reason(
                    ReasonKind.COMMAND,
                    field_name,
                    "; ".join(o) if isinstance(o, list) else o,
                    "; ".join(n) if isinstance(n, list) else n,
                )
            )
    mapped = (
        ("code", ReasonKind.CODE),
        ("deps", ReasonKind.DEP),
        ("params", ReasonKind.PARAM),
        ("env", ReasonKind.ENV),
        ("packages", ReasonKind.PACKAGE),
        ("matrix", ReasonKind.PARAM),
    )
    for field_name, kind in mapped:
        o_map: Mapping[str, Any] = old.get(field_name) or {}
        n_map: Mapping[str, Any] = new.get(field_name) or {}
        for key in sorted(set(o_map) | set(n_map)):
            if key not in o_map:
                reasons.append(Reason(kind, key, None, n_map[key], change="added"))
            elif key not in n_map:
                reasons.append(Reason(kind, key, o_map[key], None, change="removed"))
            elif not same_value(o_map[key], n_map[key]):
                reasons.append(Reason(kind, key, o_map[key], n_map[key]))
    for field_name in ("checks", "gate", "promote"):
        if not same_value(old.get(field_name), new.get(field_name)):
            reasons.append(
                Reason(ReasonKind.VALIDATION, field_name, old.get(field_name), new.get(field_name))
            )
    if not same_value(sorted(old.get("outs") or []), sorted(new.get("outs") or [])):
        reasons.append(Reason(ReasonKind.OUTS_DECLARED, "outs", old.get("outs"), new.get("outs")))
    return reasons
