"""`mlbuild reproduce`, phase 3: compare each recorded out with what the re-run wrote.

A differing metrics file says which metric moved and by how much (judged against
``--tolerance``), a table which rows and columns changed, a directory which files, any
other file its sizes and first differing line. Recorded copies come from the cache."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import is_tabular
from ..config.params import MISSING
from ..digest import LinkOutside, hash_file, hash_tree, link_digest, walk_tree
from ..errors import MlbuildError
from ..kinds import OutType
from ..store import Cache, OutRecord

if TYPE_CHECKING:
    from ..config import TargetSpec
    from .records import Manifest

__all__ = ["Comparer", "OutResult"]

_SHOWN = 5  # names listed per kind of difference before "+N more"


@dataclass(frozen=True)
class OutResult:
    """One recorded out, compared with what the re-run wrote."""

    path: str
    type: str  # "file" or "dir", as recorded
    recorded: str  # sha256
    reproduced: str | None  # sha256; None: missing (or not a file/dir we can digest)
    within_tolerance: bool
    summary: str
    metrics: tuple[dict[str, Any], ...] = ()
    table: dict[str, Any] | None = None

    @property
    def identical(self) -> bool:
        return self.reproduced == self.recorded

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "type": self.type,
            "recorded": self.recorded,
            "reproduced": self.reproduced,
            "identical": self.identical,
            "within_tolerance": self.within_tolerance,
            "summary": self.summary,
        }
        if self.metrics:
            data["metrics"] = list(self.metrics)
        if self.table is not None:
            data["table"] = self.table
        return data



class Comparer:
    """Compares a re-run's outs (under ``work``) with a build's record."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def compare(
        self,
        spec: TargetSpec,
        build: Manifest,
        work: str,
        scratch: str,
        tolerances: dict[str, float],
    ) -> list[OutResult]:
        recorded_root = os.path.join(scratch, "recorded")
        metrics_files = [m for m in spec.metrics if m in {o["path"] for o in build["outs"]}]
        results: list[OutResult] = []
        for out in build["outs"]:
            # Read as plain data by the comparison, as before the record was typed.
            plain: dict[str, Any] = dict(out)
            results.append(
                self._compare_out(plain, work, recorded_root, metrics_files, build, tolerances)
            )
        return results

    def _compare_out(
        self,
        out: dict[str, Any],
        work: str,
        recorded_root: str,
        metrics_files: list[str],
        build: Manifest,
        tolerances: dict[str, float],
    ) -> OutResult:
        rel, kind, recorded = out["path"], out["type"], out["sha256"]
        now = _sha256_now(os.path.join(work, rel), work)
        if now == recorded:
            return OutResult(rel, kind, recorded, now, True, "bit-identical")
        if now is None or not now.startswith("sha256:"):
            return OutResult(rel, kind, recorded, None, False, now or "missing: not written")
        if kind == OutType.DIR:
            return OutResult(rel, kind, recorded, now, False, self._tree_diff(out, work))
        old = self._recorded_copy(out, recorded_root)
        if rel in metrics_files:
            metrics, within, summary = _metrics_diff(
                rel, old, work, build, len(metrics_files), tolerances
            )
            return OutResult(rel, kind, recorded, now, within, summary, tuple(metrics))
        if is_tabular(rel):
            table, summary = _table_diff(rel, recorded_root if old else None, work)
            return OutResult(rel, kind, recorded, now, False, summary, table=table)
        summary = _bytes_diff(out, old, os.path.join(work, rel))
        return OutResult(rel, kind, recorded, now, False, summary)

    def _recorded_copy(self, out: dict[str, Any], recorded_root: str) -> str | None:
        """The recorded bytes of a file out, from the cache, under ``recorded_root`` (with
        its own name: readers go by the extension); None when the cache lacks them."""
        if out["type"] != OutType.FILE:
            return None
        rec = OutRecord(out["path"], OutType.FILE.value, out["xxh3"], out["sha256"], out["size"])
        dest = os.path.join(recorded_root, out["path"])
        try:
            if not self.cache.has(rec.xxh):
                return None
            self.cache.restore_out(rec, dest, at=out["path"])
        except (MlbuildError, OSError):
            return None
        return dest

    def _tree_diff(self, out: dict[str, Any], work: str) -> str:
        """Which files of a directory out changed, from the recorded tree in the cache."""
        try:
            if not self.cache.has(out["xxh3"]):
                return "recorded tree not in the cache: cannot say which files differ"
            old = {rel: (xxh, mode) for rel, xxh, mode in self.cache.read_tree(out["xxh3"])}
        except (MlbuildError, OSError):
            return "recorded tree unusable in the cache: cannot say which files differ"
        full = os.path.join(work, out["path"])
        if not os.path.isdir(full):
            return "a file where a directory was recorded"
        new: dict[str, tuple[str, str]] = {}
        for rel, path, mode in walk_tree(full, confine=work):
            digest = (link_digest if mode == "l" else hash_file)(path, want_sha256=False)
            new[rel] = (digest.xxh, mode)
        parts = _name_changes(
            changed=[r for r in sorted(old) if r in new and old[r] != new[r]],
            added=[r for r in sorted(new) if r not in old],
            removed=[r for r in sorted(old) if r not in new],
            noun="files",
        )
        return "; ".join(parts) or "same files, different modes"


