"""`mlbuild audit`: prove that what is in the workspace is what the manifests say was built.

For each target and its whole upstream closure, in build order:

====================  ==================================================================
check                 violation when
====================  ==================================================================
``built``             the lock file has no entry for the target
``history``           a line of the target's history index is not a manifest id
``manifest``          the target's latest manifest, or the one of the lock entry's key,
                      is missing, unreadable, not JSON, not an object or malformed
                      (manifest.parse_manifest), or names another target
``manifest-id``       the manifest's content no longer hashes to its id (tampered)
``schema``            the manifest's schema is not one this mlbuild reads
``consistency``       the recorded components do not hash to the recorded key, or a
                      readable field (params, command, code, env) disagrees with them
``lock``              the lock's key, deps or params differ from the manifest's
``out``               an out's sha256 differs from the manifest (and no cache object
                      with the recorded digests exists to restore it from)
``upstream``          a dep's upstream manifest is missing or unusable, or the upstream
                      was rebuilt since (the dep links to an older manifest than the
                      upstream's own)
``restored-from``     a restore's original build manifest is missing or unusable, or a
                      field the restore copies from it differs (one finding per field;
                      only manifest.RESTORE_OWN_FIELDS are the restore's own)
``check``, ``gate``   a recorded error-severity check or gate failed (for a restore: as
                      recorded by the build it restores), or the build was not judged by
                      the checks and gates declared now
``git-dirty``         built from a git tree with uncommitted changes (``--allow-dirty``);
                      for a restore, the build's tree counts, not the restoring one
``signature``         a signature (or signature file) that does not verify, or by a key
                      not trusted, of an audited manifest or of any manifest its deps
                      link to; with ``--require-signatures``, an unsigned manifest, except
                      a restore vouched for by its signed build (`_unvouched`)
``reproduction``      the latest `mlbuild reproduce` of the audited build (for a restore:
                      of the build it restores) found an out that differs beyond the
                      tolerances it was given, or failed to re-run; or that record (or
                      its index) is unusable. No reproduction at all is not a violation
====================  ==================================================================

Every reproduction verdict of an audited build is in the report (`AuditReport.reproductions`,
``reproductions`` in JSON), passed or not; the card shows it.

Outs are re-read and hashed with sha256 for real (the stat memo is not trusted here: an
auditor's question is exactly whether someone changed a file behind mlbuild's back).
What the audit does not prove: that the build machine was honest. Manifests are written by
the machine that built; until they are signed, anyone with write access can rewrite a
manifest *and* its id consistently. See docs/provenance.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .config import Pipeline
from .digest import (
    FileDigest,
    build_key,
    canonical_json,
    hash_file,
    hash_tree,
    link_digest,
    same_value,
    walk_tree,
)
from .errors import MlbuildError
from .manifest import (
    REPRODUCTION,
    ManifestError,
    ManifestStore,
    Verdict,
    reproduction_line,
    restore_disagreements,
    restore_view,
)
from .signing import TrustedKeys
from .store import Cache, LockFile

__all__ = ["AuditReport", "Finding", "audit", "lineage", "lineage_leaves"]


@dataclass(frozen=True)
class Finding:
    """One violation: which target, which check, the file or manifest, expected vs found."""

    target: str
    check: str
    subject: str
    expected: str
    found: str

    def to_json(self) -> dict[str, str]:
        return {
            "target": self.target,
            "check": self.check,
            "subject": self.subject,
            "expected": self.expected,
            "found": self.found,
        }


@dataclass
class AuditReport:
    targets: list[str]
    manifests: dict[str, str | None] = field(default_factory=dict)  # target → audited id
    signatures_required: bool = False
    findings: list[Finding] = field(default_factory=list)
    # target → the latest reproduction of its audited build (`_judge_reproduction`)
    reproductions: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "targets": [{"target": t, "manifest": self.manifests.get(t)} for t in self.targets],
            "findings": [f.to_json() for f in self.findings],
            "reproductions": [
                {"target": t, **self.reproductions[t]}
                for t in self.targets
                if t in self.reproductions
            ],
        }


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


def _cache_object_sha256(cache: Cache, out: dict[str, Any]) -> str | None:
    """sha256 of the cache's copy of an out, from the object bytes themselves."""
    xxh = out.get("xxh3", "")
    if not cache.has(xxh):
        return None
    if out.get("type") == "dir":
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


