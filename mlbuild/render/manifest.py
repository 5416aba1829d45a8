"""Provenance records as text: `manifest show`, `history` and `diff`.

The records are manifest documents (provenance/records.py describes the format); a restore is shown
through `ManifestStore.view`, with the facts of the build it restores, by the caller.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..provenance.records import Manifest

__all__ = ["diff_lines", "history_line", "manifest_lines"]


def manifest_lines(mid: str, doc: Manifest) -> list[str]:
    """`manifest show`: one labelled line per fact, in the order a reviewer asks: what,
    when, who, from which code and inputs, what came out, what was judged."""
    git = doc["environment"].get("git") or {}
    lines = [
        f"manifest  {mid}",
        f"target    {doc['target']} ({doc['status']})",
        f"key       {doc['key']}",
        f"when      {doc['started']} .. {doc['finished']} ({doc['seconds']:.2f}s)",
        f"who       {doc['user']}@{doc['host']}, mlbuild {doc['mlbuild']}",
        f"git       {git.get('commit') or '-'}" + (" (dirty)" if git.get("dirty") else ""),
    ]
    if doc.get("restored_from"):
        lines.append(f"restored  from {doc['restored_from']}")
    lines.extend(f"command   {c}" for c in doc["command"] or ())
    if doc["python"]:
        lines.append(f"python    {doc['python']}")
    lines.extend(f"code      {p}  {d}" for p, d in sorted(doc["code"].items()))
    for dep in doc["deps"]:
        link = ""
        if "target" in dep:
            link = f"  <- {dep['target']} {dep.get('manifest') or '(no manifest)'}"
        lines.append(f"dep       {dep['path']}  {dep['xxh3']}{link}")
    lines.extend(f"param     {k} = {json.dumps(v)}" for k, v in sorted(doc["params"].items()))
    lines.extend(f"env       {k} = {v}" for k, v in sorted(doc["env"].items()))
    lines.extend(f"out       {o['path']}  {o['sha256']}  ({o['size']} bytes)" for o in doc["outs"])
    return lines + _judgement_lines(doc)


def _judgement_lines(doc: Manifest) -> list[str]:
    """Metrics, the promotion and the verdicts of gates and checks."""
    metrics = doc.get("metrics") or {}
    lines = [f"metric    {k} = {json.dumps(v)}" for k, v in sorted(metrics.items())]
    promotion = doc.get("promotion")
    if promotion:
        scores = ", ".join(f"{k} {v}" for k, v in sorted((promotion.get("scores") or {}).items()))
        lines.append(f"promoted  {promotion.get('winner')} by {promotion.get('by')} ({scores})")
    for g in doc.get("gates") or []:
        lines.append(f"gate      {'passed' if g.get('passed') else 'FAILED'}: {g.get('message')}")
    for c in doc.get("checks") or []:
        verdict = "passed" if c.get("passed") else f"FAILED ({c.get('severity')})"
        lines.append(f"check     {c.get('out')} {c.get('check')}: {verdict}: {c.get('message')}")
    return lines


def history_line(mid: str, doc: Manifest, overrides: Mapping[str, Any]) -> str:
    """`history`: one build per line, its params and metrics inline, then the ``--set``
    values of that build (``overrides``), as one would type them again. Metrics are
    formatted as `metrics show` formats them (`tables.fmt`); params as written (JSON), never
    rounded."""
    from ..config.params import override_text
    from .tables import fmt

    params = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(doc["params"].items()))
    metrics = doc.get("metrics") or {}
    shown = ", ".join(f"{k}={fmt(v)}" for k, v in sorted(metrics.items()))
    sets = "".join(f"  --set {override_text(k, v)}" for k, v in overrides.items())
    return f"{mid[:19]}…  {doc['finished']}  {doc['status']:8}  {params or '-'}" + (
        f"  [{shown}]" if shown else ""
    ) + sets


def diff_lines(
    a: tuple[str, Manifest], b: tuple[str, Manifest], changes: Sequence[Any]
) -> list[str]:
    """`diff A B`: which builds, then one line per difference (`manifest.diff_manifests`)."""
    (id_a, doc_a), (id_b, doc_b) = a, b
    lines = [
        f"a: {id_a} ({doc_a.get('target')}, {doc_a.get('finished')})",
        f"b: {id_b} ({doc_b.get('target')}, {doc_b.get('finished')})",
    ]
    lines.extend(
        f"{c['field']:9} {c['key']}: {json.dumps(c['a'])} -> {json.dumps(c['b'])}"
        for c in changes
    )
    if not changes:
        lines.append("no differences in deps, params, code, env, packages, outs or metrics")
    return lines