def _sha256_now(full: str, confine: str) -> str | None:
    """sha256 of an out as the re-run left it (a tree walked as outs are); None when it
    is missing; a sentence (not a digest) when it cannot be an out."""
    if os.path.isdir(full) and not os.path.islink(full):
        try:
            walked = walk_tree(full, confine=confine)
        except LinkOutside:
            return "holds a symlink leading outside the scratch directory"
        entries = [
            (rel, (link_digest if mode == "l" else hash_file)(path, want_sha256=True), mode)
            for rel, path, mode in walked
        ]
        return hash_tree(entries).sha256
    if os.path.islink(full):
        real = os.path.realpath(full)
        base = os.path.realpath(confine)
        if not real.startswith(base + os.sep):
            return "a symlink leading outside the scratch directory"
    if not os.path.isfile(full):
        return None
    return hash_file(full, want_sha256=True).sha256



def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a metrics document by dotted name, list items included (``cm.0.1``):
    a metrics file is within tolerance only if nothing but tolerated numbers moved."""
    found: dict[str, Any] = {}
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            found.update(_leaves(value[key], f"{prefix}{key}."))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.update(_leaves(item, f"{prefix}{i}."))
    else:
        found[prefix[:-1]] = value
    return found


def _finite(value: Any) -> Any:
    """A value a manifest can hold (NaN and infinities are recorded as null)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _metrics_diff(
    rel: str,
    old_path: str | None,
    work: str,
    build: Mapping[str, Any],
    n_files: int,
    tolerances: Mapping[str, float],
) -> tuple[list[dict[str, Any]], bool, str]:
    """(per-metric changes, within tolerance, summary) of a differing metrics file. The
    recorded side is the file from the cache, else (one metrics file only) the metrics
    the manifest recorded."""
    from ..metrics import _parse, flatten

    try:
        with open(os.path.join(work, rel), encoding="utf-8") as f:
            new_doc = _parse(rel, f.read())
    except (OSError, UnicodeDecodeError, MlbuildError) as exc:
        return [], False, f"cannot read the reproduced file ({exc})"
    note = ""
    if old_path is not None:
        try:
            with open(old_path, encoding="utf-8") as f:
                old = _leaves(_parse(rel, f.read()))
        except (OSError, UnicodeDecodeError, MlbuildError) as exc:
            return [], False, f"cannot read the recorded file ({exc})"
        new = _leaves(new_doc)
    elif n_files == 1 and build.get("metrics") is not None and isinstance(new_doc, dict):
        # What the manifest recorded: the file's metrics as `flatten` reads them.
        old = dict(build.get("metrics") or {})
        new = {k: _finite(v) for k, v in flatten(new_doc).items()}
        note = " (recorded file not in the cache: compared with the manifest's metrics)"
    else:
        return [], False, "recorded file not in the cache: cannot say which metric moved"
    changes = _metric_changes(old, new, tolerances)
    within = all(c["within"] for c in changes)
    if not changes:
        return [], True, "same metric values, different bytes" + note
    return changes, within, ", ".join(_describe_metric(c) for c in changes) + note


