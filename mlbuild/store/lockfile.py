"""``mlbuild.lock``: the committed record of the last build of every target.

Format (version 1), JSON with sorted keys and two-space indent, so that two clean builds of
the same sources give byte-identical files and git diffs stay readable::

    {
      "version": 1,
      "targets": {
        "<target>": {
          "key": "xxh3-128:…",
          "components": {… every input of the build key …},
          "outs": [{"path", "type", "xxh", "sha256", "size", "executable"}, …],
          "metrics": {"accuracy": 0.97},      # only for targets with metrics
          "undeclared": {"<path>": "xxh3-128:…"}  # only when its Python read files it
                                              # does not declare (mlbuild/reads.py)
        }
      }
    }

No timestamps, hosts or users: those belong in manifests, not in a file meant to be
committed. Metrics are kept here (not only in manifests) because they are a function of
the metrics files' bytes, already recorded, and because ``metrics diff REV`` must work from
a git revision alone. The lock file doubles as the local trace: a target is fresh when its key and
its outs' digests match the entry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

from .. import observe
from ..errors import ConfigError
from .atomic import atomic_write
from .records import OutRecord, RecordError, check_relpath, check_unique, check_xxh

LOCK_VERSION = 1


@dataclass(frozen=True)
class LockEntry:
    key: str
    components: dict[str, Any]
    outs: tuple[OutRecord, ...]
    metrics: dict[str, Any] | None = None
    # Workspace files its Python read without declaring them (reads.py), with the digest
    # they had: a change to one makes the target stale although its key is unchanged.
    undeclared: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        data = {
            "key": self.key,
            "components": self.components,
            "outs": [o.to_json() for o in self.outs],
        }
        if self.metrics is not None:
            data["metrics"] = self.metrics
        if self.undeclared:
            data["undeclared"] = dict(sorted(self.undeclared.items()))
        return data


class LockFile:
    """In-memory view of mlbuild.lock; `save` writes it atomically and deterministically."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: dict[str, LockEntry] = {}
        self.dirty = False
        observer = observe.active()
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            if observer is not None:
                observer.read(path, None)
            return
        if observer is not None:
            observer.read(path, raw)
        self.entries = self.parse(path, raw)

    @staticmethod
    def parse(path: str, raw: bytes) -> dict[str, LockEntry]:
        """The entries of a lock file's bytes (``path`` names it in errors), through the
        strict record parser: keys and out digests exactly shaped, paths relative and
        normalized. An older format gives none; anything malformed is a ConfigError."""
        entries: dict[str, LockEntry] = {}
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("version") != LOCK_VERSION:
                return entries  # an older format is a cache of state, not a source of truth
            targets = data.get("targets", {})
            if not isinstance(targets, dict):
                raise ValueError("targets is not an object")
            for name, entry in targets.items():
                if not isinstance(entry, dict):
                    raise ValueError(f"the entry of {name!r} is not an object")
                where = f"target {name!r}"
                components, outs = entry.get("components"), entry.get("outs")
                metrics = entry.get("metrics")
                if not isinstance(components, dict) or not isinstance(outs, list):
                    raise ValueError(f"{where}: components or outs of the wrong type")
                if metrics is not None and not isinstance(metrics, dict):
                    raise ValueError(f"{where}: metrics is not an object")
                records = tuple(OutRecord.from_json(o, where) for o in outs)
                check_unique(records, where)
                undeclared = entry.get("undeclared", {})
                if not isinstance(undeclared, dict):
                    raise ValueError(f"{where}: undeclared is not an object")
                entries[name] = LockEntry(
                    key=check_xxh(entry.get("key"), f"{where}: key"),
                    components=components,
                    outs=records,
                    metrics=metrics,
                    undeclared={
                        check_relpath(path, f"{where}: undeclared"): check_xxh(
                            digest, f"{where}: undeclared[{path!r}]"
                        )
                        for path, digest in undeclared.items()
                    }
                    or None,
                )
        except RecordError as exc:
            raise ConfigError(
                f"{path} is corrupt ({exc.message})",
                hint="restore it from git, or delete it to rebuild from the cache",
            ) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"{path} is corrupt ({exc})",
                hint="restore it from git, or delete it to rebuild from the cache",
            ) from None
        return entries

    def path_in(self, root: str) -> str:
        """The lock file's path relative to ``root`` (for git pathspecs)."""
        return os.path.relpath(self.path, root)

    def record(self, name: str, entry: LockEntry) -> None:
        """Set a target's entry; the file is rewritten only if something changed."""
        if self.entries.get(name) != entry:
            self.entries[name] = entry
            self.dirty = True

    def prune(self, keep: Container[str]) -> None:
        """Forget targets that no longer exist in mlbuild.yaml (their objects stay cached)."""
        for name in [n for n in self.entries if n not in keep]:
            del self.entries[name]
            self.dirty = True

    def render(self) -> bytes:
        body = {
            "version": LOCK_VERSION,
            "targets": {name: self.entries[name].to_json() for name in sorted(self.entries)},
        }
        return (json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()

    def save(self) -> None:
        if not self.dirty:
            return  # a no-op build must not pay for rendering (or touch the file)
        data = self.render()
        try:
            with open(self.path, "rb") as f:
                if f.read() == data:
                    return
        except FileNotFoundError:
            pass
        atomic_write(self.path, data)
        self.dirty = False
