"""`mlbuild commit`: accept the outs in the workspace as the result of the current key,
running nothing (``dvc commit``, ``make -t``, ``snakemake --touch``): after a comment-only
edit of a training script, or for outs made by hand.

A commit is a build whose command did not run. Targets go in build order, over the
selected targets' upstream closure::

    upstream not selected ─▶ must be FRESH, else refused (commit it too, or build it)
    selected, FRESH       ─▶ nothing to do ("current")
    selected, stale       ─▶ outs all there? ──no──▶ refused, naming them (exit 1)
                               │yes
                             data checks + gates (Validator.assess: a commit cannot pass
                             a gate a build would fail) ─▶ hash + store outs ─▶ manifest
                             (status commit) ─▶ run-cache entry ─▶ lock entry

A committed upstream's new outs feed its downstream's key, as a build's would. Every
target is judged before anything is recorded (`_judge`): a refusal or a failed gate
leaves no manifest, run-cache entry or lock entry behind (only cache objects, which
nothing points at). The lock file is saved once, at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..errors import BuildFailed
from ..kinds import ManifestStatus
from ..results import Action, Decision
from ..store import LockEntry, OutRecord

if TYPE_CHECKING:
    from ..graph import BuildGraph
    from ..provenance.records import Quality
    from . import Rebuilder

__all__ = ["Accepted", "AcceptOutcome", "accept"]


class AcceptOutcome(str, Enum):
    """What `mlbuild commit` did with a target (``outcome`` in its JSON)."""

    COMMITTED = "committed"
    WOULD_COMMIT = "would-commit"  # -n
    CURRENT = "current"  # already fresh: nothing to commit


@dataclass(frozen=True)
class Accepted:
    """One selected target of a commit."""

    target: str
    outcome: AcceptOutcome
    key: str
    manifest: str | None  # the commit manifest written (None: -n, or already current)
    outs: tuple[OutRecord, ...]
    reasons: tuple[str, ...] = ()  # why it was stale (what the commit accepts)
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "outcome": self.outcome.value,
            "key": self.key,
            "manifest": self.manifest,
            "outs": [{"path": o.path, "xxh3": o.xxh} for o in self.outs],
            "reasons": list(self.reasons),
            "warnings": list(self.warnings),
        }


def accept(
    rebuilder: Rebuilder, graph: BuildGraph, selected: list[str], *, dry_run: bool
) -> list[Accepted]:
    """Commit ``selected`` (see the module docstring); -n (``dry_run``) hashes the outs to
    give downstream keys but writes nothing. Saves the lock file unless ``dry_run``."""
    judged = _judge(rebuilder, graph, selected)
    if dry_run:
        return [
            replace(a, outcome=AcceptOutcome.WOULD_COMMIT) if a.outcome is _PENDING else a
            for a, _, _ in judged
        ]
    results: list[Accepted] = []
    for found, decision, quality in judged:
        if found.outcome is not _PENDING:
            results.append(found)
            continue
        assert decision is not None and quality is not None and decision.key is not None
        mid = rebuilder.manifests.write_manifest(
            found.target,
            decision,
            ManifestStatus.COMMIT.value,
            found.outs,
            time.time(),
            quality=quality,
        )
        rebuilder.ctx.cache.put_run(decision.key, found.target, list(found.outs), mid, None)
        entry = LockEntry(decision.key, decision.components, found.outs, quality.metrics, {})
        rebuilder.ctx.lock.record(found.target, entry)
        results.append(replace(found, outcome=AcceptOutcome.COMMITTED, manifest=mid))
    rebuilder.save()
    return results


_PENDING = AcceptOutcome.WOULD_COMMIT  # judged, not yet written


def _judge(
    rebuilder: Rebuilder, graph: BuildGraph, selected: list[str]
) -> list[tuple[Accepted, Decision | None, Quality | None]]:
    """Every target of the closure, in build order, keyed and judged (refusals raise
    here, before anything is recorded); the selected ones come back."""
    upstream: dict[str, tuple[OutRecord, ...]] = {}
    judged: list[tuple[Accepted, Decision | None, Quality | None]] = []
    chosen = set(selected)
    for name in graph.closure(selected):
        spec = rebuilder.ctx.pipeline.targets[name]
        decision = rebuilder.decider.decide(spec, upstream, force=False)
        assert decision.key is not None  # decide (unlike decide_behind) always keys
        if decision.action is Action.FRESH:
            upstream[name] = rebuilder.decider.current_outs(name)
            if name in chosen:
                current = Accepted(name, AcceptOutcome.CURRENT, decision.key, None, ())
                judged.append((current, None, None))
            continue
        if name not in chosen:
            raise BuildFailed(
                f"cannot commit {_below(graph, name, chosen)}: its upstream {name} is stale",
                hint=f"commit it too (`mlbuild commit {name} ...`) or build it first "
                f"(`mlbuild {name}`)",
            )
        missing = [rel for rel in spec.outs if rebuilder.keys.rehash(rel) == "missing"]
        if missing:
            raise BuildFailed(
                f"cannot commit {name}: declared out(s) missing: {', '.join(missing)}",
                hint=f"make them first, or build it: `mlbuild {name}`",
            )
        quality, warnings = rebuilder.validator.assess(spec, None)
        # hashes (xxh3 + sha256) and, unless options.store is off (-n), stores the objects
        outs = rebuilder.committer._store_outs(spec)
        upstream[name] = outs
        reasons = tuple(r.describe() for r in decision.reasons)
        found = Accepted(name, _PENDING, decision.key, None, outs, reasons, tuple(warnings))
        judged.append((found, decision, quality))
    return judged


def _below(graph: BuildGraph, stale: str, chosen: set[str]) -> str:
    """The selected targets that depend on ``stale`` (for the refusal's message)."""
    return ", ".join(sorted(t for t in chosen if stale in graph.closure([t])))
