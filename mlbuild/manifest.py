"""Provenance manifests: one JSON record per build (or restore) of a target.

Format (``"schema": "mlbuild.manifest/v1"``; manifests are never discarded on a version
change, so a reader must handle every version it ever wrote)::

    {
      "schema": "mlbuild.manifest/v1",
      "target": "model:lr",
      "status": "built" | "restored" | "rollback",
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
      "undeclared_reads": [{"path", "xxh3"}]  # files its Python read undeclared (reads.py)
    }

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

Store layout under ``.mlbuild/manifests/``::

    ab/cdef….json           the manifest with id sha256:abcdef…, written once, atomically
    index/<target>.jsonl     one id per line, oldest first: the target's build history
    reproductions/<target>.jsonl   likewise, its reproductions (never in the build history,
                             so no reproduction can become a target's current manifest)

Manifests are append-only: nothing but an explicit ``gc`` removes one.

Reading one back crosses the trust boundary: `parse_manifest` is the one strict parser
(`ManifestStore.get` calls it). It accepts a record whole or raises `ManifestError` naming
the file and what is wrong: not JSON, not an object, an id that does not recompute, a
schema this mlbuild does not read, or a field of the wrong shape (digests exactly
``xxh3-128:`` + 32 / ``sha256:`` + 64 lowercase hex, dep and out paths relative and
normalized, lists and objects where the readers expect them). An id becomes a path only
through `ManifestStore.path`, which refuses anything but ``sha256:`` + 64 hex, so no id
read from a remote or a file can climb out of the manifests directory. A history index is
only a list of pointers: a line that is not an id is skipped (`ManifestStore.history`) and
reported (`ManifestStore.index_problems`).

A restore or rollback records only who, when and where of the restore itself
(`RESTORE_OWN_FIELDS`); everything else it holds is a copy of the build it restores
(``restored_from``). `restore_view` shows a restore with the build's facts, and
`restore_disagreements` names every copied field that differs from the build's.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
import platform
import re
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from .digest import canonical_json, same_value
from .errors import VerificationError
from .store.atomic import atomic_write, fsync_dir
from .store.records import RecordError, check_relpath, check_sha256, check_xxh

if TYPE_CHECKING:
    from .signing import SigningKey

__all__ = [
    "MANIFEST_SCHEMA",
    "PROFILE_SCHEMA",
    "RESTORE_OWN_FIELDS",
    "ManifestError",
    "Verdict",
    "ManifestStore",
    "Quality",
    "check_manifest_id",
    "environment",
    "manifest_id",
    "parse_manifest",
    "reproduction_line",
    "restore_disagreements",
    "restore_view",
    "timestamp",
]

MANIFEST_SCHEMA = "mlbuild.manifest/v1"
PROFILE_SCHEMA = "mlbuild.profile/v1"
_MANIFEST_ID = re.compile(r"sha256:[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{64}")
_STATUSES = ("built", "restored", "rollback")
REPRODUCTION = "reproduction"  # the status of a reproduction record (see the module doc)
#: How many restores of restores (``rollback --to`` a restore) are followed to the build.
_MAX_RESTORE_CHAIN = 32
_MOVE_ASIDE = (
    "mlbuild never rewrites a manifest: move the file out of .mlbuild/manifests/, then "
    "rebuild its target: `mlbuild -B TARGET`"
)


class Verdict(str, Enum):
    """What a reproduction found (``verdict`` of a reproduction record)."""

    IDENTICAL = "identical"  # every out bit-identical to the recorded one
    WITHIN_TOLERANCE = "within-tolerance"  # only metrics files differ, within --tolerance
    DIFFERS = "differs"  # an out differs beyond any tolerance, or is missing
    FAILED = "failed"  # the re-run failed: nothing to compare

    @property
    def reproducible(self) -> bool:
        return self in (Verdict.IDENTICAL, Verdict.WITHIN_TOLERANCE)


class ManifestError(VerificationError):
    """A manifest, a manifest id, a history index or a signature file that fails the
    strict parser (exit 6). ``check``/``subject``/``expected``/``found`` are what an audit
    reports for it; the message names the file and what is wrong."""

    def __init__(
        self,
        subject: str,
        found: str,
        *,
        check: str = "manifest",
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


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_manifest_id(mid: Any, where: str = "manifest id") -> str:
    """``mid`` if it is exactly ``sha256:`` + 64 lowercase hex, else ManifestError: the
    only ids a path may be derived from."""
    if not isinstance(mid, str) or not _MANIFEST_ID.fullmatch(mid):
        raise ManifestError(
            where,
            f"{_show(mid)} is not a manifest id (sha256: and 64 lowercase hex digits)",
            expected="sha256: and 64 lowercase hex digits",
            what="refused",
            hint="the id was read from a corrupt or forged record; nothing was read or written",
        )
    return mid


def manifest_id(manifest: dict[str, Any]) -> str:
    """``sha256:`` of the canonical encoding: the manifest's content address."""
    return "sha256:" + hashlib.sha256(canonical_json(manifest).encode()).hexdigest()


