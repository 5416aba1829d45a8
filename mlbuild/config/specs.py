"""What a loaded mlbuild.yaml is: typed, frozen records the rest of mlbuild reads.

`Pipeline` holds every `TargetSpec` in file order; a target's deps are `DepSpec`s, its data
checks, gates and promotion `CheckSpec`, `GateSpec` and `PromoteSpec` (parsed in ml.py).
Tabular outs are recognized by extension (`TABULAR_EXTENSIONS`, `is_tabular`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..errors import SourcePos
from ..kinds import DaskMode, ExecutorType
from .schema import GATE_BOUNDS

__all__ = [
    "DASK_CONNECT_TIMEOUT",
    "TABULAR_EXTENSIONS",
    "CheckSpec",
    "DepKind",
    "DepSpec",
    "GateSpec",
    "Pipeline",
    "PlotSpec",
    "PromoteSpec",
    "TargetSpec",
    "is_tabular",
]

# Seconds a build waits for the Dask scheduler before it stops with a usage error.
DASK_CONNECT_TIMEOUT = 10.0
TABULAR_EXTENSIONS = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson")


def is_tabular(path: str) -> bool:
    return path.lower().endswith(TABULAR_EXTENSIONS)


class DepKind(Enum):
    """What a dep entry names."""

    TARGET = "target"
    PATH = "path"
    GLOB = "glob"


@dataclass(frozen=True)
class DepSpec:
    """One entry of ``deps:`` after resolution (a path produced by a target becomes TARGET)."""

    kind: DepKind
    value: str  # target name, normalized path, or glob pattern
    paths: tuple[str, ...] = ()  # files a glob matched when the pipeline was loaded


@dataclass(frozen=True)
class TargetSpec:
    """A declared target, parsed, interpolated and validated."""

    name: str
    cmd: tuple[str, ...] | None
    python: str | None
    deps: tuple[DepSpec, ...]
    dep_paths: tuple[str, ...]  # what ${deps} and a callable's ``deps`` list: files, in order
    outs: tuple[str, ...]
    params: Mapping[str, Any]
    env: Mapping[str, str]
    secrets: Mapping[str, str]  # secret env name → the caller's variable it is read from
    packages: tuple[str, ...]
    resources: Mapping[str, int]
    matrix: Mapping[str, Any]
    always: bool
    retries: int
    desc: str
    pos: SourcePos
    metrics: tuple[str, ...] = ()  # metrics files (also outs): JSON or YAML, read after a run
    checks: tuple[CheckSpec, ...] = ()
    gates: tuple[GateSpec, ...] = ()
    promote: PromoteSpec | None = None
    template: str = ""  # the matrix target name it was expanded from ("model:{algo}")
    # A Python read of an undeclared workspace file fails the build instead of warning.
    # Not part of the key: it decides how a run is judged, not what it produces.
    strict_inputs: bool = False
    # Snakemake's temp(): the outs are deleted once every dependent in the build succeeded
    # (only if the cache holds them), and restored when a dependent must run. Not part of
    # the key: it decides where the outs live, not what they are.
    temp: bool = False
    # Files to plot (also outs, listed before the metrics files); what they look like is not
    # part of the key, only their bytes (as outs) are.
    plots: tuple[PlotSpec, ...] = ()

    @property
    def kind(self) -> str:
        """The part before the first ``:`` (empty for a bare name)."""
        return self.name.split(":", 1)[0] if ":" in self.name else ""

    @property
    def dep_targets(self) -> tuple[str, ...]:
        """Names of the targets this one depends on, sorted and unique."""
        return tuple(sorted({d.value for d in self.deps if d.kind is DepKind.TARGET}))


@dataclass(frozen=True)
class Pipeline:
    """All targets of one mlbuild.yaml, in file order, with the workspace root."""

    root: str
    config_path: str
    targets: Mapping[str, TargetSpec]
    default: tuple[str, ...]
    jobs: int | None = None
    param_files: tuple[str, ...] = ()
    out_owner: Mapping[str, str] = field(default_factory=dict)
    signing_key: str | None = None  # workspace-relative path of the Ed25519 private key
    trusted_keys: tuple[str, ...] = ()  # workspace-relative paths of accepted public keys
    remote: str | None = None  # fsspec URL of the shared cache (store/remote.py)
    remote_options: Mapping[str, Any] = field(default_factory=dict)  # given to fsspec
    remote_write: bool = False  # push after every successful build, as --push
    cache_link: tuple[str, ...] = ("reflink", "copy")  # LinkType words, first that works
    # Plain words (the Python API and the JSON stay as they were), compared with members:
    executor: str = ExecutorType.LOCAL.value  # an ExecutorType word (executors/dask.py)
    executor_address: str | None = None  # the Dask scheduler's address
    executor_mode: str = DaskMode.SHARED.value  # Dask: a DaskMode word (shared fs, or remote)
    executor_connect_timeout: float = DASK_CONNECT_TIMEOUT  # Dask: seconds to wait at start
    overrides: Mapping[str, Any] = field(default_factory=dict)  # --set KEY=VALUE, this build

    def owner_of(self, path: str) -> str | None:
        """The target whose out is ``path`` or contains it, if any."""
        probe = path
        while probe:
            owner = self.out_owner.get(probe)
            if owner is not None:
                return owner
            probe = posixpath.dirname(probe)
        return None


@dataclass(frozen=True)
class CheckSpec:
    """One data check on one or more tabular outs of a target."""

    check: str
    severity: str  # "error" fails the target (exit 3); "warn" records and prints
    outs: tuple[str, ...]  # the tabular outs it reads
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """As it joins the build key and the manifest (sorted, plain data)."""
        return {
            "check": self.check,
            "severity": self.severity,
            "outs": list(self.outs),
            **{k: self.options[k] for k in sorted(self.options)},
        }

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns this check reads (empty: all of them)."""
        if "column" in self.options:
            return (self.options["column"],)
        cols = self.options.get("columns")
        if isinstance(cols, Mapping):
            return tuple(cols)
        return tuple(cols or ())


