"""`mlbuild audit`: prove that what is in the workspace is what the manifests say was built.

For each target and its whole upstream closure, in build order:

====================  ==================================================================
check                 violation when
====================  ==================================================================
``built``             the lock file has no entry for the target
``history``           a line of the target's history index is not a manifest id
``manifest``          the target's latest manifest, or the one of the lock entry's key,
                      is missing, unreadable, not JSON, not an object or malformed
                      (parse.parse_manifest), or names another target
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
                      only views.RESTORE_OWN_FIELDS are the restore's own)
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
``committed``         only with ``--require-built``: the build was recorded by `mlbuild
                      commit` (or restores such a record): its outs were accepted, no
                      command ran. Without the flag it is listed (``committed``), not a
                      violation
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

from ..config import Pipeline
from ..digest import canonical_json
from ..kinds import ManifestStatus, Verdict
from ..store import Cache, LockFile
from .audit_rules import TargetAudit, audit_target
from .findings import AuditCheck, AuditReport, Finding, ReproductionSummary
from .records import Manifest, ManifestError, is_restore, reproduction_line
from .signing import TrustedKeys
from .store import ManifestStore
from .views import restore_disagreements

__all__ = ["audit"]


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
    audited: list[tuple[str, Manifest]] = []
    for name in order:
        target = TargetAudit(name, pipeline, lock, cache, store, report, allow_dirty)
        found, doc = audit_target(target)
        report.manifests[name] = found
        if found is not None and doc is not None:
            audited.append((name, doc))
            if judged:
                problem = _signature_problem(store, found, doc, trusted, require_signatures)
                if problem is not None:
                    subject = os.path.relpath(store.sig_path(found), pipeline.root)
                    report.findings.append(Finding(name, AuditCheck.SIGNATURE, subject, *problem))
            _judge_reproduction(name, found, doc, store, report, trusted if judged else None)
    if judged:
        _judge_links(store, audited, {m for m in report.manifests.values() if m}, trusted, report)
    return report


def _judge_reproduction(
    name: str,
    mid: str,
    doc: Manifest,
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
    builds = _reproducible_builds(mid, doc, store)

    def unusable(exc: ManifestError) -> None:
        report.findings.append(
            Finding(name, AuditCheck.REPRODUCTION, exc.subject, exc.expected, exc.found)
        )

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
        if record.get("status") != ManifestStatus.REPRODUCTION or record.get("target") != name:
            subject = store.shown(store.path(rid))
            found = f"a {record.get('status')} manifest of {record.get('target')}"
            report.findings.append(
                Finding(name, AuditCheck.REPRODUCTION, subject, f"a reproduction of {name}", found)
            )
            continue
        if record["reproduces"] not in builds:
            continue  # of another build of the target
        verdict = Verdict(record["verdict"])
        line = reproduction_line(record)
        report.reproductions[name] = _summary(rid, record)
        subject = store.shown(store.path(rid))
        if not verdict.reproducible:
            expected = "reproducible (bit-identical, or within the tolerances given)"
            report.findings.append(Finding(name, AuditCheck.REPRODUCTION, subject, expected, line))
        if trusted is not None:
            bad = _signature_problem(store, rid, record, trusted, report.signatures_required)
            if bad is not None:
                shown = store.shown(store.sig_path(rid))
                report.findings.append(Finding(name, AuditCheck.SIGNATURE, shown, *bad))
        return


def _reproducible_builds(mid: str, doc: Manifest, store: ManifestStore) -> set[str]:
    """The builds whose reproduction counts for audited record ``mid``: itself, and for a
    restore the build it restores."""
    builds = {mid}
    if is_restore(doc):
        try:
            source = store.source_build(doc)
        except ManifestError:
            source = None  # the restored-from check names it
        if source is not None:
            builds.add(source[0])
    return builds


def _summary(rid: str, record: Manifest) -> ReproductionSummary:
    return {
        "manifest": rid,
        "reproduces": record["reproduces"],
        "verdict": Verdict(record["verdict"]).value,
        "finished": record["finished"],
        "differing": list(record["differing"]),
        "tolerances": dict(record["tolerances"]),
        "summary": reproduction_line(record),
    }


def _judge_links(
    store: ManifestStore,
    audited: list[tuple[str, Manifest]],
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
                finding = Finding(name, AuditCheck.SIGNATURE, subject, expected, problem[1])
                report.findings.append(finding)
            queue.append((name, linked))


def _signature_problem(
    store: ManifestStore,
    mid: str,
    doc: Manifest,
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
    if not is_restore(doc):
        return expected, "unsigned"
    why = _unvouched(store, doc, trusted)
    return None if why is None else (expected, f"unsigned, and {why}")


def _unvouched(store: ManifestStore, doc: Manifest, trusted: TrustedKeys) -> str | None:
    """Why the build an unsigned restore or rollback restores does not vouch for it (None:
    it does). A CI clone that pulls signed builds holds no signing key, so its restores
    are unsigned: one is accepted when the build it restores is signed by a trusted key
    and every field but the restore's own who/when/where (views.RESTORE_OWN_FIELDS)
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