def audit(
    pipeline: Pipeline,
    order: list[str],
    lock: LockFile,
    cache: Cache,
    store: ManifestStore,
    *,
    allow_dirty: bool,
    require_signatures: bool,
    trusted: TrustedKeys,
) -> AuditReport:
    """Audit ``order`` (targets in build order, upstream closure included)."""
    report = AuditReport(targets=list(order), signatures_required=require_signatures)
    # With no trusted key configured there is nothing to check a signature against.
    judged = bool(trusted.keys or require_signatures)
    audited: list[tuple[str, dict[str, Any]]] = []
    for name in order:
        found, doc = _audit_target(name, pipeline, lock, cache, store, allow_dirty, report)
        report.manifests[name] = found
        if found is not None and doc is not None:
            audited.append((name, doc))
            if judged:
                problem = _signature_problem(store, found, doc, trusted, require_signatures)
                if problem is not None:
                    subject = os.path.relpath(store.sig_path(found), pipeline.root)
                    report.findings.append(Finding(name, "signature", subject, *problem))
            _judge_reproduction(name, found, doc, store, report, trusted if judged else None)
    if judged:
        _judge_links(store, audited, {m for m in report.manifests.values() if m}, trusted, report)
    return report


def _judge_reproduction(
    name: str,
    mid: str,
    doc: dict[str, Any],
    store: ManifestStore,
    report: AuditReport,
    trusted: TrustedKeys | None,
) -> None:
    """Report the latest reproduction of the audited build ``mid`` (a restore's: of the
    build it restores): in ``report.reproductions``, and as a ``reproduction`` violation
    when it differs or failed. See docs/audit.md for why that is a violation, not a
    warning. Records are read newest first; an unusable one met before the verdict is a
    violation too (it may be the latest verdict). Its signature is judged as any audited
    manifest's (``trusted`` None: signatures are not judged)."""
    builds = {mid}
    if doc.get("status") in ("restored", "rollback"):
        try:
            source = store.source_build(doc)
        except ManifestError:
            source = None  # the restored-from check names it
        if source is not None:
            builds.add(source[0])

    def unusable(exc: ManifestError) -> None:
        report.findings.append(Finding(name, "reproduction", exc.subject, exc.expected, exc.found))

    try:
        ids, problems = store.reproductions(name)
    except ManifestError as exc:
        unusable(exc)
        return
    for problem in problems:
        unusable(problem)
    for rid in reversed(ids):
        try:
            record = store.load(rid)
        except ManifestError as exc:
            unusable(exc)
            continue
        if record.get("status") != REPRODUCTION or record.get("target") != name:
            subject = store.shown(store.path(rid))
            found = f"a {record.get('status')} manifest of {record.get('target')}"
            report.findings.append(
                Finding(name, "reproduction", subject, f"a reproduction of {name}", found)
            )
            continue
        if record["reproduces"] not in builds:
            continue  # of another build of the target
        verdict = Verdict(record["verdict"])
        line = reproduction_line(record)
        report.reproductions[name] = {
            "manifest": rid,
            "reproduces": record["reproduces"],
            "verdict": verdict.value,
            "finished": record["finished"],
            "differing": list(record["differing"]),
            "tolerances": dict(record["tolerances"]),
            "summary": line,
        }
        subject = store.shown(store.path(rid))
        if not verdict.reproducible:
            expected = "reproducible (bit-identical, or within the tolerances given)"
            report.findings.append(Finding(name, "reproduction", subject, expected, line))
        if trusted is not None:
            bad = _signature_problem(store, rid, record, trusted, report.signatures_required)
            if bad is not None:
                shown = store.shown(store.sig_path(rid))
                report.findings.append(Finding(name, "signature", shown, *bad))
        return


