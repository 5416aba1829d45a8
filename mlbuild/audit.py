"""`mlbuild audit`: prove that what is in the workspace is what the manifests say was built.

For each target and its whole upstream closure, in build order:

====================  ==================================================================
check                 violation when
====================  ==================================================================
``built``             the lock file has no entry for the target
``manifest``          no manifest for the lock entry's key, or its file is gone
``manifest-id``       the manifest's content no longer hashes to its id (tampered)
``schema``            the manifest's schema is not one this mlbuild reads
``consistency``       the recorded components do not hash to the recorded key, or a
                      readable field (params, command, code, env) disagrees with them
``lock``              the lock's key, deps or params differ from the manifest's
``out``               an out's sha256 differs from the manifest (and no cache object
                      with the recorded digests exists to restore it from)
``upstream``          a dep's upstream manifest is missing, or the upstream was rebuilt
                      since (the dep links to an older manifest than the upstream's own)
``restored-from``     a restore's original build manifest is missing or tampered
``git-dirty``         built from a git tree with uncommitted changes (``--allow-dirty``)
``signature``         a signature that does not verify, or by a key not trusted; with
                      ``--require-signatures``, an unsigned manifest
====================  ==================================================================

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

from .digest import FileDigest, build_key, canonical_json, hash_file, hash_tree, walk_tree
from .manifest import MANIFEST_SCHEMA, ManifestStore, manifest_id
from .pipeline import Pipeline
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

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "targets": [{"target": t, "manifest": self.manifests.get(t)} for t in self.targets],
            "findings": [f.to_json() for f in self.findings],
        }


def _sha256_of(full: str) -> str | None:
    """sha256 of a file or directory (tree) as it is on disk now; None if it is missing."""
    if os.path.isdir(full):
        entries = [
            (rel, hash_file(path, want_sha256=True), ex) for rel, path, ex in walk_tree(full)
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
        except (OSError, ValueError):
            return None
        entries: list[tuple[str, FileDigest, bool]] = []
        for rel, obj, ex in tree:
            if not cache.has(obj):
                return None
            entries.append((rel, hash_file(cache.object_path(obj), want_sha256=True), ex))
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
    for name in order:
        found = _audit_target(name, pipeline, lock, cache, store, allow_dirty, report)
        report.manifests[name] = found
        doc = store.get(found) if found else None
        # With no trusted key configured there is nothing to check a signature against.
        if found is not None and doc is not None and (trusted.keys or require_signatures):
            problem = _signature_problem(store, found, doc, trusted, require_signatures)
            if problem is not None:
                subject = os.path.relpath(store.sig_path(found), pipeline.root)
                report.findings.append(Finding(name, "signature", subject, *problem))
    return report


def _signature_problem(
    store: ManifestStore,
    mid: str,
    doc: dict[str, Any],
    trusted: TrustedKeys,
    required: bool,
) -> tuple[str, str] | None:
    """(expected, found) when a manifest's signature is missing (and required) or bad."""
    sig = store.signature(mid)
    if sig is None:
        if not required or _vouched_restore(store, doc, trusted):
            return None
        return ("a signature by a trusted key", "unsigned")
    payload = canonical_json(doc).encode()
    problem = trusted.verify(sig.get("keyid", ""), payload, sig.get("sig", ""))
    return None if problem is None else ("a signature by a trusted key", problem)


def _vouched_restore(store: ManifestStore, doc: dict[str, Any], trusted: TrustedKeys) -> bool:
    """An unsigned restore or rollback is acceptable when the build it restores is signed
    by a trusted key and has the same build key and outs: a CI clone that pulls signed
    builds holds no signing key, and the bytes it restored are exactly the signed ones
    (the "out" check verifies them against the same sha256s). Its own who/when fields
    are then unsigned claims; the audit trusts only what the original vouches for."""
    if doc.get("status") not in ("restored", "rollback"):
        return False
    original_id = doc.get("restored_from")
    original = store.get(original_id) if isinstance(original_id, str) else None
    if original is None or original_id is None:
        return False
    if original.get("key") != doc.get("key") or original.get("outs") != doc.get("outs"):
        return False
    sig = store.signature(original_id)
    if sig is None:
        return False
    payload = canonical_json(original).encode()
    return trusted.verify(sig.get("keyid", ""), payload, sig.get("sig", "")) is None


