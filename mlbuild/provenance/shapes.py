"""The shapes of a manifest record as mypy sees them: one TypedDict per part.

The record format itself (every field, both kinds of record) is documented in records.py;
these types say the same to the type checker, so the audit, the views and the exports are
checked field by field. Only the strict parser (parse.py) turns a dict read from disk into
a `Manifest`, after checking it; `build_manifest` (records.py) makes one from a build.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = [
    "CheckRecord",
    "DepEntry",
    "EnvironmentRecord",
    "ExecutorRecord",
    "GateRecord",
    "GitRecord",
    "KeyComponents",
    "Manifest",
    "OutEntry",
    "ProfileRecord",
    "PromotionRecord",
    "ReadRecord",
    "ReproducedOut",
]


class _DepFields(TypedDict):
    path: str  # relative, normalized (parse.py checks it)
    xxh3: str


class DepEntry(_DepFields, total=False):
    """One of a parsed manifest's ``deps``: a target dep links its producer's manifest."""

    target: str
    manifest: str | None


class _OutFields(TypedDict):
    path: str  # relative, normalized (parse.py checks it)
    type: str  # "file" or "dir"
    size: int
    xxh3: str


class OutEntry(_OutFields, total=False):
    """One of a parsed manifest's ``outs`` (``sha256`` absent or null: never hashed)."""

    sha256: str | None


class KeyComponents(TypedDict, total=False):
    """``components``: the build key's inputs (rebuild/keys.py writes them; a lock entry
    holds the same). ``checks``, ``gate`` and ``promote`` only where declared."""

    cmd: list[str] | None
    python: str | None
    code: dict[str, str]  # code file → xxh3
    deps: dict[str, str]  # dep path → xxh3
    params: dict[str, Any]
    env: dict[str, Any]  # name → value, or {"secret": true} (never the value)
    packages: dict[str, str]  # package → version
    matrix: dict[str, Any]
    outs: list[str]
    checks: list[dict[str, Any]]
    gate: list[dict[str, Any]]
    promote: dict[str, Any]


class GitRecord(TypedDict, total=False):
    commit: str | None
    dirty: bool | None
    note: str  # why commit is null


class EnvironmentRecord(TypedDict, total=False):
    """``environment``: the machine that built (or restored, or reproduced)."""

    python: str | None
    platform: str | None
    packages: dict[str, str]
    git: GitRecord


class CheckRecord(TypedDict, total=False):
    """One of ``checks``: a data check's verdict on one out (checks.CheckResult)."""

    check: str  # a kinds.CheckKind value
    out: str
    severity: str  # a kinds.Severity value
    passed: bool
    message: str
    column: str
    value: float


class GateRecord(TypedDict, total=False):
    """One of ``gates``: a gate's verdict (metrics.GateResult); one bound is set."""

    metric: str
    min: float | None
    max: float | None
    max_drop: float | None
    max_rise: float | None
    passed: bool
    value: float | None
    previous: float | None
    message: str


# ``from`` is a keyword: the functional form.
PromotionRecord = TypedDict(
    "PromotionRecord",
    {"from": str, "by": str, "mode": str, "winner": str | None, "scores": dict[str, Any]},
    total=False,
)


class ProfileRecord(TypedDict, total=False):
    schema: str  # PROFILE_SCHEMA
    tables: dict[str, Any]  # out path → table profile (checks/profile.py)


class ExecutorRecord(TypedDict, total=False):
    type: str  # "local" or "dask"
    host: str
    scheduler: str
    worker: str


class ReadRecord(TypedDict):
    """One of ``undeclared_reads``."""

    path: str
    xxh3: str


class ReproducedOut(TypedDict, total=False):
    """One of a reproduction's ``results``."""

    path: str
    type: str  # a kinds.OutType value
    recorded: str
    reproduced: str | None
    identical: bool
    within_tolerance: bool
    summary: str
    metrics: list[dict[str, Any]]
    table: dict[str, Any]


class _ManifestHead(TypedDict):
    """What every record holds, a build's or a reproduction's (parse.py checks it)."""

    schema: str
    target: str
    status: str  # a kinds.ManifestStatus value: a plain string in the hashed JSON
    started: str
    finished: str
    seconds: float
    user: str
    host: str
    mlbuild: str


class Manifest(_ManifestHead, total=False):
    """A manifest as parse.parse_manifest accepts it (the format is the module doc's).

    One type for both kinds of record: a build, restore or rollback holds the first
    group of fields (parse.py requires those every v1 writer wrote), a reproduction the
    second; ``status`` tells them apart."""

    # a build, restore or rollback
    key: str
    components: KeyComponents
    command: list[str] | None
    python: str | None
    code: dict[str, str]
    deps: list[DepEntry]
    params: dict[str, Any]
    env: dict[str, Any]
    environment: EnvironmentRecord
    outs: list[OutEntry]
    metrics: dict[str, Any] | None
    checks: list[CheckRecord]
    gates: list[GateRecord]
    promotion: PromotionRecord
    profile: ProfileRecord
    executor: ExecutorRecord
    exit_code: int | None
    log: str | None
    restored_from: str
    committed: bool  # `mlbuild commit` (status commit) only
    undeclared_reads: list[ReadRecord]
    overrides: dict[str, Any]  # `--set` values among its params (when given)
    # a reproduction (also: environment, executor, exit_code, log)
    reproduces: str
    tolerances: dict[str, float]
    verdict: str  # a kinds.Verdict value
    results: list[ReproducedOut]
    differing: list[str]
    error: str | None