def _judge_links(
    store: ManifestStore,
    audited: list[tuple[str, dict[str, Any]]],
    judged: set[str],
    trusted: TrustedKeys,
    report: AuditReport,
) -> None:
    """Judge the signature of every manifest the audited ones link to, all the way up.

    Lineage and model cards follow these links, and a restore's links are its own
    (unsigned) claim: a forged link could otherwise show an unsigned record's params and
    checks upstream. Missing or corrupt direct links are the ``upstream`` check's."""
    queue = list(audited)
    while queue:
        name, doc = queue.pop(0)
        for dep in doc.get("deps", []):
            link = dep.get("manifest")
            if link is None or link in judged:
                continue
            judged.add(link)
            try:
                linked = store.get(link)
            except ManifestError:
                linked = None
            if linked is None:
                continue
            problem = _signature_problem(store, link, linked, trusted, report.signatures_required)
            if problem is not None:
                subject = store.shown(store.sig_path(link))
                expected = f"{dep.get('target')}'s linked manifest signed by a trusted key"
                report.findings.append(Finding(name, "signature", subject, expected, problem[1]))
            queue.append((name, linked))


def _signature_problem(
    store: ManifestStore,
    mid: str,
    doc: dict[str, Any],
    trusted: TrustedKeys,
    required: bool,
) -> tuple[str, str] | None:
    """(expected, found) when a manifest's signature is missing (and required) or bad."""
    expected = "a signature by a trusted key"
    try:
        sig = store.signature(mid)
    except ManifestError as exc:
        return exc.expected, exc.found
    if sig is not None:
        problem = trusted.verify(sig["keyid"], canonical_json(doc).encode(), sig["sig"])
        return None if problem is None else (expected, problem)
    if not required:
        return None
    if doc.get("status") not in ("restored", "rollback"):
        return expected, "unsigned"
    why = _unvouched(store, doc, trusted)
    return None if why is None else (expected, f"unsigned, and {why}")


def _unvouched(store: ManifestStore, doc: dict[str, Any], trusted: TrustedKeys) -> str | None:
    """Why the build an unsigned restore or rollback restores does not vouch for it (None:
    it does). A CI clone that pulls signed builds holds no signing key, so its restores
    are unsigned: one is accepted when the build it restores is signed by a trusted key
    and every field but the restore's own who/when/where (manifest.RESTORE_OWN_FIELDS)
    equals that build's. What is shown or judged of it comes from the build anyway
    (ManifestStore.view); its outs are checked against the signed sha256s."""
    try:
        source = store.source_build(doc)
    except ManifestError as exc:
        return f"the build it restores is unusable ({exc.subject}: {exc.found})"
    if source is None:
        return f"the build it restores ({doc.get('restored_from')}) is missing"
    build_id, build = source
    try:
        sig = store.signature(build_id)
    except ManifestError as exc:
        return f"the build it restores has a bad signature ({exc.found})"
    if sig is None:
        return f"the build it restores ({build_id}) is unsigned too"
    problem = trusted.verify(sig["keyid"], canonical_json(build).encode(), sig["sig"])
    if problem is not None:
        return f"the build it restores ({build_id}) is {problem}"
    differ = restore_disagreements(doc, build)
    if differ:
        return f"its {', '.join(differ)} differ from the signed build {build_id}"
    return None