class _Bad(Exception):
    """One field of a manifest that is not of the shape its readers rely on."""


def _need(ok: bool, name: str, value: Any, what: str) -> None:
    if not ok:
        raise _Bad(f"{name} is {_show(value)}, not {what}")


def _record(check: Any, value: Any, name: str) -> str:
    try:
        result: str = check(value, name)
    except RecordError as exc:
        raise _Bad(exc.message) from None
    return result


def _opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _dicts(doc: dict[str, Any], name: str, *, required: bool) -> None:
    value: Any = doc.get(name) if required or name in doc else []
    _need(isinstance(value, list), name, value, "a list")
    for i, item in enumerate(value):
        _need(isinstance(item, dict), f"{name}[{i}]", item, "an object")


def _check_fields(doc: dict[str, Any]) -> None:
    """Raise _Bad naming the first field whose type or shape the readers cannot use.

    Required: what every v1 writer wrote; ``gates``, ``promotion``, ``profile``,
    ``executor``, ``exit_code``, ``log`` and ``restored_from`` are checked when present.
    Dep and out paths must be relative and normalized (the audit opens them); code paths
    are only shown, and a script run as ``python ../x.py`` is recorded as it was named.
    A reproduction has a shape of its own (`_check_reproduction`)."""
    if doc.get("status") == REPRODUCTION:
        _check_reproduction(doc)
        return
    for name in ("target", "started", "finished", "user", "host", "mlbuild"):
        _need(isinstance(doc.get(name), str), name, doc.get(name), "a string")
    _need(bool(doc["target"]), "target", doc["target"], "a target name")
    _need(
        doc.get("status") in _STATUSES,
        "status",
        doc.get("status"),
        "built/restored/rollback/reproduction",
    )
    _record(check_xxh, doc.get("key"), "key")
    for name in ("components", "params", "env", "environment"):
        _need(isinstance(doc.get(name), dict), name, doc.get(name), "an object")
    _need(_is_number(doc.get("seconds")), "seconds", doc.get("seconds"), "a number")
    command = doc.get("command", 0)
    _need(
        command is None or (isinstance(command, list) and all(isinstance(c, str) for c in command)),
        "command",
        command,
        "null or a list of strings",
    )
    _need(_opt_str(doc.get("python", 0)), "python", doc.get("python", 0), "null or a string")
    code: Any = doc.get("code")
    _need(isinstance(code, dict), "code", code, "an object")
    for path, digest in code.items():
        _need(bool(path) and "\0" not in path, "code path", path, "a path")
        _record(check_xxh, digest, f"code[{path!r}]")
    deps: Any = doc.get("deps")
    _need(isinstance(deps, list), "deps", deps, "a list")
    for i, dep in enumerate(deps):
        _need(isinstance(dep, dict), f"deps[{i}]", dep, "an object")
        _record(check_relpath, dep.get("path"), f"deps[{i}].path")
        _record(check_xxh, dep.get("xxh3"), f"deps[{i}].xxh3")
        if "target" in dep:
            _need(isinstance(dep["target"], str), f"deps[{i}].target", dep["target"], "a string")
        if dep.get("manifest") is not None:
            _need(
                isinstance(dep["manifest"], str) and bool(_MANIFEST_ID.fullmatch(dep["manifest"])),
                f"deps[{i}].manifest",
                dep["manifest"],
                "a manifest id",
            )
    env = doc["environment"]
    for name in ("python", "platform"):
        _need(_opt_str(env.get(name)), f"environment.{name}", env.get(name), "a string")
    packages = env.get("packages", {})
    _need(isinstance(packages, dict), "environment.packages", packages, "an object")
    git = env.get("git", {})
    _need(isinstance(git, dict), "environment.git", git, "an object")
    _need(_opt_str(git.get("commit")), "environment.git.commit", git.get("commit"), "a string")
    dirty = git.get("dirty")
    _need(dirty is None or isinstance(dirty, bool), "environment.git.dirty", dirty, "a boolean")
    outs: Any = doc.get("outs")
    _need(isinstance(outs, list), "outs", outs, "a list")
    for i, out in enumerate(outs):
        _need(isinstance(out, dict), f"outs[{i}]", out, "an object")
        _record(check_relpath, out.get("path"), f"outs[{i}].path")
        _need(out.get("type") in ("file", "dir"), f"outs[{i}].type", out.get("type"), "file/dir")
        size = out.get("size")
        _need(
            isinstance(size, int) and not isinstance(size, bool) and size >= 0,
            f"outs[{i}].size",
            size,
            "a size",
        )
        _record(check_xxh, out.get("xxh3"), f"outs[{i}].xxh3")
        if out.get("sha256") is not None:
            _record(check_sha256, out["sha256"], f"outs[{i}].sha256")
    metrics = doc.get("metrics", 0)
    _need(metrics is None or isinstance(metrics, dict), "metrics", metrics, "null or an object")
    _dicts(doc, "checks", required=True)
    _dicts(doc, "gates", required=False)
    promotion = doc.get("promotion")
    _need(promotion is None or isinstance(promotion, dict), "promotion", promotion, "an object")
    if promotion is not None:
        scores = promotion.get("scores")
        _need(scores is None or isinstance(scores, dict), "promotion.scores", scores, "an object")
    profile = doc.get("profile", {})
    _need(isinstance(profile, dict), "profile", profile, "an object")
    tables = profile.get("tables", {})
    _need(tables is None or isinstance(tables, dict), "profile.tables", tables, "an object")
    executor = doc.get("executor", {})
    _need(isinstance(executor, dict), "executor", executor, "an object")
    exit_code = doc.get("exit_code")
    _need(
        exit_code is None or (isinstance(exit_code, int) and not isinstance(exit_code, bool)),
        "exit_code",
        exit_code,
        "null or an integer",
    )
    if doc.get("log") is not None:
        _record(check_sha256, doc["log"], "log")
    undeclared: Any = doc.get("undeclared_reads", [])
    _need(isinstance(undeclared, list), "undeclared_reads", undeclared, "a list")
    for i, read in enumerate(undeclared):
        _need(isinstance(read, dict), f"undeclared_reads[{i}]", read, "an object")
        _record(check_relpath, read.get("path"), f"undeclared_reads[{i}].path")
        _record(check_xxh, read.get("xxh3"), f"undeclared_reads[{i}].xxh3")
    if "restored_from" in doc:
        restored_from = doc["restored_from"]
        _need(
            isinstance(restored_from, str) and bool(_MANIFEST_ID.fullmatch(restored_from)),
            "restored_from",
            restored_from,
            "a manifest id",
        )


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and bool(_MANIFEST_ID.fullmatch(value))


