"""Provenance manifests: one JSON record per build (or restore) of a target.

Format (``"schema": "mlbuild.manifest/v1"``; manifests are never discarded on a version
change, so a reader must handle every version it ever wrote)::

    {
      "schema": "mlbuild.manifest/v1",
      "target": "model:lr",
      "status": "built" | "restored",
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
    }

The id is ``sha256:`` of the canonical JSON (digest.canonical_json) of the whole record; the
id is not stored inside it, so anyone can recompute it. Target deps carry the upstream
manifest's id, so manifests form a Merkle DAG: changing one upstream byte changes every id
downstream of it.

Store layout under ``.mlbuild/manifests/``::

    ab/cdef….json           the manifest with id sha256:abcdef…, written once, atomically
    index/<target>.jsonl     one id per line, oldest first: the target's build history

Manifests are append-only: nothing but an explicit ``gc`` removes one.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
import platform
import socket
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .digest import canonical_json
from .store.atomic import atomic_write, fsync_dir

if TYPE_CHECKING:
    from .signing import SigningKey

__all__ = [
    "MANIFEST_SCHEMA",
    "PROFILE_SCHEMA",
    "ManifestStore",
    "Quality",
    "environment",
    "manifest_id",
    "timestamp",
]

MANIFEST_SCHEMA = "mlbuild.manifest/v1"
PROFILE_SCHEMA = "mlbuild.profile/v1"


def manifest_id(manifest: dict[str, Any]) -> str:
    """``sha256:`` of the canonical encoding: the manifest's content address."""
    return "sha256:" + hashlib.sha256(canonical_json(manifest).encode()).hexdigest()


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