def _audit_target(
    name: str,
    pipeline: Pipeline,
    lock: LockFile,
    cache: Cache,
    store: ManifestStore,
    allow_dirty: bool,
    report: AuditReport,
) -> tuple[str | None, dict[str, Any] | None]:
    """Audit one target; returns (the audited manifest id, its record if usable)."""

    def violation(check: str, subject: str, expected: str, found: str) -> None:
        report.findings.append(Finding(name, check, subject, expected, found))

    def unusable(exc: ManifestError) -> None:
        violation(exc.check, exc.subject, exc.expected, exc.found)

    def rel(path: str) -> str:  # subjects are workspace-relative: reports are portable
        return os.path.relpath(path, pipeline.root)

    entry = lock.entries.get(name)
    if entry is None:
        violation("built", rel(lock.path), "an entry for the target", "none: never built")
        return None, None
    # The history index only points at manifests: commands skip a line that is not an
    # id, the audit names it.
    try:
        for line in store.index_problems(name):
            unusable(line)
        mid = store.current(name)
    except ManifestError as exc:
        unusable(exc)
        return None, None
    # The target's latest record (a build or a restore) must be intact whatever the lock
    # says: a truncated or deleted restore manifest is a violation, never skipped.
    doc: dict[str, Any] | None = None
    if mid is not None:
        try:
            doc = store.load(mid)
        except ManifestError as exc:
            unusable(exc)
            return mid, None
    # The manifest describing the recorded outs: the target's latest, if it is of the
    # lock's key (the usual case), else the one the run cache names for that key.
    if doc is None or doc.get("key") != entry.key:
        by_key = cache.run_manifest(entry.key)
        if by_key is None:
            violation("manifest", name, f"a manifest for key {entry.key}", "none recorded")
            return None, None
        mid = by_key
        try:
            doc = store.load(mid)
        except ManifestError as exc:
            unusable(exc)
            return mid, None
    assert mid is not None  # a record was loaded, so it has an id
    subject = rel(store.path(mid))
    if doc["target"] != name:
        violation("manifest", subject, f"a manifest of {name}", f"one of {doc['target']}")
        return mid, doc
    if doc.get("key") != entry.key:
        violation("lock", rel(lock.path), f"key {entry.key}", f"manifest key {doc.get('key')}")
    components = doc.get("components", {})
    if build_key(components) != doc.get("key"):
        violation(
            "consistency",
            subject,
            f"key {doc.get('key')}",
            f"its components hash to {build_key(components)}",
        )
    for part in ("deps", "params"):
        if not same_value(components.get(part), entry.components.get(part)):
            violation(
                "lock",
                rel(lock.path),
                f"{part} {entry.components.get(part)}",
                f"manifest {part} {components.get(part)}",
            )
    # The readable fields must say what the key components say (a forged manifest could
    # otherwise show one value and hash another).
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
        violation(
            "consistency",
            subject,
            f"{shown} as in the key components",
            f"{shown} {doc.get(shown)!r} vs components {components.get(part)!r}",
        )
    for out in doc.get("outs", []):
        full = os.path.join(pipeline.root, out["path"])
        now = _sha256_of(full, pipeline.root)
        if now == out.get("sha256"):
            continue
        if now is None and _cache_object_sha256(cache, out) == out.get("sha256"):
            continue  # not in the workspace, but the cache holds the exact bytes
        violation("out", out["path"], str(out.get("sha256")), now or "missing")
    for dep in doc.get("deps", []):
        upstream = dep.get("target")
        if upstream is None:
            continue
        linked = dep.get("manifest")
        try:
            linked_doc = store.get(linked) if linked is not None else None
        except ManifestError as exc:
            violation("upstream", dep["path"], f"manifest of {upstream}", f"{linked} {exc.detail}")
            continue
        if linked_doc is None:
            violation("upstream", dep["path"], f"manifest of {upstream}", f"{linked} (missing)")
            continue
        # Rebuilt since? Compare content, not ids: a restore or an identical rebuild of
        # the upstream (early cutoff) leaves this target valid.
        current = report.manifests.get(upstream) or store.current(upstream)
        try:
            current_doc = store.get(current) if current else None
        except ManifestError:
            current_doc = None  # the upstream's own audit names it
        upstream_outs = {o["path"]: o["xxh3"] for o in (current_doc or {}).get("outs", [])}
        if dep["path"] in upstream_outs and upstream_outs[dep["path"]] != dep.get("xxh3"):
            violation(
                "upstream",
                dep["path"],
                f"{dep.get('xxh3')} ({upstream} as built then, {linked})",
                f"{upstream_outs[dep['path']]} ({upstream} rebuilt since, {current})",
            )
    # A restore or rollback records who/when/where of itself; everything else is a copy
    # of the build it restores, and what is judged below comes from that build.
    view = doc
    if doc.get("status") in ("restored", "rollback") and doc.get("restored_from") is not None:
        try:
            source = store.source_build(doc)
        except ManifestError as exc:
            violation("restored-from", exc.subject, "the original build manifest", exc.found)
            source = None
        else:
            if source is None:
                violation(
                    "restored-from", doc["restored_from"], "the original build manifest", "missing"
                )
        if source is not None:
            build_id, build = source
            for differs in restore_disagreements(doc, build):
                violation(
                    "restored-from",
                    subject,
                    f"{differs} as in the build it restores ({build_id})",
                    f"{differs} differ",
                )
            view = restore_view(doc, build)
    # Every check and gate passed: a recorded error-severity failure means the manifest
    # describes outs mlbuild would have rejected (a forged or hand-made record).
    for check in view.get("checks") or []:
        if check.get("severity") == "error" and not check.get("passed"):
            where = f"{check.get('out')}: {check.get('check')}"
            violation("check", where, "passed", str(check.get("message")))
    for gate in view.get("gates") or []:
        if not gate.get("passed"):
            violation("gate", str(gate.get("metric")), "passed", str(gate.get("message")))
    # The components must declare the validation the pipeline now asks for: outs built
    # before a check or gate was added were never judged by it.
    spec = pipeline.targets.get(name)
    if spec is not None:
        declared = {
            "checks": [c.to_json() for c in spec.checks] or None,
            "gate": [g.to_json() for g in spec.gates] or None,
        }
        for part, wanted in declared.items():
            if wanted is not None and not same_value(components.get(part), wanted):
                violation(
                    "check" if part == "checks" else "gate",
                    name,
                    f"built under the declared {part}",
                    "built before they were declared or changed"
                    if components.get(part) is None
                    else "built under other " + part,
                )
    git = view.get("environment", {}).get("git", {})
    if git.get("dirty") and not allow_dirty:
        violation("git-dirty", mid, "a clean git tree", f"dirty tree at {git.get('commit')}")
    return mid, doc