def _check_reproduction(doc: dict[str, Any]) -> None:
    """Raise _Bad naming the first field of a reproduction record that is not of its shape,
    or a verdict its results contradict (a record that says "identical" over a differing
    out is refused, not shown)."""
    for name in ("target", "started", "finished", "user", "host", "mlbuild"):
        _need(isinstance(doc.get(name), str), name, doc.get(name), "a string")
    _need(bool(doc["target"]), "target", doc["target"], "a target name")
    _need(_is_id(doc.get("reproduces")), "reproduces", doc.get("reproduces"), "a manifest id")
    _need(_is_number(doc.get("seconds")), "seconds", doc.get("seconds"), "a number")
    for name in ("environment", "executor", "tolerances"):
        _need(isinstance(doc.get(name), dict), name, doc.get(name), "an object")
    env = doc["environment"]
    for name in ("python", "platform"):
        _need(_opt_str(env.get(name)), f"environment.{name}", env.get(name), "a string")
    _need(
        isinstance(env.get("packages", {}), dict),
        "environment.packages",
        env.get("packages"),
        "an object",
    )
    _need(isinstance(env.get("git", {}), dict), "environment.git", env.get("git"), "an object")
    for metric, tolerance in doc["tolerances"].items():
        _need(
            _is_number(tolerance) and tolerance >= 0,
            f"tolerances[{metric!r}]",
            tolerance,
            "a number >= 0",
        )
    verdicts = [v.value for v in Verdict]
    _need(doc.get("verdict") in verdicts, "verdict", doc.get("verdict"), "/".join(verdicts))
    verdict = Verdict(doc["verdict"])
    results: Any = doc.get("results")
    _need(isinstance(results, list), "results", results, "a list")
    for i, res in enumerate(results):
        where = f"results[{i}]"
        _need(isinstance(res, dict), where, res, "an object")
        _record(check_relpath, res.get("path"), f"{where}.path")
        _need(res.get("type") in ("file", "dir"), f"{where}.type", res.get("type"), "file/dir")
        _record(check_sha256, res.get("recorded"), f"{where}.recorded")
        if res.get("reproduced") is not None:
            _record(check_sha256, res["reproduced"], f"{where}.reproduced")
        for flag in ("identical", "within_tolerance"):
            _need(isinstance(res.get(flag), bool), f"{where}.{flag}", res.get(flag), "a boolean")
        _need(isinstance(res.get("summary"), str), f"{where}.summary", res.get("summary"), "text")
        _need(
            res["identical"] == (res.get("reproduced") == res["recorded"]),
            f"{where}.identical",
            res["identical"],
            "what its digests say",
        )
        _dicts(res, "metrics", required=False)
        table = res.get("table", {})
        _need(isinstance(table, dict), f"{where}.table", table, "an object")
    differing: Any = doc.get("differing")
    _need(isinstance(differing, list), "differing", differing, "a list")
    shown = [r["path"] for r in results if not r["identical"]]
    _need(differing == shown, "differing", differing, f"the differing results {shown}")
    beyond = [r["path"] for r in results if not r["identical"] and not r["within_tolerance"]]
    expected = (
        Verdict.FAILED
        if verdict is Verdict.FAILED
        else Verdict.DIFFERS
        if beyond
        else Verdict.WITHIN_TOLERANCE
        if differing
        else Verdict.IDENTICAL
    )
    _need(verdict is expected, "verdict", verdict.value, f"{expected.value!r} (its results)")
    error = doc.get("error")
    _need(
        (error is None) != (verdict is Verdict.FAILED) and _opt_str(error),
        "error",
        error,
        "the failure's message (and only for a failed reproduction)",
    )
    exit_code = doc.get("exit_code")
    _need(
        exit_code is None or (isinstance(exit_code, int) and not isinstance(exit_code, bool)),
        "exit_code",
        exit_code,
        "null or an integer",
    )
    if doc.get("log") is not None:
        _record(check_sha256, doc["log"], "log")


