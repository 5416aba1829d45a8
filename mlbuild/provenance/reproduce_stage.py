"""`mlbuild reproduce`, phase 1: stage the recorded inputs in the scratch directory.

Deps and code files by their recorded xxh3: from the cache, or from the workspace where it
still holds those bytes; neither: cannot reproduce (UsageError, exit 2). Every params file
with the recorded value of each key the target reads."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config.params import MISSING, lookup, parse_params
from ..digest import canonical_json
from ..errors import MlbuildError, UsageError
from ..kinds import OutType
from ..store import LockFile, OutRecord, RecordError, StateMemo
from ..store.records import check_relpath

if TYPE_CHECKING:
    from ..config import TargetSpec
    from ..workspace import Workspace
    from .records import DepEntry, Manifest

__all__ = ["Inputs", "Stager"]


@dataclass
class Inputs:
    """What was put in the scratch directory, for the job and its notes."""

    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)



class Stager:
    """Puts a build's recorded inputs into a scratch directory, each verified."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.store = ws.manifest_store
        self.cache = ws.cache
        self.root = ws.root
        # Digests of workspace files, from the stat memo when it proves them unchanged;
        # never saved: a reproduction changes nothing a build reads.
        self.memo = StateMemo(ws.root, ws.layout.state_file, ws.layout.trees_dir)
        self.memo.path = None

    def stage(self, spec: TargetSpec, build: Manifest, work: str) -> Inputs:
        """Deps, code files and params files into ``work``, each verified against the
        recorded digest (see the module doc)."""
        inputs = Inputs()
        for dep in build["deps"]:
            rec = self._upstream_record(dep) if "target" in dep else None
            self._place(spec.name, "dep", dep["path"], dep["xxh3"], work, rec, "target" in dep)
            inputs.files.append(dep["path"])
        for path, digest in sorted((build.get("code") or {}).items()):
            try:
                check_relpath(path, "code file")
            except RecordError:
                raise UsageError(
                    f"cannot reproduce {spec.name}: its code file {path} is outside the "
                    "workspace, and a reproduction re-creates only the workspace",
                    hint="move the script into the workspace",
                ) from None
            if path in inputs.files:
                continue
            rec = OutRecord(path, OutType.FILE.value, digest, None, 0)
            self._place(spec.name, "code file", path, digest, work, rec, False)
            inputs.files.append(path)
        self._write_params(spec, build, work, inputs)
        return inputs

    def _upstream_record(self, dep: DepEntry) -> OutRecord | None:
        """How the upstream recorded the out this dep is (its type, and its mode from the
        run cache), from the upstream manifest the dep links to, else the lock file."""
        path, xxh = dep["path"], dep["xxh3"]
        link = dep.get("manifest")
        doc = self.store.get_usable(link) if link else None
        outs, key = ([], "") if doc is None else (doc.get("outs", []), doc.get("key", ""))
        for out in outs:
            if out["path"] == path and out["xxh3"] == xxh:
                for rec in self.cache.get_run(key) or ():
                    if rec.path == path and rec.xxh == xxh:
                        return rec
                return OutRecord(path, out["type"], xxh, out.get("sha256"), out["size"])
        entry = LockFile(self.ws.lock_path).entries.get(str(dep.get("target")))
        for rec in entry.outs if entry is not None else ():
            if rec.path == path and rec.xxh == xxh:
                return rec
        return None

    def _place(
        self,
        name: str,
        what: str,
        rel: str,
        xxh: str,
        work: str,
        rec: OutRecord | None,
        produced: bool,
    ) -> None:
        """Put the recorded bytes of ``rel`` at ``work/rel``: from the cache when the
        record says what the object is, else from the workspace if its copy still hashes
        to ``xxh``, else (a source file) the cache object; otherwise UsageError."""
        dest = os.path.join(work, rel)
        source = os.path.join(self.root, rel)
        try:
            if rec is not None and self.cache.has_out(rec):
                self.cache.restore_out(rec, dest, at=rel)
                return
        except (MlbuildError, OSError):
            pass  # a corrupt object (dropped by the cache): the workspace may still have it
        now = None
        with contextlib.suppress(OSError, MlbuildError):
            digest, _ = self.memo.digest(rel, out=produced)
            now = digest.xxh
        if now == xxh:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if os.path.isdir(source):
                shutil.copytree(source, dest, symlinks=produced)
            else:
                shutil.copy2(source, dest)
            copied = None
            with contextlib.suppress(OSError, MlbuildError):
                copied = StateMemo(work, None).digest(rel, out=produced)[0].xxh
            if copied == xxh:
                return
            raise UsageError(
                f"cannot reproduce {name}: {what} {rel} changed while it was being copied",
                hint="run mlbuild reproduce again",
            )
        if rec is None and not produced and self.cache.has(xxh):
            with contextlib.suppress(MlbuildError, OSError):
                recorded = OutRecord(rel, OutType.FILE.value, xxh, None, 0)
                self.cache.restore_out(recorded, dest, at=rel)
                return
        state = "is gone" if now is None else f"changed since the build (now {now})"
        raise UsageError(
            f"cannot reproduce {name}: {what} {rel} ({xxh}) is not in the cache, and the "
            f"workspace's copy {state}",
            hint="bring that version back (git checkout, or `mlbuild pull` for a target's "
            "out), or reproduce a later build with --manifest ID",
        )

    def _write_params(
        self, spec: TargetSpec, build: Manifest, work: str, inputs: Inputs
    ) -> None:
        """Every params file into ``work``, with the recorded value of each key the build
        read (a command reads the file itself). A file whose values already match is
        copied byte for byte; one that differs is rewritten (YAML or JSON; TOML cannot
        be, and is refused). A file that is also a dep came with its recorded bytes."""
        recorded: dict[str, Any] = dict(build.get("params") or {})
        files = [f for f in self.ws.pipeline.param_files if f not in inputs.files]
        trees: dict[str, Any] = {}
        raw: dict[str, bytes | None] = {}
        for rel in files:
            try:
                with open(os.path.join(self.root, rel), "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                raw[rel], trees[rel] = None, {}
                continue
            raw[rel], trees[rel] = data, parse_params(self.root, rel, data)
        changed: dict[str, list[str]] = {rel: [] for rel in files}
        for key, value in sorted(recorded.items()):
            holders = [rel for rel in files if lookup(trees[rel], key) is not MISSING]
            if not holders and files:
                # Not in any file now: where most of its path exists, later files winning
                # (they override earlier ones when merged).
                best = max(files[::-1], key=lambda rel: _depth(trees[rel], key))
                holders = [best]
            for rel in holders:
                now = lookup(trees[rel], key)
                # Compared as the key compares them: 50 and 50.0 are different values.
                if now is MISSING or canonical_json(now) != canonical_json(value):
                    if not _assign(trees[rel], key, value):
                        raise UsageError(
                            f"cannot reproduce {spec.name}: params file {rel} has no place "
                            f"for the recorded {key} = {json.dumps(value)}",
                            hint="restore the file's layout (git checkout) for the reproduction",
                        )
                    changed[rel].append(key)
        for rel in files:
            dest = os.path.join(work, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            content = raw[rel]
            if changed[rel]:
                content = _dump_params(spec.name, rel, trees[rel], changed[rel])
                inputs.notes.append(
                    f"{rel}: used the recorded "
                    + ", ".join(f"{k} = {json.dumps(recorded[k])}" for k in changed[rel])
                    + (" (the workspace has other values)" if raw[rel] is not None else "")
                )
            if content is not None:
                with open(dest, "wb") as out:
                    out.write(content)
                inputs.files.append(rel)



def _depth(tree: Any, dotted: str) -> int:
    """How many leading parts of ``dotted`` exist in ``tree``."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        if lookup(tree, ".".join(parts[:n])) is not MISSING:
            return n
    return 0


def _assign(tree: Any, dotted: str, value: Any) -> bool:
    """Set ``dotted`` in ``tree`` (creating mappings on the way); False when a part of
    the path is a value that cannot hold it."""
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(part, {})
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    last = parts[-1]
    if isinstance(node, dict):
        node[last] = value
        return True
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
        return True
    return False


def _dump_params(name: str, rel: str, tree: Any, keys: list[str]) -> bytes:
    ext = os.path.splitext(rel)[1].lower()
    if ext == ".json":
        return (json.dumps(tree, indent=2, ensure_ascii=False) + "\n").encode()
    if ext == ".toml":
        raise UsageError(
            f"cannot reproduce {name}: params file {rel} holds other values for "
            f"{', '.join(keys)} than the build read, and mlbuild does not write TOML",
            hint="set them back to the recorded values (`mlbuild manifest show` lists them)",
        )
    import yaml

    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True).encode()

