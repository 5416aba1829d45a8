"""Every path under ``.mlbuild/``, and nowhere else: `Layout`, plus `target_file_name`, the
one way a target's name becomes a file name.

The tree, as `Layout` builds it from the workspace root (the directory of mlbuild.yaml)::

    <root>/.mlbuild/                  state_dir      STATE_DIR: per-workspace state
        lock                          workspace_lock flock: one build per workspace at a time
        state.json                    state_file     stat → digest memo, parsed imports
        failures.json                 failures_file  each target's last failed attempt
        trees/<xxh>.bin               trees_dir      one directory's names, stats, digests
        cache/                        cache_dir      objects + run cache (store/cache.py)
            yaml/<file>.marshal       parse_cache_dir  parsed YAML with positions (config/yaml.py)
        manifests/                    manifests_dir  provenance (provenance/store.py)
        logs/<name>.log               log(target)    output of the target's last run
        logs/reproduce/<name>.log     reproduce_log(target)  output of its last reproduction
        running/<pid>                 running_dir    shell commands running now (jobs/registry.py)
        aside/<name>/<out path>       aside(target)  outs moved away before a run or restore
        failed/<name>/<out path>      failed(target) partial or rejected outs of a failed run
        tmp/                          tmp_dir        scratch dirs of `mlbuild reproduce`

Inside three directories the owner's own format rules, built and documented there: the
Cache's ``objects/`` and ``runs/`` (store/cache.py; plus ``cache/tmp/``, the scratch of a
transfer, transfer.py), the manifest store's ``ab/cdef….json``, ``index/`` and
``reproductions/`` (provenance/store.py), and the parse cache's ``yaml/<file>.marshal``
(config/yaml.py, `Doc`, given `Layout.parse_cache_dir`). Everything else under
``.mlbuild/`` is named here and only here.

``STATE_DIR`` is defined here, once; config/paths.py re-exports it (its path-safety checks
refuse outs under it). config may import this module: it imports nothing of mlbuild, store
never imports config (config already reaches store, lazily, for store.atomic), so the edge
adds no cycle and no lower layer importing a higher one. Its cost, the ``store`` package
(and digest) loading with config, is nil in practice: every command that loads a config
goes through `Workspace`, which imports the store anyway.

Per-target names: ``<name>`` is `target_file_name` of the target. The mapping is injective
(two targets never share a file) and its result is always one plain path segment: no name,
however hostile (``..``, ``.``, ``a/../../x``, an empty string, a NUL), can climb out of
its directory.

- The common case stays readable and as documented: ``model:prod`` → ``model__prod``,
  ``data.v2`` → ``data.v2``. That form is used only for names made of letters, digits,
  ``.``, ``_``, ``-`` and at most one ``:``, that do not start with ``.``, contain no
  ``__`` and no ``_`` next to the ``:`` (so the ``__`` standing for the colon is the only
  one in the result, and it decodes uniquely).
- Every other name is percent-encoded (only letters, digits and ``-`` kept) behind a
  leading ``%``, which the readable form never contains.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass

__all__ = ["STATE_DIR", "Layout", "target_file_name"]

STATE_DIR = ".mlbuild"  # per-workspace state, under the workspace root (see `Layout`)
_ASIDE = "aside"
_FAILED = "failed"

_READABLE = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*(:[A-Za-z0-9_.\-]+)?")


def target_file_name(target: str) -> str:
    """The one file-name segment that stands for ``target`` (see the module docstring)."""
    if (
        _READABLE.fullmatch(target)
        and "__" not in target
        and "_:" not in target
        and ":_" not in target
    ):
        return target.replace(":", "__")
    return "%" + urllib.parse.quote(target, safe="-").replace(".", "%2E").replace("_", "%5F")


@dataclass(frozen=True)
class Layout:
    """The paths under ``<root>/.mlbuild/`` (the tree in the module docstring). Pure: it
    creates nothing; whoever writes a path makes its directory."""

    root: str  # the workspace root: the directory holding mlbuild.yaml (absolute)

    @property
    def state_dir(self) -> str:
        return os.path.join(self.root, STATE_DIR)

    def _under(self, *parts: str) -> str:
        return os.path.join(self.root, STATE_DIR, *parts)

    @property
    def workspace_lock(self) -> str:
        """The flock file of `WorkspaceLock` (not ``mlbuild.lock``, the build record)."""
        return self._under("lock")

    @property
    def state_file(self) -> str:
        """The stat → digest memo of `StateMemo`."""
        return self._under("state.json")

    @property
    def trees_dir(self) -> str:
        """The tree records of `StateMemo` (store/trees.py), one file per directory."""
        return self._under("trees")

    @property
    def stamp_file(self) -> str:
        """The last no-op build's answer and what it depended on (stamp.py)."""
        return self._under("noop.json")

    @property
    def failures_file(self) -> str:
        """The last failed attempt of each target (store/failures.py)."""
        return self._under("failures.json")

    @property
    def cache_dir(self) -> str:
        """The `Cache` directory (objects, run cache)."""
        return self._under("cache")

    @property
    def parse_cache_dir(self) -> str:
        """The directory `config.yaml.Doc` takes: it keeps ``yaml/<file>.marshal`` in it."""
        return self.cache_dir

    @property
    def manifests_dir(self) -> str:
        """The `ManifestStore` directory."""
        return self._under("manifests")

    @property
    def logs_dir(self) -> str:
        return self._under("logs")

    def log(self, target: str) -> str:
        """The log of ``target``'s last run (or restore, rollback, promotion)."""
        return os.path.join(self.logs_dir, target_file_name(target) + ".log")

    def reproduce_log(self, target: str) -> str:
        """The log of ``target``'s last `mlbuild reproduce`."""
        return os.path.join(self.logs_dir, "reproduce", target_file_name(target) + ".log")

    @property
    def running_dir(self) -> str:
        """One file per shell command running now, so a later build can stop orphans."""
        return self._under("running")

    def aside(self, target: str) -> str:
        """Where ``target``'s outs go before it runs or is restored (one generation)."""
        return self._under(_ASIDE, target_file_name(target))

    def failed(self, target: str) -> str:
        """Where ``target``'s partial or rejected outs go (one generation)."""
        return self._under(_FAILED, target_file_name(target))

    @property
    def user_copy_dirs(self) -> tuple[str, ...]:
        """The names of the directories directly under `state_dir` that hold copies of
        users' outs (`aside`, `failed`): cleaning never reaches into them."""
        return (_ASIDE, _FAILED)

    @property
    def tmp_dir(self) -> str:
        """Scratch directories of `mlbuild reproduce` (removed when it ends)."""
        return self._under("tmp")
