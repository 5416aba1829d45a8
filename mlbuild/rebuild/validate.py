"""Validation in the commit path: a finished run's metrics are read, its tabular outs
profiled and checked, its gates judged, before anything is recorded. A failure raises
`CheckFailed`; `reject` then keeps the rejected outs in ``failed/`` and brings the
previous ones back from ``aside/``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from ..config import TargetSpec, is_tabular
from ..errors import BuildFailed, CheckFailed
from ..kinds import Severity
from ..metrics import evaluate_gates, read_metrics
from ..provenance.records import Manifest, Quality
from .context import Context
from .manifests import Manifests
from .materialize import Materializer

__all__ = ["Validator"]


class Validator:
    """Judges a finished run (`assess`) and undoes a rejected one (`reject`)."""

    def __init__(self, ctx: Context, manifests: Manifests, materializer: Materializer) -> None:
        self.ctx = ctx
        self.manifests = manifests
        self.materializer = materializer

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
            metrics, notes = read_metrics(self.ctx.root, spec.metrics)
            warnings = [f"{spec.name}: {note}" for note in notes]
        tabular = any(is_tabular(o) for o in spec.outs)
        # The previous build (drift's profiles, max_drop's metrics): a manifest read that
        # the commit of a target with neither tabular outs nor gates does not pay for.
        previous = self.manifests.recorded(spec.name) if tabular or spec.gates else None
        checks: list[dict[str, Any]] = []
        profile: dict[str, Any] = {}
        failures: list[str] = []
        if tabular:
            from ..checks import inspect_outs

            recorded = previous.get("profile") if previous else None
            old_profiles = (recorded or {}).get("tables") or {}
            try:
                results, profile = inspect_outs(self.ctx.root, spec.outs, spec.checks, old_profiles)
            except BuildFailed as exc:
                if spec.checks:
                    raise
                warnings.append(f"{spec.name}: no data profile: {exc.message}")
                results = []
            for r in results:
                checks.append(r.to_json())
                if not r.passed:
                    line = f"{r.check} check on {r.out}: {r.message}"
                    if r.severity == Severity.ERROR:
                        failures.append(line)
                    else:
                        warnings.append(f"{spec.name}: {line}")
        before = self._previous_metrics(spec, previous)
        gates = evaluate_gates(spec.name, spec.gates, metrics or {}, before)
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

    def _previous_metrics(
        self, spec: TargetSpec, previous: Manifest | None
    ) -> Mapping[str, Any] | None:
        """The metrics of ``spec``'s last successful build, for ``vs: previous`` gates: its
        manifest's, or, without one (a fresh clone: no .mlbuild/), those its lock entry
        recorded, which is the committed record of that build. Never "no previous build"
        while the lock file says there was one."""
        if previous is not None:
            return previous.get("metrics")
        entry = self.ctx.lock.entries.get(spec.name)
        return entry.metrics if entry is not None else None

    def reject(self, spec: TargetSpec, findings: tuple[dict[str, object], ...]) -> str:
        """After a failed check or gate: the rejected outs go to .mlbuild/failed/<target>/
        (with checks.json, the verdicts), and the previous outs come back from aside/, so
        the workspace and the lock entry are as before the build. Returns the failed dir."""
        self.materializer.keep_failed(spec)
        failed = self.ctx.layout.failed(spec.name)
        aside = self.ctx.layout.aside(spec.name)
        for rel in spec.outs:
            src = os.path.join(aside, rel)
            if os.path.lexists(src):
                os.replace(src, os.path.join(self.ctx.root, rel))
        os.makedirs(failed, exist_ok=True)
        with open(os.path.join(failed, "checks.json"), "w", encoding="utf-8") as f:
            json.dump(list(findings), f, indent=2, sort_keys=True)
            f.write("\n")
        return failed