@dataclass(frozen=True)
class GateSpec:
    """One condition a target's metrics must meet before its outs replace the previous."""

    metric: str
    min: float | None = None
    max: float | None = None
    max_drop: float | None = None  # vs the previous build: old - new must be <= max_drop
    max_rise: float | None = None  # vs the previous build: new - old must be <= max_rise

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"metric": self.metric}
        for name in GATE_BOUNDS:
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.max_drop is not None or self.max_rise is not None:
            data["vs"] = "previous"
        return data

    def describe(self) -> str:
        if self.min is not None:
            return f"{self.metric} >= {self.min:g}"
        if self.max is not None:
            return f"{self.metric} <= {self.max:g}"
        if self.max_rise is not None:
            return f"{self.metric} rises by at most {self.max_rise:g} vs the previous build"
        return f"{self.metric} drops by at most {self.max_drop:g} vs the previous build"



@dataclass(frozen=True)
class PlotSpec:
    """One entry of ``plots:``: a data file of the target and how to draw it (DVC's
    ``plots:``, with ``kind`` for DVC's ``template``). None for x or y: the kind's default,
    decided from the data (config/schema.py PLOT_DEFAULTS)."""

    path: str
    kind: str = "line"
    x: str | None = None
    y: tuple[str, ...] = ()
    title: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "x": self.x,
            "y": list(self.y),
            "title": self.title,
        }


@dataclass(frozen=True)
class PromoteSpec:
    """``promote:``: pick the best of ``candidates`` by a metric and copy its outs."""

    pattern: str
    by: str
    mode: str  # "max" or "min"
    candidates: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"from": self.pattern, "by": self.by, "mode": self.mode}