def _metric_changes(
    old: dict[str, Any], new: dict[str, Any], tolerances: Mapping[str, float]
) -> list[dict[str, Any]]:
    """Each metric that moved: numbers with their delta, judged against its tolerance; any
    other change is never within tolerance."""
    changes: list[dict[str, Any]] = []
    for metric in sorted(set(old) | set(new)):
        a, b = old.get(metric, MISSING), new.get(metric, MISSING)
        if a is not MISSING and b is not MISSING and type(a) is type(b) and a == b:
            continue
        if _number(a) is not None and _number(b) is not None:
            if a == b:
                continue
            delta = round(float(b) - float(a), 12)  # no float noise: -0.007043, not ...0215
            tol = tolerances.get(metric)
            within = tol is not None and abs(delta) <= tol * (1 + 1e-9) + 1e-12
            entry = {
                "metric": metric,
                "recorded": a,
                "reproduced": b,
                "delta": delta,
                "within": within,
            }
            if tol is not None:
                entry["tolerance"] = tol
            changes.append(entry)
            continue
        changes.append(
            {
                "metric": metric,
                "recorded": None if a is MISSING else _finite(a),
                "reproduced": None if b is MISSING else _finite(b),
                "within": False,
            }
        )
    return changes


def _describe_metric(change: dict[str, Any]) -> str:
    a, b = change["recorded"], change["reproduced"]
    if "delta" in change:
        text = f"{change['metric']} {a} → {b} ({change['delta']:+.6g}"
        if "tolerance" in change:
            text += f", tolerance {change['tolerance']:g}"
        return text + ")"
    return f"{change['metric']} {json.dumps(a)} → {json.dumps(b)}"


def _table_diff(
    rel: str, recorded_root: str | None, work: str
) -> tuple[dict[str, Any] | None, str]:
    """Rows and columns of a differing table, read with pandas (imported there only):
    ``recorded_root`` holds the recorded copy at ``rel`` (None: not in the cache)."""
    if recorded_root is None:
        return None, "recorded table not in the cache: cannot say which columns changed"
    from ..checks.tables import read_table

    try:
        old = read_table(recorded_root, rel)
        new = read_table(work, rel)
    except MlbuildError as exc:
        return None, f"cannot compare as a table: {exc.message}"
    old_cols = [str(c) for c in old.columns]
    new_cols = [str(c) for c in new.columns]
    common = [c for c in old.columns if c in set(new.columns)]
    n = min(len(old), len(new))
    changed = []
    for col in common:
        a = old[col].iloc[:n].reset_index(drop=True)
        b = new[col].iloc[:n].reset_index(drop=True)
        if not a.equals(b) or (len(old) != len(new) and str(a.dtype) != str(b.dtype)):
            changed.append(str(col))
    added = [c for c in new_cols if c not in old_cols]
    removed = [c for c in old_cols if c not in new_cols]
    table = {
        "rows": [len(old), len(new)],
        "columns_changed": changed,
        "columns_added": added,
        "columns_removed": removed,
    }
    parts = []
    if len(old) != len(new):
        parts.append(f"rows {len(old)} → {len(new)}")
    parts += _name_changes(changed=changed, added=added, removed=removed, noun="columns")
    if not parts and old_cols != new_cols:
        parts.append("columns reordered")
    return table, "; ".join(parts) or f"same {len(new)} rows and values, different bytes"


def _name_changes(
    *, changed: list[str], added: list[str], removed: list[str], noun: str
) -> list[str]:
    def shown(names: list[str]) -> str:
        more = f" (+{len(names) - _SHOWN} more)" if len(names) > _SHOWN else ""
        return ", ".join(names[:_SHOWN]) + more

    parts = []
    for label, names in (("changed", changed), ("added", added), ("removed", removed)):
        if names:
            parts.append(f"{noun} {label}: {shown(names)}")
    return parts


def _bytes_diff(out: dict[str, Any], old_path: str | None, new_path: str) -> str:
    """Sizes, and for text the first line that differs."""
    size = os.path.getsize(new_path)
    text = f"{out['size']} → {size} bytes" if size != out["size"] else f"same size ({size} bytes)"
    if old_path is None:
        return text + "; recorded bytes not in the cache"
    limit = 1 << 20
    try:
        with open(old_path, "rb") as f:
            a = f.read(limit).decode("utf-8").splitlines()
        with open(new_path, "rb") as f:
            b = f.read(limit).decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return text + ", binary"
    for number, (x, y) in enumerate(zip(a, b, strict=False), 1):
        if x != y:
            return text + f"; first difference at line {number}"
    shorter = min(len(a), len(b)) + 1
    return text + f"; first difference at line {shorter}"
