"""`parse_manifest`: the one strict parser of a manifest read back from disk or a remote.

It accepts a record whole or raises `ManifestError` naming the file and what is wrong: not
JSON, not an object, an id that does not recompute, a schema this mlbuild does not read,
or a field of the wrong shape (digests exactly ``xxh3-128:`` + 32 / ``sha256:`` + 64
lowercase hex, dep and out paths relative and normalized, lists and objects where the
readers expect them). The format is records.py's.
"""

from __future__ import annotations

import json
from typing import Any, cast

from ..config.params import covers
from ..kinds import ManifestStatus, OutType, Verdict, words
from ..store.records import RecordError, check_relpath, check_sha256, check_xxh
from .findings import AuditCheck
from .records import (
    MANIFEST_SCHEMA,
    Manifest,
    ManifestError,
    check_manifest_id,
    is_manifest_id,
    manifest_id,
    show_value,
)

__all__ = ["parse_manifest"]

#: What a build record's ``status`` may be (a reproduction is told apart first).
_STATUSES = tuple(w for w in words(ManifestStatus) if w != ManifestStatus.REPRODUCTION)
_OUT_TYPES = words(OutType)
_WHO = ("target", "started", "finished", "user", "host", "mlbuild")


class _Bad(Exception):
    """One field of a manifest that is not of the shape its readers rely on."""


def _need(ok: bool, name: str, value: Any, what: str) -> None:
    if not ok:
        raise _Bad(f"{name} is {show_value(value)}, not {what}")


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
    ``executor``, ``exit_code``, ``log`` and ``restored_from`` are checked when present;
    ``committed`` is true exactly when the status is ``commit``.
    Dep and out paths must be relative and normalized (the audit opens them); code paths
    are only shown, and a script run as ``python ../x.py`` is recorded as it was named.
    A reproduction has a shape of its own (`_check_reproduction`)."""
    if doc.get("status") == ManifestStatus.REPRODUCTION:
        _check_reproduction(doc)
        return
    _check_build_head(doc)
    _check_deps(doc)
    _check_environment(doc)
    _check_outs(doc)
    _check_quality(doc)
    _check_run(doc)


def _check_build_head(doc: dict[str, Any]) -> None:
    """Who, when, status, key, and the command that ran."""
    _check_who(doc)
    _need(
        doc.get("status") in _STATUSES,
        "status",
        doc.get("status"),
        "/".join(words(ManifestStatus)),
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


def _check_deps(doc: dict[str, Any]) -> None:
    """Deps: relative normalized paths (the audit opens them) and their digests."""
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
                is_manifest_id(dep["manifest"]),
                f"deps[{i}].manifest",
                dep["manifest"],
                "a manifest id",
            )


def _check_who(doc: dict[str, Any]) -> None:
    """Target, who, where, when and which mlbuild: the head of every record."""
    for name in _WHO:
        _need(isinstance(doc.get(name), str), name, doc.get(name), "a string")
    _need(bool(doc["target"]), "target", doc["target"], "a target name")


def _check_machine(env: dict[str, Any]) -> None:
    """``environment`` of any record: python, platform, packages and git of its shape."""
    for name in ("python", "platform"):
        _need(_opt_str(env.get(name)), f"environment.{name}", env.get(name), "a string")
    packages = env.get("packages", {})
    _need(isinstance(packages, dict), "environment.packages", packages, "an object")
    git = env.get("git", {})
    _need(isinstance(git, dict), "environment.git", git, "an object")


def _check_ending(doc: dict[str, Any]) -> None:
    """How the run ended: its exit code, and its log's digest."""
    exit_code = doc.get("exit_code")
    _need(
        exit_code is None or (isinstance(exit_code, int) and not isinstance(exit_code, bool)),
        "exit_code",
        exit_code,
        "null or an integer",
    )
    if doc.get("log") is not None:
        _record(check_sha256, doc["log"], "log")


def _check_environment(doc: dict[str, Any]) -> None:
    """A build's environment, and its git commit and dirty flag (which the audit
    judges)."""
    env = doc["environment"]
    _check_machine(env)
    git = env.get("git", {})
    _need(_opt_str(git.get("commit")), "environment.git.commit", git.get("commit"), "a string")
    dirty = git.get("dirty")
    _need(dirty is None or isinstance(dirty, bool), "environment.git.dirty", dirty, "a boolean")


def _check_outs(doc: dict[str, Any]) -> None:
    outs: Any = doc.get("outs")
    _need(isinstance(outs, list), "outs", outs, "a list")
    for i, out in enumerate(outs):
        _need(isinstance(out, dict), f"outs[{i}]", out, "an object")
        _record(check_relpath, out.get("path"), f"outs[{i}].path")
        _need(out.get("type") in _OUT_TYPES, f"outs[{i}].type", out.get("type"), "file/dir")
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


def _check_quality(doc: dict[str, Any]) -> None:
    """Metrics, check and gate verdicts, promotion, profile."""
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


