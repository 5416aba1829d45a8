"""How records are shown and compared: a restore seen through the build it restores, and
the field-by-field diff of two records.

A restore or rollback records only who, when and where of the restore itself
(`RESTORE_OWN_FIELDS`); everything else it holds is a copy of the build it restores
(``restored_from``). `restore_view` shows a restore with the build's facts, and
`restore_disagreements` names every copied field that differs from the build's.
"""

from __future__ import annotations

from typing import Any, cast

from ..digest import same_value
from .records import DepEntry, Manifest, Quality

__all__ = ["RESTORE_OWN_FIELDS", "diff_manifests", "restore_disagreements", "restore_view"]

#: What a restore or rollback records about itself: who, when and where it ran, with what,
#: and what it restores. Every other field is a copy of the build it restores (its
#: ``environment``'s python, platform and git are those of the restoring checkout too, and
#: its deps' ``manifest`` links and secrets' ``set`` flags are the restoring workspace's).
RESTORE_OWN_FIELDS = (
    "status",
    "restored_from",
    "started",
    "finished",
    "seconds",
    "user",
    "host",
    "mlbuild",
    "executor",
    "exit_code",
    "log",
    "overrides",  # --set values are the restoring invocation's (the key fixes the values)
)


def _build_facts(doc: Manifest) -> dict[str, Any]:
    """What a restore must copy from its build, normalized so that an honest copy is
    equal whatever mlbuild version wrote either side."""
    quality = Quality.of(doc)
    env = doc.get("env") or {}
    return {
        "target": doc.get("target"),
        "key": doc.get("key"),
        "components": doc.get("components"),
        "command": doc.get("command"),
        "python": doc.get("python"),
        "code": doc.get("code") or {},
        "deps": [
            {k: v for k, v in sorted(d.items()) if k != "manifest"} for d in doc.get("deps", [])
        ],
        "params": doc.get("params") or {},
        "env": {
            k: {"secret": v.get("secret")} if isinstance(v, dict) else v for k, v in env.items()
        },
        "packages": (doc.get("environment") or {}).get("packages") or {},
        "outs": sorted((o for o in doc.get("outs", [])), key=lambda o: str(o.get("path"))),
        "metrics": quality.metrics,
        "checks": list(quality.checks),
        "gates": list(quality.gates),
        "profile": quality.profile,
        "promotion": quality.promotion,
    }


def restore_disagreements(restore: Manifest, build: Manifest) -> list[str]:
    """The fields of ``restore`` that differ from the ``build`` it restores, outside its
    own (`RESTORE_OWN_FIELDS`): an honest restore has none."""
    mine, theirs = _build_facts(restore), _build_facts(build)
    return [name for name in mine if not same_value(mine[name], theirs[name])]


def restore_view(restore: Manifest, build: Manifest) -> Manifest:
    """``restore`` as it may be shown or judged: every fact from its ``build`` (metrics,
    checks, gates, profile, promotion, environment, params, code, deps, outs…), only its
    own fields (`RESTORE_OWN_FIELDS`) and its deps' manifest links from itself."""
    # Field by field over both records: a TypedDict has no typed key iteration.
    view: dict[str, Any] = {k: v for k, v in build.items() if k not in RESTORE_OWN_FIELDS}
    mine: dict[str, Any] = dict(restore)
    view.update({k: mine[k] for k in RESTORE_OWN_FIELDS if k in mine})
    links = {d.get("path"): d.get("manifest") for d in restore.get("deps", [])}
    deps: list[DepEntry] = []
    for dep in build.get("deps", []):
        dep = DepEntry(**dep)
        if "target" in dep:
            dep["manifest"] = links.get(dep.get("path"))
        deps.append(dep)
    view["deps"] = deps
    return cast(Manifest, view)  # both sides were parsed; the result has a build's fields


def diff_manifests(a: Manifest, b: Manifest) -> list[dict[str, Any]]:
    """Differences between two manifests, field by field, deterministic.

    Each: ``{"field", "key", "a", "b"}`` (``None`` where a side lacks the key)."""

    def flat(doc: Manifest) -> dict[str, dict[str, Any]]:
        return {
            "command": {"command": doc.get("command"), "python": doc.get("python")},
            "deps": {d["path"]: d.get("xxh3") for d in doc.get("deps", [])},
            "params": dict(doc.get("params", {})),
            "code": dict(doc.get("code", {})),
            "env": dict(doc.get("env", {})),
            "packages": dict(doc.get("environment", {}).get("packages", {})),
            "python": {"version": doc.get("environment", {}).get("python")},
            "git": dict(doc.get("environment", {}).get("git", {})),
            "outs": {o["path"]: o.get("sha256") for o in doc.get("outs", [])},
            "metrics": dict(doc.get("metrics") or {}),
            # What the build was judged by: the declared validation (key components) and
            # the verdicts, one entry per check (out, kind, column) and per gate.
            "validation": {
                part: (doc.get("components") or {}).get(part)
                for part in ("checks", "gate", "promote")
                if (doc.get("components") or {}).get(part) is not None
            },
            "verdicts": {
                **{
                    f"{c.get('out')}: {c.get('check')}"
                    + (f" {c['column']}" if c.get("column") else ""): c.get("passed")
                    for c in doc.get("checks") or []
                },
                **{f"gate {g.get('metric')}": g.get("passed") for g in doc.get("gates") or []},
            },
            "promotion": {
                "winner": (doc.get("promotion") or {}).get("winner"),
                **{
                    f"score {k}": v
                    for k, v in ((doc.get("promotion") or {}).get("scores") or {}).items()
                },
            }
            if doc.get("promotion")
            else {},
        }

    fa, fb = flat(a), flat(b)
    changes: list[dict[str, Any]] = []
    for field_name in fa:
        for key in sorted(set(fa[field_name]) | set(fb[field_name])):
            va, vb = fa[field_name].get(key), fb[field_name].get(key)
            if not same_value(va, vb):  # as the key compares: 50 → 50.0 is a change
                changes.append({"field": field_name, "key": key, "a": va, "b": vb})
    return changes
