"""Provenance manifests: the record format, and what builds a record.

One JSON record per build (or restore) of a target.

Format (``"schema": "mlbuild.manifest/v1"``; manifests are never discarded on a version
change, so a reader must handle every version it ever wrote)::

    {
      "schema": "mlbuild.manifest/v1",
      "target": "model:lr",
      "status": "built" | "restored" | "rollback" | "commit",
      "key": "xxh3-128:…",  "components": {… the build key's inputs …},
      "started": "2026-11-27T00:25:00.123456Z", "finished": "…", "seconds": 1.234,
      "user": "alice", "host": "build-01", "mlbuild": "0.1.0",
      "command": ["…"] | null, "python": "pkg.mod:fn" | null,
      "code": {"path": "xxh3-128:…"},
      "deps": [{"path", "xxh3", "target"?, "manifest"?}],   # target deps link upstream
      "params": {…}, "env": {…},
      "environment": {"python", "platform", "packages": {…}, "git": {"commit", "dirty"}},
      "outs": [{"path", "type", "size", "xxh3", "sha256"}],
      "metrics": {"accuracy": 0.97} | null, "checks": [{"check", "out", "severity",
      "passed", "message", "column"?, "value"?}], "gates": [{"metric", "min"|"max"|
      "max_drop", "passed", "value", "previous", "message"}],
      "promotion": {"from", "by", "mode", "winner", "scores": {target: score}}  # promote only
      "profile": {"schema": "mlbuild.profile/v1", "tables": {path: profile}},  # checks/profile.py
      "executor": {"type": "local", "host": "…"}
                | {"type": "dask", "scheduler": "tcp://…", "worker": "tcp://…"},
      "exit_code": 0, "log": "sha256:…" | null,
      "restored_from": "sha256:…"            # restores only
      "committed": true                      # `mlbuild commit` only: not built by mlbuild
      "undeclared_reads": [{"path", "xxh3"}]  # files its Python read undeclared (reads.py)
      "overrides": {"train.lr": 0.5}         # `--set` values it read (already in "params")
    }

A commit (`mlbuild commit`, rebuild/accept.py) accepted outs that were already in the
workspace as the result of the current key: nothing ran, so ``exit_code`` and ``log`` are
null and ``committed`` is true; ``command`` is still the recipe the key hashes (a restore
of it copies that), and the run cache and lock entry point at it as at a build.

A reproduction (`mlbuild reproduce`, reproduce.py) is a record of its own kind, never a
build: it names the build it re-ran and what came out, and holds no key, deps or outs that
a reader could take for a build's::

    {
      "schema": "mlbuild.manifest/v1", "target": "model:lr", "status": "reproduction",
      "reproduces": "sha256:…",             # the build manifest whose recipe was re-run
      "started", "finished", "seconds", "user", "host", "mlbuild",   # as in a build
      "environment": {…}, "executor": {…}, # the reproducing machine and where the job ran
      "tolerances": {"accuracy": 0.005},    # --tolerance, per metric
      "verdict": "identical" | "within-tolerance" | "differs" | "failed",
      "results": [{"path", "type", "recorded": "sha256:…", "reproduced": "sha256:…" | null,
                   "identical", "within_tolerance", "summary",
                   "metrics"?: [{"metric", "recorded", "reproduced", "delta"?, "tolerance"?,
                                 "within"}],
                   "table"?: {"rows": [old, new], "columns_changed", "columns_added",
                              "columns_removed"}}],
      "differing": ["path", …],             # the results that are not identical
      "error": "…" | null,                  # what failed (verdict "failed")
      "exit_code": 0 | N | null,            # the re-run's; null: it never ended (lost)
      "log": "sha256:…" | null
    }

The id is ``sha256:`` of the canonical JSON (digest.canonical_json) of the whole record; the
id is not stored inside it, so anyone can recompute it. Target deps carry the upstream
manifest's id, so manifests form a Merkle DAG: changing one upstream byte changes every id
downstream of it.

Store layout and the strict parser: store.py and parse.py. A restore shown with its
build's facts, and the diff of two records: views.py. In-toto export: export.py.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import os
import platform
import re
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard, cast

from ..digest import canonical_json
from ..errors import VerificationError
from ..kinds import ManifestStatus, Verdict
from .findings import AuditCheck
from .shapes import (
    CheckRecord,
    DepEntry,
    EnvironmentRecord,
    GateRecord,
    KeyComponents,
    Manifest,
    OutEntry,
    ReproducedOut,
)

__all__ = [
    "MANIFEST_SCHEMA",
    "CheckRecord",
    "DepEntry",
    "EnvironmentRecord",
    "GateRecord",
    "Manifest",
    "OutEntry",
    "PROFILE_SCHEMA",
    "Identity",
    "KeyComponents",
    "ManifestError",
    "ReproducedOut",
    "Quality",
    "Verdict",
    "build_manifest",
    "check_manifest_id",
    "environment",
    "is_manifest_id",
    "is_restore",
    "manifest_id",
    "reproduction_line",
    "show_value",
    "timestamp",
]

MANIFEST_SCHEMA = "mlbuild.manifest/v1"
PROFILE_SCHEMA = "mlbuild.profile/v1"
_MANIFEST_ID = re.compile(r"sha256:[0-9a-f]{64}")
_MOVE_ASIDE = (
    "mlbuild never rewrites a manifest: move the file out of .mlbuild/manifests/, then "
    "rebuild its target: `mlbuild -B TARGET`"
)


class ManifestError(VerificationError):
    """A manifest, a manifest id, a history index or a signature file that fails the
    strict parser (exit 6). ``check``/``subject``/``expected``/``found`` are what an audit
    reports for it; the message names the file and what is wrong."""

    def __init__(
        self,
        subject: str,
        found: str,
        *,
        check: AuditCheck = AuditCheck.MANIFEST,
        expected: str = "a well-formed mlbuild.manifest/v1 record",
        what: str = "manifest",
        hint: str | None = _MOVE_ASIDE,
        detail: str | None = None,
        missing: bool = False,
    ) -> None:
        text = f"{what} {subject} {detail}" if detail else f"{what} {subject}: {found}"
        super().__init__(text, hint=hint)
        self.check = check
        self.subject = subject
        self.expected = expected
        self.found = found
        self.detail = detail or f"is unusable: {found}"
        self.missing = missing  # the file is not there (vs there but unusable)



def show_value(value: Any) -> str:
    """``repr(value)``, cut to 60 characters: how messages quote a value read from a file."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_manifest_id(value: Any) -> TypeGuard[str]:
    """Exactly ``sha256:`` + 64 lowercase hex."""
    return isinstance(value, str) and bool(_MANIFEST_ID.fullmatch(value))