def _check_overrides(doc: dict[str, Any]) -> None:
    """``--set`` values: an object of dotted keys to scalars, each one among the params it
    read (the key hashed the value; this only says where it came from)."""
    overrides: Any = doc.get("overrides", {})
    _need(isinstance(overrides, dict), "overrides", overrides, "an object")
    for key, value in overrides.items():
        _need(
            value is None or isinstance(value, (str, int, float)),
            f"overrides[{key!r}]",
            value,
            "a scalar",
        )
        _need(
            any(covers(read, key) for read in doc["params"]),
            f"overrides[{key!r}]",
            key,
            "a key under one of its params",
        )


def _check_run(doc: dict[str, Any]) -> None:
    """Where it ran, how it ended, what it read undeclared, what it restores."""
    executor = doc.get("executor", {})
    _need(isinstance(executor, dict), "executor", executor, "an object")
    _check_ending(doc)
    undeclared: Any = doc.get("undeclared_reads", [])
    _need(isinstance(undeclared, list), "undeclared_reads", undeclared, "a list")
    for i, read in enumerate(undeclared):
        _need(isinstance(read, dict), f"undeclared_reads[{i}]", read, "an object")
        _record(check_relpath, read.get("path"), f"undeclared_reads[{i}].path")
        _record(check_xxh, read.get("xxh3"), f"undeclared_reads[{i}].xxh3")
    _check_overrides(doc)
    # A commit says so, and only a commit: `audit --require-built` relies on the flag.
    committed = doc.get("status") == ManifestStatus.COMMIT
    _need(
        doc.get("committed") is True if committed else "committed" not in doc,
        "committed",
        doc.get("committed", "absent"),
        "true (status commit)" if committed else "absent (status is not commit)",
    )
    if "restored_from" in doc:
        restored_from = doc["restored_from"]
        _need(
            is_manifest_id(restored_from),
            "restored_from",
            restored_from,
            "a manifest id",
        )


def _check_reproduction(doc: dict[str, Any]) -> None:
    """Raise _Bad naming the first field of a reproduction record that is not of its shape,
    or a verdict its results contradict (a record that says "identical" over a differing
    out is refused, not shown)."""
    _check_reproduction_head(doc)
    _check_results(doc["results"])
    _check_verdict(doc)


def _check_reproduction_head(doc: dict[str, Any]) -> None:
    """Who, when, what it reproduces, where, with which tolerances; verdict and results
    of the right type."""
    _check_who(doc)
    reproduces = doc.get("reproduces")
    _need(is_manifest_id(reproduces), "reproduces", reproduces, "a manifest id")
    _need(_is_number(doc.get("seconds")), "seconds", doc.get("seconds"), "a number")
    for name in ("environment", "executor", "tolerances"):
        _need(isinstance(doc.get(name), dict), name, doc.get(name), "an object")
    _check_machine(doc["environment"])
    for metric, tolerance in doc["tolerances"].items():
        _need(
            _is_number(tolerance) and tolerance >= 0,
            f"tolerances[{metric!r}]",
            tolerance,
            "a number >= 0",
        )
    verdicts = words(Verdict)
    _need(doc.get("verdict") in verdicts, "verdict", doc.get("verdict"), "/".join(verdicts))
    results: Any = doc.get("results")
    _need(isinstance(results, list), "results", results, "a list")


def _check_results(results: list[Any]) -> None:
    """Each out's result: its digests, and ``identical`` as they say."""
    for i, res in enumerate(results):
        where = f"results[{i}]"
        _need(isinstance(res, dict), where, res, "an object")
        _record(check_relpath, res.get("path"), f"{where}.path")
        _need(res.get("type") in _OUT_TYPES, f"{where}.type", res.get("type"), "file/dir")
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


def _check_verdict(doc: dict[str, Any]) -> None:
    """The verdict and ``differing`` as the results say; the error, exit code and log."""
    verdict = Verdict(doc["verdict"])
    results: list[dict[str, Any]] = doc["results"]
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
    _check_ending(doc)


def parse_manifest(raw: bytes, mid: str, subject: str) -> Manifest:
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
            check=AuditCheck.MANIFEST_ID,
            expected=mid,
            detail=f"is corrupt: its content hashes to {actual}, not to its id (edited)",
        )
    if doc.get("schema") != MANIFEST_SCHEMA:
        raise ManifestError(
            subject,
            str(doc.get("schema")),
            detail=f"has schema {show_value(doc.get('schema'))}, which this mlbuild does not read",
            check=AuditCheck.SCHEMA,
            expected=MANIFEST_SCHEMA,
            hint="use the mlbuild version that wrote it",
        )
    try:
        _check_fields(doc)
    except _Bad as exc:
        raise ManifestError(subject, f"malformed: {exc}", detail=f"is corrupt: {exc}") from None
    # The trust boundary: every field the readers use was checked above.
    return cast(Manifest, doc)