def _audit_target(
    name: str,
    pipeline: Pipeline,
    lock: LockFile,
    cache: Cache,
    store: ManifestStore,
    allow_dirty: bool,
    report: AuditReport,
) -> str | None:
    def violation(check: str, subject: str, expected: str, found: str) -> None:
        report.findings.append(Finding(name, check, subject, expected, found))

    def rel(path: str) -> str:  # subjects are workspace-relative: reports are portable
        return os.path.relpath(path, pipeline.root)

    entry = lock.entries.get(name)
    if entry is None:
        violation("built", rel(lock.path), "an entry for the target", "none: never built")
        return None
    # The manifest describing the recorded outs: the target's latest, if it is of the
    # lock's key (the usual case), else the one the run cache names for that key.
    mid = store.current(name)
    doc = store.get(mid) if mid else None
    if doc is None or doc.get("key") != entry.key:
        mid = cache.run_manifest(entry.key)
        doc = store.get(mid) if mid else None
    if mid is None:
        violation("manifest", name, f"a manifest for key {entry.key}", "none recorded")
        return None
    if doc is None:
        violation("manifest", rel(store.path(mid)), f"manifest {mid}", "file missing or unreadable")
        return mid
    actual = manifest_id(doc)
    if actual != mid:
        violation("manifest-id", rel(store.path(mid)), mid, actual)
    if doc.get("schema") != MANIFEST_SCHEMA:
        violation("schema", rel(store.path(mid)), MANIFEST_SCHEMA, str(doc.get("schema")))
        return mid
    if doc.get("key") != entry.key:
        violation("lock", rel(lock.path), f"key {entry.key}", f"manifest key {doc.get('key')}")
    components = doc.get("components", {})
    if build_key(components) != doc.get("key"):
        violation(
            "consistency",
            rel(store.path(mid)),
            f"key {doc.get('key')}",
            f"its components hash to {build_key(components)}",
        )
    for part in ("deps", "params"):
        if components.get(part) != entry.components.get(part):
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
                k: v for k, v in components.get("env", {}).items() if not isinstance(v, dict)
            }
            if plain == recorded:
                continue
        elif doc.get(shown) == components.get(part):
            continue
        violation(
            "consistency",
            rel(store.path(mid)),
            f"{shown} as in the key components",
            f"{shown} {doc.get(shown)!r} vs components {components.get(part)!r}",
        )
    for out in doc.get("outs", []):
        full = os.path.join(pipeline.root, out["path"])
        now = _sha256_of(full)
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
        if linked is None or store.get(linked) is None:
            violation("upstream", dep["path"], f"manifest of {upstream}", str(linked))
            continue
        # Rebuilt since? Compare content, not ids: a restore or an identical rebuild of
        # the upstream (early cutoff) leaves this target valid.
        current = report.manifests.get(upstream) or store.current(upstream)
        current_doc = store.get(current) if current else None
        upstream_outs = {o["path"]: o["xxh3"] for o in (current_doc or {}).get("outs", [])}
        if dep["path"] in upstream_outs and upstream_outs[dep["path"]] != dep.get("xxh3"):
            violation(
                "upstream",
                dep["path"],
                f"{dep.get('xxh3')} ({upstream} as built then, {linked})",
                f"{upstream_outs[dep['path']]} ({upstream} rebuilt since, {current})",
            )
    restored_from = doc.get("restored_from")
    if restored_from is not None:
        original = store.get(restored_from)
        if original is None:
            violation("restored-from", restored_from, "the original build manifest", "missing")
        elif manifest_id(original) != restored_from:
            violation("restored-from", restored_from, restored_from, manifest_id(original))
    # Every check and gate passed: a recorded error-severity failure means the manifest
    # describes outs mlbuild would have rejected (a forged or hand-made record).
    for check in doc.get("checks") or []:
        if check.get("severity") == "error" and not check.get("passed"):
            subject = f"{check.get('out')}: {check.get('check')}"
            violation("check", subject, "passed", str(check.get("message")))
    for gate in doc.get("gates") or []:
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
            if wanted is not None and components.get(part) != wanted:
                violation(
                    "check" if part == "checks" else "gate",
                    name,
                    f"built under the declared {part}",
                    "built before they were declared or changed"
                    if components.get(part) is None
                    else "built under other " + part,
                )
    git = doc.get("environment", {}).get("git", {})
    if git.get("dirty") and not allow_dirty:
        violation("git-dirty", mid, "a clean git tree", f"dirty tree at {git.get('commit')}")
    return mid


def lineage(store: ManifestStore, mid: str, seen: set[str] | None = None) -> dict[str, Any]:
    """The recorded upstream tree of a manifest, following its deps' manifest links.

    Each node: ``{target, manifest, status, who, when, outs: [{path, sha256}], sources:
    [{path, xxh3}], code: [{path, xxh3}], params, checks, upstream: [node]}``; a link that
    does not resolve is a node with ``"missing": true``. Shared upstream appears once in
    full, then as ``"seen": true``."""
    seen = set() if seen is None else seen
    doc = store.get(mid)
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
