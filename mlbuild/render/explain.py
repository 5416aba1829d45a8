"""Why targets are stale: `mlbuild -n`, `-q --json`, `status` and `explain` (`why`).

Every reason is a `Reason` (results.py) and is worded by `Reason.describe`; this module only
lays reasons out: one line per stale target for a dry run (with the commands it would run
under it), a table row per target for `status`, a cause tree for `explain`, with the same
facts in ``--json``. `status` and `explain` also name the target's last failed attempt
while it would run with the key that failed (store/failures.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..results import Action, Decision, ReasonKind, TargetStatus

if TYPE_CHECKING:
    from ..config import PromoteSpec, TargetSpec
    from ..jobs.masking import Masker
    from ..jobs.spec import Job
    from ..queries import Explanation, StatusEntry
    from ..results import Reason

__all__ = [
    "explanation_json",
    "explanation_lines",
    "plan_json",
    "plan_lines",
    "status_json",
    "status_lines",
    "undeclared_text",
]

_LABEL = {
    Action.FRESH: "is fresh",
    Action.RESTORE: "would be restored from the cache",
    Action.RUN: "would run",
}

# How `status` words a state whose JSON value is one word ("temp").
_STATUS_WORDS = {TargetStatus.TEMP: "temp (in cache)"}


def undeclared_text(paths: Sequence[str]) -> str:
    """What a target's key does not cover (its last build's undeclared reads), or ""."""
    if not paths:
        return ""
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    return f"read {shown}, which it does not declare: its key does not cover it"


_COMMAND_INDENT = "    "


def _planned(
    d: Decision, specs: Mapping[str, TargetSpec], root: str, environ: Mapping[str, str]
) -> Job | None:
    """The Job a target that would run would get (none for a promotion, which copies)."""
    from ..jobs.spec import planned_job  # only -n needs jobs/: not status, not explain

    spec = specs[d.target]
    if d.action is not Action.RUN or spec.promote is not None:
        return None
    return planned_job(spec, root=root, environ=environ)


def _promotion(d: Decision, spec: TargetSpec) -> PromoteSpec | None:
    """What a promotion that would run would do (it runs no command: it copies)."""
    return spec.promote if d.action is Action.RUN else None


def _masked(value: Any, mask: Masker) -> Any:
    """``value`` (a callable's argument, as JSON) with secret values as ``***``."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, (list, tuple)):
        return [_masked(v, mask) for v in value]
    if isinstance(value, dict):
        return {mask(str(k)): _masked(v, mask) for k, v in value.items()}
    return value


def _planned_json(
    d: Decision, specs: Mapping[str, TargetSpec], root: str, environ: Mapping[str, str]
) -> dict[str, Any]:
    """``commands`` (each as the shell gets it, or the callable's call as text), ``call``
    (the callable and its keyword arguments) and ``promote``, for a target that would run."""
    job = _planned(d, specs, root, environ)
    promotion = _promotion(d, specs[d.target])
    call = None
    if job is not None and job.python is not None:
        call = {"callable": job.python, "kwargs": _masked(job.call_kwargs(), job.text_masker())}
    return {
        "commands": list(job.command_text()) if job is not None else [],
        "call": call,
        "promote": promotion.to_json() if promotion is not None else None,
    }


def plan_json(
    decisions: Sequence[Decision],
    specs: Mapping[str, TargetSpec],
    *,
    root: str,
    environ: Mapping[str, str],
) -> dict[str, Any]:
    """``-n --json`` / ``-q --json``: every decision, with what a run would execute.
    ``environ``: where a build would read secrets, whose values are masked."""
    return {
        "stale": any(d.action is not Action.FRESH for d in decisions),
        "targets": [
            {
                "target": d.target,
                "action": d.action.value,
                "key": d.key,
                "reasons": [r.to_json() for r in d.reasons],
                **_planned_json(d, specs, root, environ),
            }
            for d in decisions
        ],
    }


def plan_lines(
    decisions: Sequence[Decision],
    specs: Mapping[str, TargetSpec],
    *,
    root: str,
    environ: Mapping[str, str],
) -> list[str]:
    """`mlbuild -n`: what would run or be restored, and why, each command that would run
    indented under its target (as ``make -n`` and ``snakemake -np`` print them); or that
    nothing would. A multi-line command keeps its lines, each indented alike (its final
    newline, which a YAML ``|`` block adds, is not shown)."""
    lines = []
    for d in decisions:
        if d.action is Action.FRESH:
            continue
        verb = "would restore" if d.action is Action.RESTORE else "would run"
        why = "; ".join(r.describe() for r in d.reasons)
        lines.append(f"{verb:13} {d.target}  ({why})")
        job = _planned(d, specs, root, environ)
        texts = job.command_text() if job is not None else ()
        promotion = _promotion(d, specs[d.target])
        if promotion is not None:
            p = promotion
            texts = (f"promote the best of {p.pattern} by {p.by} ({p.mode})",)
        for text in texts:
            for line in text.rstrip("\n").split("\n"):
                lines.append(f"{_COMMAND_INDENT}{line}".rstrip())
    return lines or ["mlbuild: nothing to do, everything is fresh"]


def status_json(entries: Sequence[StatusEntry]) -> dict[str, Any]:
    return {
        "targets": [
            {
                "target": e.target,
                "status": e.status.value,
                "reasons": [r.to_json() for r in e.reasons],
                "undeclared_reads": list(e.undeclared),
                "last_failure": e.failure.to_json() if e.failure is not None else None,
            }
            for e in entries
        ]
    }


def status_lines(entries: Sequence[StatusEntry]) -> list[str]:
    """One aligned row per target: name, status, then its last failed attempt (when it
    would run with the key that failed), every reason and undeclared reads."""
    width = max((len(e.target) for e in entries), default=0)
    words = {e.target: _STATUS_WORDS.get(e.status, e.status.value) for e in entries}
    column = max([11, *(len(w) for w in words.values())])
    lines = []
    for e in entries:
        failed = f"last attempt {e.failure.describe()}" if e.failure is not None else ""
        texts = [failed, *(r.describe() for r in e.reasons), undeclared_text(e.undeclared)]
        reason = "; ".join(t for t in texts if t)
        lines.append(f"{e.target:<{width}}  {words[e.target]:<{column}}  {reason}".rstrip())
    return lines


def _code_diff(node: Explanation, reason: Reason) -> dict[str, str]:
    """The diff of a changed code file, under its `code` reason only: a script that is
    also a declared dep has a `dep` reason too, and its diff is shown once."""
    diff = node.code_diffs.get(reason.subject)
    return {"diff": diff} if diff and reason.kind is ReasonKind.CODE else {}


def explanation_json(node: Explanation) -> dict[str, Any]:
    d = node.decision
    return {
        "target": d.target,
        "action": d.action.value,
        "key": d.key,
        "reasons": [{**r.to_json(), **_code_diff(node, r)} for r in d.reasons],
        "undeclared_reads": list(node.undeclared),
        "last_failure": node.failure.to_json() if node.failure is not None else None,
        "upstream": [explanation_json(u) for u in node.upstream],
    }


def explanation_lines(node: Explanation, indent: str = "") -> list[str]:
    """The cause tree: the target's verdict, its reasons (code diffs under them), then
    each stale upstream target indented below."""
    d = node.decision
    lines = [f"{indent}{d.target} {_LABEL[d.action]}"]
    for r in d.reasons:
        lines.append(f"{indent}  - {r.describe()}")
        diff = _code_diff(node, r).get("diff")
        if diff:
            lines.extend(f"{indent}      {line}" for line in diff.splitlines())
    if node.undeclared:
        lines.append(f"{indent}  ! its last build {undeclared_text(node.undeclared)}")
    if node.failure is not None:
        lines.append(f"{indent}  ! last attempt with this key: {node.failure.describe()}")
    for up in node.upstream:
        lines.extend(explanation_lines(up, indent + "  "))
    return lines
