"""Key components: everything that determines a target's outputs (SPEC §1), as plain data,
and the reasons two sets of components differ.

Build keys use the *actual* out digests of the immediate deps (constructive traces with
early cutoff): if an upstream reruns and writes identical bytes, nothing downstream
changes.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Any

from .. import observe
from ..codedeps import CodeScanner, EntryKind, entry_points
from ..config import DepKind, TargetSpec
from ..digest import same_value
from ..errors import MlbuildError
from ..kinds import ChangeKind, CheckKind
from ..results import Reason, ReasonKind
from ..store import Cache, OutRecord, StateMemo

__all__ = ["Keys", "code_diff", "diff_components"]


class Keys:
    """Computes key components over the stat memo (package versions asked once)."""

    def __init__(self, root: str, memo: StateMemo) -> None:
        self.root = root
        self.memo = memo
        self.scanner = CodeScanner(root, memo)
        self._packages: dict[str, str] = {}

    def package_version(self, name: str) -> str:
        if name not in self._packages:
            from importlib import metadata

            try:
                self._packages[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                self._packages[name] = "not installed"
        observer = observe.active()
        if observer is not None:
            observer.packages[name] = self._packages[name]
        return self._packages[name]

    def code_files(self, spec: TargetSpec) -> list[str]:
        entries = entry_points(spec.cmd, spec.python)
        entries += [
            (EntryKind.MODULE, c.options["python"].split(":", 1)[0])
            for c in spec.checks
            if c.check == CheckKind.PYTHON
        ]
        return self.scanner.files_for(entries)

    def dep_digests(
        self,
        spec: TargetSpec,
        upstream: Mapping[str, tuple[OutRecord, ...]],
        *,
        rehash: bool = False,
    ) -> dict[str, str]:
        """The digest of every dep. Target deps come from the upstream's records when
        deciding; with ``rehash`` (at commit) every dep is read again from the workspace,
        whatever produced it, so an out edited while its consumer ran is caught."""
        deps: dict[str, str] = {}
        for dep in spec.deps:
            if dep.kind is DepKind.TARGET:
                for rec in upstream[dep.value]:
                    deps[rec.path] = self.rehash(rec.path) if rehash else rec.xxh
                continue
            for path in dep.paths if dep.kind is DepKind.GLOB else (dep.value,):
                try:
                    deps[path] = self.memo.digest(path)[0].xxh
                except FileNotFoundError:
                    raise MlbuildError(
                        f"dep {path!r} of {spec.name!r} is missing",
                        hint="restore the file or remove it from deps",
                    ) from None
        return deps

    def rehash(self, rel: str) -> str:
        """The current digest of a workspace path ("missing" when it is gone)."""
        try:
            return self.memo.digest(rel, out=True)[0].xxh
        except (FileNotFoundError, NotADirectoryError):
            return "missing"

    def components(
        self, spec: TargetSpec, upstream: Mapping[str, tuple[OutRecord, ...]]
    ) -> dict[str, Any]:
        """Everything that determines the target's outputs (SPEC §1), as plain data."""
        comps: dict[str, Any] = {
            "cmd": list(spec.cmd) if spec.cmd is not None else None,
            "python": spec.python,
            "code": {path: self.memo.file_digest(path).xxh for path in self.code_files(spec)},
            "deps": self.dep_digests(spec, upstream),
            "params": dict(spec.params),
            # A secret joins the key by name only: its value is never written anywhere.
            "env": {**spec.env, **{name: {"secret": True} for name in spec.secrets}},
            "packages": {name: self.package_version(name) for name in spec.packages},
            "matrix": dict(spec.matrix),
            "outs": sorted(spec.outs),
        }
        # Validation joins the key only where declared, so plain targets keep their keys.
        if spec.checks:
            comps["checks"] = [c.to_json() for c in spec.checks]
        if spec.gates:
            comps["gate"] = [g.to_json() for g in spec.gates]
        if spec.promote is not None:
            comps["promote"] = spec.promote.to_json()
        return comps


def code_diff(cache: Cache, root: str, path: str, old_digest: str, max_lines: int = 40) -> str:
    """A unified diff of a code file against the version of the last build, if cached."""
    try:
        with open(cache.object_path(old_digest), encoding="utf-8") as f:
            old = f.read().splitlines()
        with open(os.path.join(root, path), encoding="utf-8") as f:
            new = f.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    lines = list(difflib.unified_diff(old, new, f"a/{path}", f"b/{path}", n=1, lineterm=""))
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
    return "\n".join(lines)


def diff_components(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Reason]:
    """Every difference between two sets of key components, as reasons (deterministic).

    Values are compared as the build key compares them (`digest.same_value`: canonical
    JSON text), so ``50`` → ``50.0`` or ``1`` → ``true``, which give another key, are named
    here too, never left to "recorded by another mlbuild key schema"."""
    reasons: list[Reason] = []
    for field_name in ("cmd", "python"):
        o, n = old.get(field_name), new.get(field_name)
        if not same_value(o, n):
            reasons.append(
                Reason(
                    ReasonKind.COMMAND,
                    field_name,
                    "; ".join(o) if isinstance(o, list) else o,
                    "; ".join(n) if isinstance(n, list) else n,
                )
            )
    mapped = (
        ("code", ReasonKind.CODE),
        ("deps", ReasonKind.DEP),
        ("params", ReasonKind.PARAM),
        ("env", ReasonKind.ENV),
        ("packages", ReasonKind.PACKAGE),
        ("matrix", ReasonKind.PARAM),
    )
    for field_name, kind in mapped:
        o_map: Mapping[str, Any] = old.get(field_name) or {}
        n_map: Mapping[str, Any] = new.get(field_name) or {}
        for key in sorted(set(o_map) | set(n_map)):
            if key not in o_map:
                reasons.append(Reason(kind, key, None, n_map[key], change=ChangeKind.ADDED))
            elif key not in n_map:
                reasons.append(Reason(kind, key, o_map[key], None, change=ChangeKind.REMOVED))
            elif not same_value(o_map[key], n_map[key]):
                reasons.append(Reason(kind, key, o_map[key], n_map[key]))
    for field_name in ("checks", "gate", "promote"):
        if not same_value(old.get(field_name), new.get(field_name)):
            reasons.append(
                Reason(ReasonKind.VALIDATION, field_name, old.get(field_name), new.get(field_name))
            )
    if not same_value(sorted(old.get("outs") or []), sorted(new.get("outs") or [])):
        reasons.append(Reason(ReasonKind.OUTS_DECLARED, "outs", old.get("outs"), new.get("outs")))
    return reasons
