"""The audit's per-target rules, one function per check (the table is in audit.py).

Each rule reads one target's audited manifest and appends a `Finding` per violation, in
the order the audit reports them; `TargetAudit` carries what every rule needs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..config import Pipeline
from ..digest import (
    FileDigest,
    build_key,
    hash_file,
    hash_tree,
    link_digest,
    same_value,
    walk_tree,
)
from ..errors import MlbuildError
from ..kinds import OutType, Severity
from ..store import Cache, LockEntry, LockFile
from .findings import AuditCheck, AuditReport, Committed, Finding
from .records import KeyComponents, Manifest, ManifestError, OutEntry, is_restore
from .store import ManifestStore
from .views import restore_disagreements, restore_view

__all__ = ["TargetAudit", "audit_target"]


@dataclass
class TargetAudit:
    """One target under audit: where its records are, and where its findings go."""

    name: str
    pipeline: Pipeline
    lock: LockFile
    cache: Cache
    store: ManifestStore
    report: AuditReport
    allow_dirty: bool

    def violation(self, check: AuditCheck, subject: str, expected: str, found: str) -> None:
        self.report.findings.append(Finding(self.name, check, subject, expected, found))

    def unusable(self, exc: ManifestError) -> None:
        self.violation(exc.check, exc.subject, exc.expected, exc.found)

    def rel(self, path: str) -> str:
        """Subjects are workspace-relative: reports are portable."""
        return os.path.relpath(path, self.pipeline.root)


def _sha256_of(full: str, root: str) -> str | None:
    """sha256 of an out, file or directory (tree, walked as outs are: links as links), as
    it is on disk now; None if it is missing."""
    if os.path.isdir(full):
        try:
            walked = walk_tree(full, confine=root)
        except MlbuildError:
            return "a symlink leading outside the workspace"  # never equal to a digest
        entries = [
            (rel, (link_digest if mode == "l" else hash_file)(path, want_sha256=True), mode)
            for rel, path, mode in walked
        ]
        return hash_tree(entries).sha256
    if not os.path.isfile(full):
        return None
    return hash_file(full, want_sha256=True).sha256


def _cache_object_sha256(cache: Cache, out: OutEntry) -> str | None:
    """sha256 of the cache's copy of an out, from the object bytes themselves."""
    xxh = out.get("xxh3", "")
    if not cache.has(xxh):
        return None
    if out.get("type") == OutType.DIR:
        try:
            tree = cache.read_tree(xxh)
        except (OSError, ValueError, MlbuildError):
            return None
        entries: list[tuple[str, FileDigest, str]] = []
        for rel, obj, mode in tree:
            if not cache.has(obj):
                return None
            entries.append((rel, hash_file(cache.object_path(obj), want_sha256=True), mode))
        return hash_tree(entries).sha256
    return hash_file(cache.object_path(xxh), want_sha256=True).sha256


def audit_target(t: TargetAudit) -> tuple[str | None, Manifest | None]:
    """Audit one target; returns (the audited manifest id, its record if usable)."""
    entry = t.lock.entries.get(t.name)
    if entry is None:
        t.violation(
            AuditCheck.BUILT, t.rel(t.lock.path), "an entry for the target", "none: never built"
        )
        return None, None
    mid, doc = locate(t, entry)
    if mid is None or doc is None:
        return mid, None
    subject = t.rel(t.store.path(mid))
    if doc["target"] != t.name:
        t.violation(
            AuditCheck.MANIFEST, subject, f"a manifest of {t.name}", f"one of {doc['target']}"
        )
        return mid, doc
    check_key(t, entry, doc, subject)
    check_readable_fields(t, doc, subject)
    check_outs(t, doc)
    check_upstream(t, doc)
    view = check_restored_from(t, doc, subject)
    note_committed(t, doc, view, mid)
    check_verdicts(t, view)
    check_declared_validation(t, doc.get("components", {}))
    check_git(t, view, mid)
    return mid, doc


