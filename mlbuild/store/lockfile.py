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
          "metrics": {"accuracy": 0.97}       # only for targets with metrics
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

from ..errors import ConfigError
from .atomic import atomic_write
from .cache import OutRecord

LOCK_VERSION = 1


@dataclass(frozen=True)
class LockEntry:
    key: str
    components: dict[str, Any]
    outs: tuple[OutRecord, ...]
    metrics: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data = {
            "key": self.key,
            "components": self.components,
            "outs": [o.to_json() for o in self.outs],
        }
        if self.metrics is not None:
            data["metrics"] = self.metrics
        return data


class LockFile:
    """In-memory view of mlbuild.lock; `save` writes it atomically and deterministically."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: dict[str, LockEntry] = {}
        self.dirty = False
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return
        self.entries = self.parse(path, raw)

    @staticmethod
    def parse(path: str, raw: bytes) -> dict[str, LockEntry]:
        """The entries of a lock file's bytes (``path`` names it in errors); an older
        format gives none."""
        entries: dict[str, LockEntry] = {}
        try:
            data = json.loads(raw)
            if data.get("version") != LOCK_VERSION:
                return entries  # an older format is a cache of state, not a source of truth
            for name, entry in data.get("targets", {}).items():
                entries[name] = LockEntry(
                    key=entry["key"],
                    components=entry["components"],
                    outs=tuple(OutRecord.from_json(o) for o in entry["outs"]),
                    metrics=entry.get("metrics"),
                )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
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
