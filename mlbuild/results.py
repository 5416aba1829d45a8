"""Typed results shared by every layer: decisions with reasons, target and build results.

Plain frozen dataclasses and enums (no sentinels, no magic strings), so the CLI, the JSON
output and the Python API all speak the same vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .errors import ExitCode
from .kinds import ChangeKind

__all__ = [
    "Action",
    "BuildResult",
    "Decision",
    "Outcome",
    "Reason",
    "ReasonKind",
    "TargetResult",
    "TargetStatus",
]


class Action(Enum):
    """What the rebuilder decided for one target."""

    FRESH = "fresh"
    RESTORE = "restore"
    RUN = "run"


class ReasonKind(Enum):
    NEVER_BUILT = "never-built"
    FORCED = "forced"
    ALWAYS = "always"
    UPSTREAM = "upstream"
    COMMAND = "command"
    CODE = "code"
    DEP = "dep"
    PARAM = "param"
    ENV = "env"
    PACKAGE = "package"
    VALIDATION = "validation"  # checks, gate or promote changed
    OUTS_DECLARED = "outs-declared"
    OUT_MISSING = "out-missing"
    OUT_MODIFIED = "out-modified"
    KEY_SCHEMA = "key-schema"
    UNDECLARED_READ = "undeclared-read"  # a file it read but does not declare changed


@dataclass(frozen=True)
class Reason:
    """One cause of staleness: what changed, with the old and new value where it helps."""

    kind: ReasonKind
    subject: str
    old: Any = None
    new: Any = None
    detail: str = ""
    # Added, removed or changed: told by this, not by old/new, since None is a value
    # (YAML null). A plain word compares equal to its member.
    change: ChangeKind | str = ChangeKind.CHANGED

    def describe(self) -> str:
        k, s = self.kind, self.subject
        if k is ReasonKind.NEVER_BUILT:
            return "never built"
        if k is ReasonKind.FORCED:
            return "forced (-B)"
        if k is ReasonKind.ALWAYS:
            return "always: true"
        if k is ReasonKind.UPSTREAM:
            return f"upstream {s} is stale" + (f": {self.detail}" if self.detail else "")
        if k is ReasonKind.OUT_MISSING:
            return f"out {s} is missing"
        if k is ReasonKind.OUT_MODIFIED:
            return f"out {s} was modified"
        if k is ReasonKind.UNDECLARED_READ:
            return f"{s}, which it read but does not declare, changed"
        if k is ReasonKind.KEY_SCHEMA:
            return "recorded by another mlbuild key schema"
        if self.change == ChangeKind.ADDED:
            return f"{k.value} {s} added" + (f": {_short(self.new)}" if k in _VALUED else "")
        if self.change == ChangeKind.REMOVED:
            return f"{k.value} {s} removed"
        if k in _VALUED:
            old, new = _short_pair(self.old, self.new)
            return f"{k.value} {s}: {old} → {new}"
        return f"{k.value} {s} changed" + (f" ({self.detail})" if self.detail else "")

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value, "subject": self.subject}
        changed = self.change == ChangeKind.CHANGED
        if self.change != ChangeKind.ADDED and (self.old is not None or changed):
            data["old"] = self.old
        if self.change != ChangeKind.REMOVED and (self.new is not None or changed):
            data["new"] = self.new
        if self.detail:
            data["detail"] = self.detail
        data["text"] = self.describe()
        return data


_VALUED = {
    ReasonKind.PARAM,
    ReasonKind.ENV,
    ReasonKind.PACKAGE,
    ReasonKind.COMMAND,
    ReasonKind.VALIDATION,
}


def _short_pair(old: Any, new: Any, width: int = 80) -> tuple[str, str]:
    """Both values shortened around their first difference, so a change late in a long
    command stays visible: ``…--lr 0.1 --out m.pkl`` → ``…--lr 0.2 --out m.pkl``."""
    import json

    a = old if isinstance(old, str) else json.dumps(old, sort_keys=True)
    b = new if isinstance(new, str) else json.dumps(new, sort_keys=True)
    if len(a) <= width and len(b) <= width:
        return a, b
    first = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    start = max(0, first - width // 4)

    def cut(text: str) -> str:
        piece = text[start : start + width - 6]
        return ("..." if start else "") + piece + ("..." if start + width - 6 < len(text) else "")

    return cut(a), cut(b)


def _short(value: Any) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class Decision:
    """FRESH / RESTORE / RUN for one target, always with the reasons behind it."""

    target: str
    action: Action
    key: str | None  # None when an upstream is stale and the key cannot be known yet
    reasons: tuple[Reason, ...] = ()
    components: dict[str, Any] = field(default_factory=dict)


class TargetStatus(Enum):
    """`mlbuild status` vocabulary."""

    FRESH = "fresh"
    STALE = "stale"
    RESTORABLE = "restorable"
    NEVER_BUILT = "never-built"
    TEMP = "temp"  # a fresh `temp` target whose outs were removed; the cache holds them


class Outcome(Enum):
    """How one target ended in a build."""

    FRESH = "fresh"
    RESTORED = "restored"
    RAN = "ran"
    FAILED = "failed"
    SKIPPED = "skipped"  # an upstream failed, or the build stopped first
    WOULD_RUN = "would-run"  # dry run
    WOULD_RESTORE = "would-restore"  # dry run


@dataclass(frozen=True)
class TargetResult:
    target: str
    outcome: Outcome
    seconds: float = 0.0
    reasons: tuple[Reason, ...] = ()
    error: str = ""
    log_path: str | None = None
    tail: tuple[str, ...] = ()
    recorded: bool = True
    checks_failed: bool = False  # FAILED because a data check or gate said no (exit 3)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "target": self.target,
            "outcome": self.outcome.value,
            "seconds": round(self.seconds, 3),
            "reasons": [r.to_json() for r in self.reasons],
        }
        if self.error:
            data["error"] = self.error
        if self.log_path:
            data["log"] = self.log_path
        if not self.recorded:
            data["recorded"] = False
        if self.checks_failed:
            data["checks_failed"] = True
        return data


@dataclass(frozen=True)
class BuildResult:
    """Everything a build did, in build order."""

    targets: tuple[TargetResult, ...]
    seconds: float
    interrupted: bool = False
    pushed: str = ""  # what --push sent to the remote (TransferStats.describe), if it ran

    def count(self, outcome: Outcome) -> int:
        return sum(1 for t in self.targets if t.outcome is outcome)

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(
            t.outcome not in (Outcome.FAILED, Outcome.SKIPPED) for t in self.targets
        )

    @property
    def exit_code(self) -> ExitCode:
        """0 ok; 3 when every failure is a data check or gate (built, but rejected); else 1;
        130 interrupted (see errors.py)."""
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if self.ok:
            return ExitCode.OK
        failed = [t for t in self.targets if t.outcome is Outcome.FAILED]
        if failed and all(t.checks_failed for t in failed):
            return ExitCode.CHECK_FAILED
        return ExitCode.BUILD_FAILED

    def by_name(self) -> dict[str, TargetResult]:
        return {t.target: t for t in self.targets}