class ManifestStore:
    """Append-only manifests plus a per-target history index."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        # Latest id per target written through this store: a build links every dep to its
        # producer's current manifest without re-reading the growing history file.
        self._latest: dict[str, str] = {}

    def path(self, mid: str) -> str:
        hexd = mid.split(":", 1)[1]
        return os.path.join(self.dir, hexd[:2], hexd[2:] + ".json")

    def _index(self, target: str) -> str:
        return os.path.join(
            self.dir, "index", target.replace(":", "__").replace("/", "_") + ".jsonl"
        )

    def sig_path(self, mid: str) -> str:
        return self.path(mid)[: -len(".json")] + ".sig.json"

    def put(self, manifest: dict[str, Any], signer: SigningKey | None = None) -> str:
        """Store a manifest (never overwriting one), its signature if a key is configured,
        and append it to its target's history."""
        mid = manifest_id(manifest)
        path = self.path(mid)
        if not os.path.exists(path):
            if signer is not None:  # the signature first: a manifest is never seen unsigned
                keyid, sig = signer.sign(canonical_json(manifest).encode())
                body = json.dumps({"keyid": keyid, "sig": sig}, sort_keys=True) + "\n"
                atomic_write(self.sig_path(mid), body.encode(), mode=0o444)
            text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
            atomic_write(path, text.encode(), mode=0o444)
        index = self._index(manifest["target"])
        os.makedirs(os.path.dirname(index), exist_ok=True)
        # One short line per O_APPEND write: concurrent appends never interleave.
        fd = os.open(index, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (mid + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(os.path.dirname(index))
        self._latest[manifest["target"]] = mid
        return mid

    def get(self, mid: str) -> dict[str, Any] | None:
        try:
            with open(self.path(mid), "rb") as f:
                data: dict[str, Any] = json.loads(f.read())
        except (FileNotFoundError, ValueError):
            return None
        return data

    def signature(self, mid: str) -> dict[str, str] | None:
        """The stored ``{"keyid", "sig"}`` of a manifest, or None if it is unsigned."""
        try:
            with open(self.sig_path(mid), "rb") as f:
                data = json.loads(f.read())
        except FileNotFoundError:
            return None
        except ValueError:
            return {"keyid": "", "sig": ""}  # unreadable: reported as not verifying
        return data if isinstance(data, dict) else {"keyid": "", "sig": ""}

    def history(self, target: str) -> list[str]:
        """Manifest ids of ``target``, oldest first."""
        try:
            with open(self._index(target), encoding="ascii") as f:
                return [line.strip() for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def current(self, target: str) -> str | None:
        if target in self._latest:
            return self._latest[target]
        ids = self.history(target)
        return ids[-1] if ids else None


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
    def of(cls, doc: dict[str, Any]) -> Quality:
        """The quality recorded in manifest ``doc`` (a restore carries its source's)."""
        return cls(
            metrics=doc.get("metrics"),
            checks=tuple(doc.get("checks") or ()),
            gates=tuple(doc.get("gates") or ()),
            profile=dict((doc.get("profile") or {}).get("tables") or {}),
            promotion=doc.get("promotion"),
        )


def build_manifest(
    *,
    target: str,
    status: str,
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
) -> dict[str, Any]:
    """The manifest of one build or restore (see the module docstring for the format)."""
    q = quality or Quality()
    from . import __version__

    manifest: dict[str, Any] = {
        "schema": MANIFEST_SCHEMA,
        "target": target,
        "status": status,
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
        "exit_code": 0 if status == "built" else None,
        "log": log_digest,
    }
    if restored_from is not None:
        manifest["restored_from"] = restored_from
    if q.promotion is not None:
        manifest["promotion"] = q.promotion
    return manifest


IN_TOTO_STATEMENT = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://mlbuild.dev/build-types/target/v1"
BUILDER_ID = "https://mlbuild.dev/builders/local"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def _digest_set(xxh3: str | None, sha256: str | None = None) -> dict[str, str]:
    digests: dict[str, str] = {}
    if sha256:
        digests["sha256"] = sha256.split(":", 1)[1]
    if xxh3:
        digests["xxh3_128"] = xxh3.split(":", 1)[1]
    return digests


def in_toto_statement(mid: str, doc: dict[str, Any]) -> dict[str, Any]:
    """An in-toto Statement v1 with an SLSA Provenance v1 predicate for one manifest.

    Subjects are the outs (sha256, with xxh3-128 as an extra digest); resolved
    dependencies are the deps (annotated with their target and manifest) and code files;
    the invocation id is the manifest id."""
    deps: list[dict[str, Any]] = []
    for dep in doc.get("deps", []):
        entry: dict[str, Any] = {"uri": dep["path"], "digest": _digest_set(dep.get("xxh3"))}
        if "target" in dep:
            entry["annotations"] = {"target": dep["target"], "manifest": dep.get("manifest")}
        deps.append(entry)
    for path, digest in sorted(doc.get("code", {}).items()):
        deps.append({"uri": path, "digest": _digest_set(digest), "annotations": {"code": True}})
    external: dict[str, Any] = {"target": doc["target"], "params": doc.get("params", {})}
    if doc.get("command") is not None:
        external["command"] = doc["command"]
    if doc.get("python") is not None:
        external["python"] = doc["python"]
    return {
        "_type": IN_TOTO_STATEMENT,
        "subject": [
            {"name": o["path"], "digest": _digest_set(o.get("xxh3"), o.get("sha256"))}
            for o in doc.get("outs", [])
        ],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {
                    "key": doc.get("key"),
                    "env": doc.get("env", {}),
                    "environment": doc.get("environment", {}),
                    "status": doc.get("status"),
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {
                    "id": BUILDER_ID,
                    "version": {"mlbuild": str(doc.get("mlbuild"))},
                },
                "metadata": {
                    "invocationId": mid,
                    "startedOn": doc.get("started"),
                    "finishedOn": doc.get("finished"),
                },
                "byproducts": [{"name": "log", "digest": {"sha256": doc["log"].split(":", 1)[1]}}]
                if doc.get("log")
                else [],
            },
        },
    }


def dsse_envelope(statement: dict[str, Any], signer: SigningKey) -> dict[str, Any]:
    """The statement in a DSSE envelope signed by ``signer`` (verifiable by in-toto tools)."""
    import base64

    from .signing import pae

    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    keyid, sig = signer.sign(pae(IN_TOTO_PAYLOAD_TYPE, payload))
    return {
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": keyid, "sig": sig}],
    }


def diff_manifests(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Differences between two manifests, field by field, deterministic.

    Each: ``{"field", "key", "a", "b"}`` (``None`` where a side lacks the key)."""

    def flat(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
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
            if va != vb:
                changes.append({"field": field_name, "key": key, "a": va, "b": vb})
    return changes