def is_restore(doc: Mapping[str, Any]) -> bool:
    """A restore or rollback: a record whose facts are copies of the build it names in
    ``restored_from`` (views.py)."""
    return doc.get("status") in (ManifestStatus.RESTORED, ManifestStatus.ROLLBACK)


def check_manifest_id(mid: Any, where: str = "manifest id") -> str:
    """``mid`` if it is exactly ``sha256:`` + 64 lowercase hex, else ManifestError: the
    only ids a path may be derived from."""
    if not is_manifest_id(mid):
        raise ManifestError(
            where,
            f"{show_value(mid)} is not a manifest id (sha256: and 64 lowercase hex digits)",
            expected="sha256: and 64 lowercase hex digits",
            what="refused",
            hint="the id was read from a corrupt or forged record; nothing was read or written",
        )
    return mid


def manifest_id(manifest: Mapping[str, Any]) -> str:
    """``sha256:`` of the canonical encoding: the manifest's content address."""
    return "sha256:" + hashlib.sha256(canonical_json(manifest).encode()).hexdigest()


def reproduction_line(doc: Mapping[str, Any]) -> str:
    """One line for a (parsed) reproduction record: its verdict and what differs, as
    `mlbuild reproduce`, `card` and `audit` say it."""
    results = doc.get("results") or []
    same = sum(1 for r in results if r.get("identical"))
    verdict = Verdict(doc["verdict"])
    if verdict is Verdict.FAILED:
        return f"reproduction failed: {doc.get('error')}"
    if verdict is Verdict.IDENTICAL:
        return f"reproducible: {same} out(s) bit-identical"
    within = [r for r in results if not r.get("identical") and r.get("within_tolerance")]
    listed = "; ".join(f"{r['path']} ({r['summary']})" for r in within)
    if verdict is Verdict.WITHIN_TOLERANCE:
        return f"reproducible within tolerance: {listed}; {same} out(s) bit-identical"
    beyond = [r for r in results if not r.get("identical") and not r.get("within_tolerance")]
    text = "not reproducible: " + "; ".join(f"{r['path']} ({r['summary']})" for r in beyond)
    if within:
        text += f"; within tolerance: {', '.join(r['path'] for r in within)}"
    return text + f"; {same} of {len(results)} out(s) bit-identical"


