"""What an audit reports: its findings (violations) and the reproductions it found.

Apart from audit.py so that readers of a report (the card, the renderers) need not import
the audit's rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypedDict

__all__ = ["AuditCheck", "AuditReport", "Committed", "Finding", "ReproductionSummary"]


class AuditCheck(str, Enum):
    """The check a finding violates (the table in audit.py). Written as ``.value`` into
    `mlbuild audit` output, its JSON and the card."""

    BUILT = "built"
    HISTORY = "history"
    MANIFEST = "manifest"
    MANIFEST_ID = "manifest-id"
    SCHEMA = "schema"
    CONSISTENCY = "consistency"
    LOCK = "lock"
    OUT = "out"
    UPSTREAM = "upstream"
    RESTORED_FROM = "restored-from"
    CHECK = "check"
    GATE = "gate"
    GIT_DIRTY = "git-dirty"
    SIGNATURE = "signature"
    REPRODUCTION = "reproduction"
    COMMITTED = "committed"  # only with --require-built (`AuditReport.require_built`)


@dataclass(frozen=True)
class Finding:
    """One violation: which target, which check, the file or manifest, expected vs found."""

    target: str
    check: AuditCheck
    subject: str
    expected: str
    found: str

    def to_json(self) -> dict[str, str]:
        return {
            "target": self.target,
            "check": self.check.value,
            "subject": self.subject,
            "expected": self.expected,
            "found": self.found,
        }


@dataclass(frozen=True)
class Committed:
    """An audited build that `mlbuild commit` recorded (not built by mlbuild): reported,
    and a violation only when builds are required (`AuditReport.require_built`)."""

    target: str
    manifest: str
    subject: str  # the commit's manifest file, workspace-relative
    by: str  # user@host
    when: str  # finished
    restored: bool  # the audited record restores a commit

    def describe(self) -> str:
        how = "a restore of outs committed" if self.restored else "committed"
        return f"{how} by {self.by} at {self.when}, not built by mlbuild"

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "manifest": self.manifest,
            "by": self.by,
            "when": self.when,
            "restored": self.restored,
        }


class ReproductionSummary(TypedDict):
    """The latest reproduction of an audited build, as the report (and the card) shows it."""

    manifest: str  # the reproduction record's id
    reproduces: str  # the build it re-ran
    verdict: str  # a records.Verdict value
    finished: str
    differing: list[str]
    tolerances: dict[str, float]
    summary: str  # records.reproduction_line


@dataclass
class AuditReport:
    targets: list[str]
    manifests: dict[str, str | None] = field(default_factory=dict)  # target → audited id
    signatures_required: bool = False
    findings: list[Finding] = field(default_factory=list)
    # target → the latest reproduction of its audited build (`audit._judge_reproduction`)
    reproductions: dict[str, ReproductionSummary] = field(default_factory=dict)
    # audited builds that `mlbuild commit` recorded, in audit order (not violations)
    committed: list[Committed] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def require_built(self) -> None:
        """`audit --require-built`: every committed build is a ``committed`` violation
        (an auditor who must know that mlbuild ran every command)."""
        for c in self.committed:
            expected = "built by mlbuild"
            self.findings.append(
                Finding(c.target, AuditCheck.COMMITTED, c.subject, expected, c.describe())
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "committed": [c.to_json() for c in self.committed],
            "targets": [{"target": t, "manifest": self.manifests.get(t)} for t in self.targets],
            "findings": [f.to_json() for f in self.findings],
            "reproductions": [
                {"target": t, **self.reproductions[t]}
                for t in self.targets
                if t in self.reproductions
            ],
        }