def reproduction_line(doc: dict[str, Any]) -> str:
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


def parse_manifest(raw: bytes, mid: str, subject: str) -> dict[str, Any]:
    """The bytes of manifest ``mid`` → the record, or ManifestError naming ``subject``.

    In this order (an audit reports the first that fails): JSON, an object, its id
    recomputes (``manifest-id``), its schema is v1 (``schema``), every field the readers
    use has the right shape (``manifest``)."""
    check_manifest_id(mid)
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ManifestError(
            subject,
            "not JSON (truncated or overwritten)",
            detail="is corrupt: not JSON (truncated or overwritten)",
        ) from None
    if not isinstance(doc, dict):
        found = f"not a JSON object but a {type(doc).__name__}"
        raise ManifestError(subject, found, detail=f"is corrupt: {found}")
    actual = manifest_id(doc)
    if actual != mid:
        raise ManifestError(
            subject,
            actual,
            check="manifest-id",
            expected=mid,
            detail=f"is corrupt: its content hashes to {actual}, not to its id (edited)",
        )
    if doc.get("schema") != MANIFEST_SCHEMA:
        raise ManifestError(
            subject,
            str(doc.get("schema")),
            detail=f"has schema {_show(doc.get('schema'))}, which this mlbuild does not read",
            check="schema",
            expected=MANIFEST_SCHEMA,
            hint="use the mlbuild version that wrote it",
        )
    try:
        _check_fields(doc)
    except _Bad as exc:
        raise ManifestError(subject, f"malformed: {exc}", detail=f"is corrupt: {exc}") from None
    return doc


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
    """Append-only manifests plus a per-target history index.

    Every read goes through the strict parser: `get` returns a checked record, None for
    a manifest that is not there, and raises ManifestError for one that is there but
    unusable. Messages name files relative to the workspace (the directory holding
    ``.mlbuild/``)."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        # Latest id per target written through this store: a build links every dep to its
        # producer's current manifest without re-reading the growing history file.
        self._latest: dict[str, str] = {}

    def shown(self, path: str) -> str:
        """``path`` as messages name it: relative to the workspace root."""
        return os.path.relpath(path, os.path.dirname(os.path.dirname(self.dir)))

    def path(self, mid: str) -> str:
        """The file of manifest ``mid``; ManifestError unless ``mid`` is a well-formed id
        (the only way an id becomes a path, so none can leave the manifests directory)."""
        hexd = check_manifest_id(mid).split(":", 1)[1]
        return os.path.join(self.dir, hexd[:2], hexd[2:] + ".json")

    def _index(self, target: str, kind: str = "index") -> str:
        """The history index of ``target``'s builds and restores (``kind`` "index"), or of
        its reproductions ("reproductions"): apart, so none becomes a current build."""
        return os.path.join(self.dir, kind, target.replace(":", "__").replace("/", "_") + ".jsonl")

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
        reproduction = manifest.get("status") == REPRODUCTION
        index = self._index(manifest["target"], "reproductions" if reproduction else "index")
        os.makedirs(os.path.dirname(index), exist_ok=True)
        # One short line per O_APPEND write: concurrent appends never interleave.
        fd = os.open(index, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (mid + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(os.path.dirname(index))
        if not reproduction:
            self._latest[manifest["target"]] = mid
        return mid

    def get(self, mid: str) -> dict[str, Any] | None:
        """Manifest ``mid`` checked by `parse_manifest`; None when its file does not exist.
        Anything else (unreadable, corrupt, edited, malformed) raises ManifestError."""
        path = self.path(mid)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ManifestError(
                self.shown(path),
                f"unreadable: {exc.strerror}",
                detail=f"cannot be read: {exc.strerror}",
                hint="fix its permissions",
            ) from None
        return parse_manifest(raw, mid, self.shown(path))

    def get_usable(self, mid: str) -> dict[str, Any] | None:
        """`get` for readers to whom a manifest is only a hint (gc's build list, rollback's
        candidates, the previous build's metrics and profiles, the report): a corrupt
        record counts as absent there, and `audit` is what names it."""
        try:
            return self.get(mid)
        except ManifestError:
            return None

    def load(self, mid: str) -> dict[str, Any]:
        """`get`, with a missing file a ManifestError too (``missing`` set)."""
        doc = self.get(mid)
        if doc is None:
            raise ManifestError(
                self.shown(self.path(mid)),
                "file missing",
                expected=f"manifest {mid}",
                detail="is missing (deleted after it was written)",
                missing=True,
            )
        return doc

    def signature(self, mid: str) -> dict[str, str] | None:
        """The stored ``{"keyid", "sig"}`` of a manifest, or None if it is unsigned; a
        signature file that is not of that shape raises ManifestError (check
        ``signature``): it is reported, never taken for a missing signature."""
        path = self.sig_path(mid)

        def bad(found: str) -> ManifestError:
            return ManifestError(
                self.shown(path),
                found,
                check="signature",
                expected="a signature by a trusted key",
                what="signature",
                hint="re-sign by rebuilding with the key (`mlbuild -B TARGET`)",
            )

        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise bad(f"signature file cannot be read: {exc.strerror}") from None
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise bad("signature file is not JSON") from None
        if not isinstance(data, dict):
            raise bad("signature file is not a JSON object")
        keyid, sig = data.get("keyid"), data.get("sig")
        if not isinstance(keyid, str) or not _KEY_ID.fullmatch(keyid):
            raise bad(f"signature file has key id {_show(keyid)}, not 64 hex digits")
        if not isinstance(sig, str):
            raise bad(f"signature file has signature {_show(sig)}, not base64 text")
        return {"keyid": keyid, "sig": sig}

    def _read_index(
        self, target: str, kind: str = "index"
    ) -> tuple[list[str], list[ManifestError]]:
        """(ids oldest first, problems): a line that is not an id is a problem, skipped."""
        path = self._index(target, kind)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return [], []
        except OSError as exc:
            raise ManifestError(
                self.shown(path),
                f"cannot be read: {exc.strerror}",
                check="history",
                expected="a readable history index",
                what="history index",
                hint="fix its permissions",
            ) from None
        ids: list[str] = []
        problems: list[ManifestError] = []
        for number, line in enumerate(raw.split(b"\n"), 1):
            text = line.strip().decode("ascii", errors="replace")
            if not text:
                continue
            if _MANIFEST_ID.fullmatch(text):
                ids.append(text)
                continue
            problems.append(
                ManifestError(
                    self.shown(path),
                    f"line {number}: {_show(text)} is not a manifest id (skipped)",
                    check="history",
                    expected="one manifest id per line",
                    what="history index",
                    hint="the line points at nothing; delete it",
                )
            )
        return ids, problems

    def history(self, target: str) -> list[str]:
        """Manifest ids of ``target``, oldest first. The index only points at manifests, so
        a line that is not an id is skipped (`index_problems` names it)."""
        return self._read_index(target)[0]

    def index_problems(self, target: str) -> list[ManifestError]:
        """Lines of ``target``'s history index that are not manifest ids, each named (to
        report or warn about, not raised)."""
        return self._read_index(target)[1]

    def reproductions(self, target: str) -> tuple[list[str], list[ManifestError]]:
        """Ids of ``target``'s reproduction records, oldest first, and the lines of their
        index that are not ids (skipped, for the audit to name)."""
        return self._read_index(target, "reproductions")

    def current(self, target: str) -> str | None:
        if target in self._latest:
            return self._latest[target]
        ids = self.history(target)
        return ids[-1] if ids else None

    def source_build(self, doc: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """For a restore or rollback: (id, record) of the build it restores, following
        restores of restores; None for a build, for a restore that names none, or when a
        record of the chain is missing. A corrupt one raises ManifestError."""
        seen: set[str] = set()
        while doc.get("status") in ("restored", "rollback"):
            mid = doc.get("restored_from")
            if mid is None or mid in seen or len(seen) >= _MAX_RESTORE_CHAIN:
                return None
            seen.add(mid)
            found = self.get(mid)
            if found is None:
                return None
            if found.get("status") == "built":
                return mid, found
            doc = found
        return None

    def view(self, doc: dict[str, Any]) -> dict[str, Any]:
        """What to show or judge of a record: a restore seen through the build it restores
        (`restore_view`), anything else as it is."""
        source = self.source_build(doc)
        return doc if source is None else restore_view(doc, source[1])


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
)


def _build_facts(doc: dict[str, Any]) -> dict[str, Any]:
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


def restore_disagreements(restore: dict[str, Any], build: dict[str, Any]) -> list[str]:
    """The fields of ``restore`` that differ from the ``build`` it restores, outside its
    own (`RESTORE_OWN_FIELDS`): an honest restore has none."""
    mine, theirs = _build_facts(restore), _build_facts(build)
    return [name for name in mine if not same_value(mine[name], theirs[name])]


def restore_view(restore: dict[str, Any], build: dict[str, Any]) -> dict[str, Any]:
    """``restore`` as it may be shown or judged: every fact from its ``build`` (metrics,
    checks, gates, profile, promotion, environment, params, code, deps, outs…), only its
    own fields (`RESTORE_OWN_FIELDS`) and its deps' manifest links from itself."""
    view = {k: v for k, v in build.items() if k not in RESTORE_OWN_FIELDS}
    view.update({k: restore[k] for k in RESTORE_OWN_FIELDS if k in restore})
    links = {d.get("path"): d.get("manifest") for d in restore.get("deps", [])}
    deps: list[dict[str, Any]] = []
    for dep in build.get("deps", []):
        dep = dict(dep)
        if "target" in dep:
            dep["manifest"] = links.get(dep.get("path"))
        deps.append(dep)
    view["deps"] = deps
    return view


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
    undeclared: Mapping[str, str] | None = None,
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
    if undeclared:
        manifest["undeclared_reads"] = [
            {"path": path, "xxh3": digest} for path, digest in sorted(undeclared.items())
        ]
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
            if not same_value(va, vb):  # as the key compares: 50 → 50.0 is a change
                changes.append({"field": field_name, "key": key, "a": va, "b": vb})
    return changes