def lineage(store: ManifestStore, mid: str, seen: set[str] | None = None) -> dict[str, Any]:
    """The recorded upstream tree of a manifest, following its deps' manifest links.

    Each node: ``{target, manifest, status, who, when, outs: [{path, sha256}], sources:
    [{path, xxh3}], code: [{path, xxh3}], params, checks, upstream: [node]}`` (and
    ``restored_from`` for a restore, whose facts are shown from the build it restores:
    only who and when are its own). A link that does not resolve is a node with
    ``"missing": true`` (and ``"corrupt": what is wrong`` when the file is there but
    unusable). Shared upstream appears once in full, then as ``"seen": true``."""
    seen = set() if seen is None else seen
    try:
        raw = store.get(mid)
        doc = store.view(raw) if raw is not None else None
    except ManifestError as exc:
        return {"manifest": mid, "missing": True, "corrupt": f"{exc.subject}: {exc.found}"}
    if doc is None:
        return {"manifest": mid, "missing": True}
    node: dict[str, Any] = {
        "target": doc.get("target"),
        "manifest": mid,
        "status": doc.get("status"),
        "who": f"{doc.get('user')}@{doc.get('host')}",
        "when": doc.get("finished"),
        "outs": [{"path": o["path"], "sha256": o.get("sha256")} for o in doc.get("outs", [])],
    }
    if doc.get("restored_from") is not None:
        node["restored_from"] = doc["restored_from"]
    if mid in seen:
        node["seen"] = True
        return node
    seen.add(mid)
    node["sources"] = [
        {"path": d["path"], "xxh3": d.get("xxh3")} for d in doc.get("deps", []) if "target" not in d
    ]
    node["code"] = [{"path": p, "xxh3": d} for p, d in sorted(doc.get("code", {}).items())]
    node["params"] = doc.get("params", {})
    node["checks"] = doc.get("checks") or []
    # Upstream in target-name order (ids differ between identical builds; names do not).
    links = [
        m
        for _, m in sorted(
            {(d.get("target", ""), d["manifest"]) for d in doc.get("deps", []) if d.get("manifest")}
        )
    ]
    links = list(dict.fromkeys(links))
    node["upstream"] = [lineage(store, link, seen) for link in links]
    return node


def lineage_leaves(node: dict[str, Any]) -> list[tuple[str, str, str]]:
    """A lineage node's files as ``(kind, path, digest)``: outs (sha256), then source
    deps and code files (xxh3): one list for every renderer of a lineage tree."""
    leaves = [("out", o["path"], str(o["sha256"])) for o in node.get("outs", [])]
    leaves += [("source", s["path"], str(s["xxh3"])) for s in node.get("sources", [])]
    leaves += [("code", c["path"], str(c["xxh3"])) for c in node.get("code", [])]
    return leaves