def timestamp(epoch: float) -> str:
    """UTC ISO 8601 with microseconds and a ``Z``: sortable, unambiguous."""
    moment = dt.datetime.fromtimestamp(epoch, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _git(root: str, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """Commit and dirty flag of the workspace's git checkout (``{"commit": null}`` without).

    Changes to ``ignore`` (workspace-relative files or directories) do not count as dirty:
    the lock file and the outs, which builds rewrite and users may commit (DVC users
    commit metrics files). Sources, params and everything outside them still count."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD", "--show-prefix"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if commit.returncode != 0:
            return {"commit": None, "dirty": None, "note": "not a git checkout"}
        status = subprocess.run(
            ["git", "status", "--porcelain", "-z", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None, "note": "git is not available"}
    head, _, prefix = commit.stdout.partition("\n")
    prefix = prefix.strip()
    skip = {prefix + p for p in ignore}
    # -z: "XY path\0", a rename adds "\0old path"; paths are relative to the repo root.
    fields = status.stdout.split("\0")
    changed: list[str] = []
    i = 0
    while i < len(fields):
        entry = fields[i]
        i += 1
        if len(entry) < 4:
            continue
        changed.append(entry[3:])
        if entry[0] in "RC":
            changed.append(fields[i])
            i += 1
    dirty = any(
        path not in skip and not any(path.startswith(s + "/") for s in skip) for path in changed
    )
    return {"commit": head.strip(), "dirty": dirty}


@dataclass
class Identity:
    """Who and where: computed once per build, only when a manifest is written."""

    user: str
    host: str
    python: str
    platform: str
    git: dict[str, Any]


def environment(root: str, ignore: tuple[str, ...] = ()) -> Identity:
    """Who, where and from which git commit; ``ignore``: paths that never make it dirty."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return Identity(
        user=user,
        host=socket.gethostname(),
        python=platform.python_version(),
        platform=platform.platform(),
        git=_git(root, ignore),
    )


@dataclass(frozen=True)
class Quality:
    """What a build measured about its outs: metrics, check and gate verdicts, the data
    profile of tabular outs, and for a promoted target which candidate won."""

    metrics: dict[str, Any] | None = None
    checks: tuple[dict[str, Any], ...] = ()
    gates: tuple[dict[str, Any], ...] = ()
    profile: dict[str, Any] = field(default_factory=dict)  # out path → table profile
    promotion: dict[str, Any] | None = None

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Quality:
        """The quality recorded in manifest ``doc`` (a restore carries its source's)."""
        return cls(
            metrics=doc.get("metrics"),
            checks=tuple(doc.get("checks") or ()),
            gates=tuple(doc.get("gates") or ()),
            profile=dict((doc.get("profile") or {}).get("tables") or {}),
            promotion=doc.get("promotion"),
        )


# Longer than 60 lines: one dict literal, the record's fields in the documented order.
def build_manifest(
    *,
    target: str,
    status: ManifestStatus | str,
    key: str,
    components: dict[str, Any],
    started: float,
    finished: float,
    identity: Identity,
    deps: list[dict[str, Any]],
    outs: list[dict[str, Any]],
    log_digest: str | None,
    env: dict[str, Any],
    restored_from: str | None = None,
    quality: Quality | None = None,
    executor: dict[str, Any] | None = None,
    undeclared: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Manifest:
    """The manifest of one build or restore (see the module docstring for the format)."""
    q = quality or Quality()
    from .. import __version__

    manifest: dict[str, Any] = {
        "schema": MANIFEST_SCHEMA,
        "target": target,
        "status": ManifestStatus(status).value,  # a plain string: the id hashes the JSON
        "key": key,
        "components": components,
        "started": timestamp(started),
        "finished": timestamp(finished),
        "seconds": round(finished - started, 6),
        "user": identity.user,
        "host": identity.host,
        "mlbuild": __version__,
        "command": components.get("cmd"),
        "python": components.get("python"),
        "code": components.get("code", {}),
        "deps": deps,
        "params": components.get("params", {}),
        "env": env,
        "environment": {
            "python": identity.python,
            "platform": identity.platform,
            "packages": components.get("packages", {}),
            "git": identity.git,
        },
        "outs": outs,
        "metrics": q.metrics,
        "checks": list(q.checks),
        "gates": list(q.gates),
        "profile": {"schema": PROFILE_SCHEMA, "tables": q.profile},
        "executor": executor or {"type": "local", "host": identity.host},
        "exit_code": 0 if ManifestStatus(status) is ManifestStatus.BUILT else None,
        "log": log_digest,
    }
    if restored_from is not None:
        manifest["restored_from"] = restored_from
    if ManifestStatus(status) is ManifestStatus.COMMIT:
        manifest["committed"] = True  # accepted by `mlbuild commit`: not built by mlbuild
    if q.promotion is not None:
        manifest["promotion"] = q.promotion
    if overrides:
        manifest["overrides"] = dict(overrides)  # --set values among its params
    if undeclared:
        manifest["undeclared_reads"] = [
            {"path": path, "xxh3": digest} for path, digest in sorted(undeclared.items())
        ]
    # Built here from the caller's checked parts, in the documented shape.
    return cast(Manifest, manifest)

