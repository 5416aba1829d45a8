"""The recorded lineage of a manifest: its upstream tree, following the deps' manifest
links (`mlbuild lineage`, the card, the report)."""

from __future__ import annotations

from typing import Any

from .records import ManifestError
from .store import ManifestStore

__all__ = ["lineage"]


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
    if doc.get("overrides"):
        node["overrides"] = doc["overrides"]  # which of them --set gave, not a params file
    node["checks"] = doc.get("checks") or []
    # Upstream in target-name order (ids differ between identical builds; names do not).
    linked = {(d.get("target", ""), d.get("manifest") or "") for d in doc.get("deps", [])}
    links = [m for _, m in sorted(linked) if m]
    links = list(dict.fromkeys(links))
    node["upstream"] = [lineage(store, link, seen) for link in links]
    return node