def locate(t: TargetAudit, entry: LockEntry) -> tuple[str | None, Manifest | None]:
    """(id, record) of the manifest describing the recorded outs; the record is None (and
    the reason reported) when there is none to audit."""
    # The history index only points at manifests: commands skip a line that is not an
    # id, the audit names it.
    try:
        for line in t.store.index_problems(t.name):
            t.unusable(line)
        mid = t.store.current(t.name)
    except ManifestError as exc:
        t.unusable(exc)
        return None, None
    # The target's latest record (a build or a restore) must be intact whatever the lock
    # says: a truncated or deleted restore manifest is a violation, never skipped.
    doc: Manifest | None = None
    if mid is not None:
        try:
            doc = t.store.load(mid)
        except ManifestError as exc:
            t.unusable(exc)
            return mid, None
    # The manifest describing the recorded outs: the target's latest, if it is of the
    # lock's key (the usual case), else the one the run cache names for that key.
    if doc is None or doc.get("key") != entry.key:
        by_key = t.cache.run_manifest(entry.key)
        if by_key is None:
            t.violation(
                AuditCheck.MANIFEST, t.name, f"a manifest for key {entry.key}", "none recorded"
            )
            return None, None
        mid = by_key
        try:
            doc = t.store.load(mid)
        except ManifestError as exc:
            t.unusable(exc)
            return mid, None
    return mid, doc


def check_key(t: TargetAudit, entry: LockEntry, doc: Manifest, subject: str) -> None:
    """``lock`` and ``consistency``: the lock's key, deps and params are the manifest's,
    and its components hash to its key."""
    lock_path = t.rel(t.lock.path)
    if doc.get("key") != entry.key:
        t.violation(
            AuditCheck.LOCK, lock_path, f"key {entry.key}", f"manifest key {doc.get('key')}"
        )
    components: dict[str, Any] = dict(doc.get("components", {}))  # as the key hashes it
    if build_key(components) != doc.get("key"):
        t.violation(
            AuditCheck.CONSISTENCY,
            subject,
            f"key {doc.get('key')}",
            f"its components hash to {build_key(components)}",
        )
    for part in ("deps", "params"):
        if not same_value(components.get(part), entry.components.get(part)):
            t.violation(
                AuditCheck.LOCK,
                lock_path,
                f"{part} {entry.components.get(part)}",
                f"manifest {part} {components.get(part)}",
            )


def check_readable_fields(t: TargetAudit, doc: Manifest, subject: str) -> None:
    """``consistency``: the readable fields say what the key components say (a forged
    manifest could otherwise show one value and hash another)."""
    components = doc.get("components", {})
    for shown, part in (
        ("params", "params"),
        ("command", "cmd"),
        ("python", "python"),
        ("code", "code"),
        ("env", "env"),
    ):
        if shown == "env":
            plain = {k: v for k, v in doc.get("env", {}).items() if not isinstance(v, dict)}
            recorded = {
                k: v for k, v in (components.get("env") or {}).items() if not isinstance(v, dict)
            }
            if same_value(plain, recorded):
                continue
        elif same_value(doc.get(shown), components.get(part)):
            continue
        t.violation(
            AuditCheck.CONSISTENCY,
            subject,
            f"{shown} as in the key components",
            f"{shown} {doc.get(shown)!r} vs components {components.get(part)!r}",
        )


def check_outs(t: TargetAudit, doc: Manifest) -> None:
    """``out``: each out's bytes, re-read and hashed, are the recorded sha256 (or the cache
    holds the exact bytes to restore them from)."""
    root = t.pipeline.root
    for out in doc.get("outs", []):
        now = _sha256_of(os.path.join(root, out["path"]), root)
        if now == out.get("sha256"):
            continue
        if now is None and _cache_object_sha256(t.cache, out) == out.get("sha256"):
            continue  # not in the workspace, but the cache holds the exact bytes
        t.violation(AuditCheck.OUT, out["path"], str(out.get("sha256")), now or "missing")


def check_upstream(t: TargetAudit, doc: Manifest) -> None:
    """``upstream``: each target dep links to a usable manifest, and the upstream was not
    rebuilt since into other bytes."""
    for dep in doc.get("deps", []):
        upstream = dep.get("target")
        if upstream is None:
            continue
        linked = dep.get("manifest")
        try:
            linked_doc = t.store.get(linked) if linked is not None else None
        except ManifestError as exc:
            found = f"{linked} {exc.detail}"
            t.violation(AuditCheck.UPSTREAM, dep["path"], f"manifest of {upstream}", found)
            continue
        if linked_doc is None:
            t.violation(
                AuditCheck.UPSTREAM, dep["path"], f"manifest of {upstream}", f"{linked} (missing)"
            )
            continue
        if linked_doc["target"] != upstream:  # a link names a build of the dep's target
            found = f"{linked} (a manifest of {linked_doc['target']})"
            t.violation(AuditCheck.UPSTREAM, dep["path"], f"manifest of {upstream}", found)
            continue
        made = {o["path"]: o["xxh3"] for o in linked_doc.get("outs", [])}
        if dep["path"] in made and made[dep["path"]] != dep.get("xxh3"):
            t.violation(
                AuditCheck.UPSTREAM,
                dep["path"],
                f"{dep.get('xxh3')} (as recorded for this dep)",
                f"{made[dep['path']]} (what {upstream}'s linked build {linked} made)",
            )
            continue
        # Rebuilt since? Compare content, not ids: a restore or an identical rebuild of
        # the upstream (early cutoff) leaves this target valid.
        current = t.report.manifests.get(upstream) or t.store.current(upstream)
        try:
            current_doc = t.store.get(current) if current else None
        except ManifestError:
            current_doc = None  # the upstream's own audit names it
        outs = current_doc.get("outs", []) if current_doc is not None else []
        upstream_outs = {o["path"]: o["xxh3"] for o in outs}
        if dep["path"] in upstream_outs and upstream_outs[dep["path"]] != dep.get("xxh3"):
            t.violation(
                AuditCheck.UPSTREAM,
                dep["path"],
                f"{dep.get('xxh3')} ({upstream} as built then, {linked})",
                f"{upstream_outs[dep['path']]} ({upstream} rebuilt since, {current})",
            )


