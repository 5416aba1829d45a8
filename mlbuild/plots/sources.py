"""Where the bytes of a plot come from: the workspace, a recorded build, a git revision.

`collect` gathers, for each declared plot of the chosen targets, one entry per source that
has the file (`data.plot_data`), and names the sources that do not (skipped, with why) rather
than failing: a target not built yet, a revision before the plot existed.

- `Workspace`: the file as it is now.
- `Build`: a manifest (by id, resolved by the caller with the one resolver,
  ``Workspace.resolve_manifest``): the recorded out's bytes from the cache, verified against
  their digest. It only speaks for the manifest's own target.
- `Revision`: a git revision, as `metrics diff REV` reads one (experiments.py): the file as
  committed there (``git show REV:./PATH``), else, as DVC does through dvc.lock, the out
  digest the lock file committed there records, read from the cache.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..config import Pipeline
from ..config.specs import PlotSpec
from ..digest import hash_bytes
from ..errors import UsageError
from ..store import Cache, LockEntry
from ..store.records import RecordError
from .data import PlotDataError, plot_data, read_table

__all__ = ["Build", "Revision", "Source", "WorkspaceFiles", "collect", "short_id"]


class Source(Protocol):
    """One side of a comparison: its label, and the bytes of a target's plot file (None,
    with why, when it has none)."""

    label: str

    def read(self, target: str, path: str) -> tuple[bytes | None, str]: ...


def _read_object(cache: Cache, digest: str, rel: str, where: str) -> tuple[bytes | None, str]:
    """An out's bytes from the cache, verified: a missing or corrupt object is named."""
    try:
        obj = cache.object_path(digest)
    except RecordError:
        return None, f"{where} records no usable digest for {rel}"
    try:
        with open(obj, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None, f"{where} records {rel}, but the cache lacks it (`mlbuild pull`?)"
    except OSError as exc:
        return None, f"cannot read the cache object of {rel}: {exc.strerror or exc}"
    if hash_bytes(data) != digest:
        return None, f"the cache object of {rel} ({where}) is corrupt: `mlbuild cache verify`"
    return data, ""


@dataclass
class WorkspaceFiles:
    """The plot files as they are in the workspace now."""

    root: str
    label: str = "workspace"

    def read(self, target: str, path: str) -> tuple[bytes | None, str]:
        try:
            with open(os.path.join(self.root, path), "rb") as f:
                return f.read(), ""
        except FileNotFoundError:
            return None, f"{path} does not exist: build it with `mlbuild {target}`"
        except OSError as exc:
            return None, f"cannot read {path}: {exc.strerror or exc}"


def short_id(mid: str) -> str:
    """``sha256:3f2a9c1b0d4e``: how a manifest labels a series."""
    algo, _, hexd = mid.partition(":")
    return f"{algo}:{hexd[:12]}"


@dataclass
class Build:
    """The outs a manifest records, from the cache: for its own target only."""

    cache: Cache
    mid: str
    manifest: Mapping[str, Any]
    label: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or short_id(self.mid)

    def read(self, target: str, path: str) -> tuple[bytes | None, str]:
        if self.manifest.get("target") != target:
            return None, ""  # not a build of this target: no series, nothing to say
        for out in self.manifest.get("outs") or []:
            if out.get("path") == path and out.get("type", "file") == "file":
                return _read_object(self.cache, str(out.get("xxh3")), path, self.label)
        return None, f"manifest {self.label} records no {path} (built before the plot?)"


@dataclass
class Revision:
    """A git revision: the committed file, else the out its committed lock file records."""

    root: str
    lock_path: str
    cache: Cache
    label: str
    _lock: dict[str, LockEntry] | None = field(default=None, repr=False)
    _lock_problem: str = field(default="", repr=False)

    def read(self, target: str, path: str) -> tuple[bytes | None, str]:
        from ..experiments import file_at_revision

        hint = "name a commit, branch or tag, or a manifest id from `mlbuild history TARGET`"
        try:
            raw = file_at_revision(self.root, path, self.label, missing_ok=True, hint=hint)
        except UsageError as exc:
            if "invalid object name" not in exc.message:
                raise
            raise UsageError(
                f"{self.label!r} is neither a git revision nor a manifest id", hint=hint
            ) from None
        if raw is not None:
            return raw, ""
        entry = self._entries().get(target)
        if entry is None:
            why = self._lock_problem or f"mlbuild.lock there records no build of {target}"
            return None, f"{path} is not committed at {self.label}, and {why}"
        for rec in entry.outs:
            if rec.path == path and rec.type == "file":
                return _read_object(self.cache, rec.xxh, path, f"mlbuild.lock at {self.label}")
        return None, f"{path} is neither committed at {self.label} nor recorded in its lock"

    def _entries(self) -> dict[str, LockEntry]:
        from ..errors import ConfigError
        from ..experiments import lock_at_revision

        if self._lock is None:
            try:
                self._lock = lock_at_revision(self.root, self.lock_path, self.label)
            except (UsageError, ConfigError) as exc:
                self._lock, self._lock_problem = {}, f"its lock file is unusable ({exc.message})"
        return self._lock


def _plots_of(pipeline: Pipeline, names: Iterable[str]) -> list[tuple[str, PlotSpec]]:
    return [(n, p) for n in names for p in pipeline.targets[n].plots]


def collect(
    pipeline: Pipeline,
    names: Sequence[str],
    sources: Sequence[Source],
    *,
    lenient: bool = False,
) -> list[dict[str, Any]]:
    """Every plot of ``names`` (in that order), each with one entry per source that has its
    file (``revs``) and the sources that do not (``skipped``: source, why). A file that
    cannot be drawn raises `PlotDataError`; ``lenient`` (the report) skips it, saying why."""
    plots: list[dict[str, Any]] = []
    for target, spec in _plots_of(pipeline, names):
        revs: list[dict[str, Any]] = []
        skipped: list[dict[str, str]] = []
        axes: dict[str, Any] = {}
        for source in sources:
            raw, why = source.read(target, spec.path)
            if raw is None:
                if why:
                    skipped.append({"rev": source.label, "why": why})
                continue
            where = spec.path if source.label == "workspace" else f"{spec.path}@{source.label}"
            try:
                table = read_table(spec.path, raw, where)
                drawn = plot_data(dataclasses.replace(spec, path=where), table)
            except PlotDataError as exc:
                if not lenient:
                    raise
                skipped.append({"rev": source.label, "why": str(exc)})
                continue
            axes = {"x": drawn.pop("x"), "y": drawn.pop("y")}
            revs.append({"rev": source.label, **drawn})
        plots.append(
            {
                "target": target,
                **spec.to_json(),
                **axes,
                "revs": revs,
                "skipped": skipped,
            }
        )
    return plots