def check_restored_from(t: TargetAudit, doc: Manifest, subject: str) -> Manifest:
    """``restored-from``: a restore's build is there and every field it copies agrees.
    Returns what the remaining rules judge: a restore seen through its build (a restore
    records who/when/where of itself; everything else is a copy of the build)."""
    if not is_restore(doc) or doc.get("restored_from") is None:
        return doc
    try:
        source = t.store.source_build(doc)
    except ManifestError as exc:
        t.violation(AuditCheck.RESTORED_FROM, exc.subject, "the original build manifest", exc.found)
        return doc
    if source is None:
        restored_from = doc["restored_from"]
        t.violation(
            AuditCheck.RESTORED_FROM, restored_from, "the original build manifest", "missing"
        )
        return doc
    build_id, build = source
    for differs in restore_disagreements(doc, build):
        t.violation(
            AuditCheck.RESTORED_FROM,
            subject,
            f"{differs} as in the build it restores ({build_id})",
            f"{differs} differ",
        )
    return restore_view(doc, build)


def note_committed(t: TargetAudit, doc: Manifest, view: Manifest, mid: str) -> None:
    """``committed``: a build `mlbuild commit` recorded (or a restore of one: the view
    carries its build's flag) is reported, not a violation unless --require-built."""
    if view.get("committed") is not True:
        return
    by = f"{doc.get('user')}@{doc.get('host')}"
    subject = t.rel(t.store.path(mid))
    restored = is_restore(doc)
    t.report.committed.append(
        Committed(t.name, mid, subject, by, str(doc.get("finished")), restored)
    )


def check_verdicts(t: TargetAudit, view: Manifest) -> None:
    """``check``, ``gate``: every recorded check and gate passed. A recorded error-severity
    failure means the manifest describes outs mlbuild would have rejected (a forged or
    hand-made record)."""
    for check in view.get("checks") or []:
        if check.get("severity") == Severity.ERROR and not check.get("passed"):
            where = f"{check.get('out')}: {check.get('check')}"
            t.violation(AuditCheck.CHECK, where, "passed", str(check.get("message")))
    for gate in view.get("gates") or []:
        if not gate.get("passed"):
            t.violation(
                AuditCheck.GATE, str(gate.get("metric")), "passed", str(gate.get("message"))
            )


def check_declared_validation(t: TargetAudit, components: KeyComponents) -> None:
    """``check``, ``gate``: the components declare the validation the pipeline now asks
    for; outs built before a check or gate was added were never judged by it."""
    spec = t.pipeline.targets.get(t.name)
    if spec is None:
        return
    declared = (
        (AuditCheck.CHECK, "checks", [c.to_json() for c in spec.checks] or None),
        (AuditCheck.GATE, "gate", [g.to_json() for g in spec.gates] or None),
    )
    for check, part, wanted in declared:
        if wanted is not None and not same_value(components.get(part), wanted):
            t.violation(
                check,
                t.name,
                f"built under the declared {part}",
                "built before they were declared or changed"
                if components.get(part) is None
                else "built under other " + part,
            )


def check_git(t: TargetAudit, view: Manifest, mid: str) -> None:
    """``git-dirty``: built from a clean tree (for a restore: the build's tree counts)."""
    git = view.get("environment", {}).get("git", {})
    if git.get("dirty") and not t.allow_dirty:
        t.violation(
            AuditCheck.GIT_DIRTY, mid, "a clean git tree", f"dirty tree at {git.get('commit')}"
        )
