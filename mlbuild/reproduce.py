"""`mlbuild reproduce TARGET`: re-run a recorded build and check that it makes the same bytes
(Nix's ``--check``; DVC, Snakemake and make have nothing like it).

::

    the build to check: TARGET's current manifest (a restore's: the build it restores),
    or --manifest ID                                                  (a promotion: refused)
       │  under the workspace lock
    scratch dir .mlbuild/tmp/reproduce-XXXX/work/, laid out as the workspace:
       ├─ deps and code files, by their recorded xxh3: from the cache, or from the
       │  workspace where it still holds those bytes; neither: cannot reproduce (exit 2)
       └─ every params file, with the recorded value of each key the target reads
       │
    run the recorded command or callable there (the executors builds use: local or Dask)
       │
    compare each recorded out's sha256 ──▶ metrics files: which metric moved, by how much,
       │                                  judged against --tolerance
       │                                  tables (CSV, Parquet…): rows, columns changed
    record a ``reproduction`` manifest (signed when a key is set) ──▶ remove the scratch dir

Nothing a build relies on changes: no lock entry, no out in the workspace, no current
manifest (reproductions have an index of their own, manifest.py), no run-cache entry. The
scratch directory goes in every case: success, failure, Ctrl-C (nothing is recorded then).

Verdicts (`manifest.Verdict`) and exit codes: ``identical`` (0) every out bit-identical;
``within-tolerance`` (0) only metrics files differ and every metric that moved is within
its ``--tolerance`` (a metric with none must not move); ``differs`` (6, the audit's code)
anything else differs or is missing; ``failed`` (1) the re-run itself failed. All four are
recorded. What cannot be re-run at all (an input whose recorded bytes are gone, a TOML
params file to rewrite, a promotion) is a usage error (exit 2) and records nothing.

The scratch directory holds only what the build declared, as a sandbox would: a command
that reads an undeclared file fails or differs here, which is what this check is for.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import is_tabular
from .digest import LinkOutside, canonical_json, hash_file, hash_tree, link_digest, walk_tree
from .errors import ExitCode, MlbuildError, UsageError
from .executors import Executor
from .interrupts import stop_on_signals
from .jobs import Job, JobResult, Masker, tail_lines
from .manifest import (
    MANIFEST_SCHEMA,
    REPRODUCTION,
    Verdict,
    environment,
    manifest_id,
    parse_manifest,
    reproduction_line,
    timestamp,
)
from .options import BuildOptions
from .store import LockFile, OutRecord, RecordError, StateMemo, WorkspaceLock
from .store.cache import remove_tree
from .store.layout import target_file_name
from .store.records import check_relpath

if TYPE_CHECKING:
    from .config import TargetSpec
    from .signing import SigningKey
    from .workspace import Workspace

__all__ = ["OutResult", "Reproduction", "parse_tolerances", "reproduce"]

#: Exit code of each verdict: 6 is the audit's (a differing out is a verified fact), 1 is
#: "your command failed" as for a build.
EXIT_CODES = {
    Verdict.IDENTICAL: ExitCode.OK,
    Verdict.WITHIN_TOLERANCE: ExitCode.OK,
    Verdict.DIFFERS: ExitCode.VERIFICATION,
    Verdict.FAILED: ExitCode.BUILD_FAILED,
}
_SCRATCH_PREFIX = "reproduce-"
_SHOWN = 5  # names listed per kind of difference before "+N more"


def parse_tolerances(items: Sequence[str]) -> dict[str, float]:
    """``["accuracy=0.005", …]`` → ``{"accuracy": 0.005}``: absolute, finite, >= 0."""
    found: dict[str, float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not sep or not name or not math.isfinite(value) or value < 0:
            raise UsageError(
                f"bad --tolerance {item!r}",
                hint="use METRIC=DELTA, a number >= 0 (--tolerance accuracy=0.005)",
            )
        found[name] = value
    return dict(sorted(found.items()))


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


@dataclass(frozen=True)
class Reproduction:
    """The outcome of `reproduce`: the verdict, per-out results, the record written."""

    target: str
    reproduces: str  # the build manifest re-run
    manifest: str  # the reproduction record's id
    record: dict[str, Any]
    results: tuple[OutResult, ...]
    notes: tuple[str, ...] = ()
    log: str | None = None  # workspace-relative log of the re-run
    tail: tuple[str, ...] = ()  # its last lines, when the re-run failed

    @property
    def verdict(self) -> Verdict:
        return Verdict(self.record["verdict"])

    @property
    def exit_code(self) -> ExitCode:
        return EXIT_CODES[self.verdict]

    @property
    def line(self) -> str:
        return reproduction_line(self.record)

    def lines(self) -> list[str]:
        """What `mlbuild reproduce` prints: the build, one line per out, the verdict."""
        shown = [f"reproduced {self.target} from build {self.reproduces}"]
        for r in self.results:
            state = "identical" if r.identical else "within" if r.within_tolerance else "DIFFERS"
            shown.append(f"  {state:9}  {r.path}" + ("" if r.identical else f"  {r.summary}"))
        if self.verdict is Verdict.FAILED and self.log is not None:
            shown.append(f"  log: {self.log}")
            shown.extend(f"  | {line}" for line in self.tail)
        shown.append(f"{self.target}: {self.line} (recorded as {self.manifest})")
        return shown

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "reproduces": self.reproduces,
            "manifest": self.manifest,
            "verdict": self.verdict.value,
            "reproducible": self.verdict.reproducible,
            "summary": self.line,
            "tolerances": self.record["tolerances"],
            "error": self.record["error"],
            "results": [r.to_json() for r in self.results],
            "notes": list(self.notes),
            "log": self.log,
        }


def reproduce(
    ws: Workspace,
    target: str,
    *,
    manifest: str | None = None,
    tolerances: Mapping[str, float] | None = None,
    options: BuildOptions | None = None,
    on_output: Callable[[str, str], None] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Reproduction:
    """Re-run ``target``'s recorded build (its current one, or ``manifest``: an id or
    prefix) in a scratch copy of its inputs and compare every out (see the module doc).

    Raises UsageError (nothing recorded) when the build cannot be re-run; a verdict,
    whatever it is, comes back recorded."""
    return _Reproducer(ws, options or BuildOptions(), warn or (lambda text: None)).run(
        target, manifest, dict(tolerances or {}), on_output or (lambda t, line: None)
    )


@dataclass
class _Inputs:
    """What was put in the scratch directory, for the job and its notes."""

    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Reproducer:
    def __init__(self, ws: Workspace, options: BuildOptions, warn: Callable[[str], None]) -> None:
        self.ws = ws
        self.options = options
        self.warn = warn
        self.store = ws.manifest_store
        self.cache = ws.cache
        self.root = ws.root
        # Digests of workspace files, from the stat memo when it proves them unchanged;
        # never saved: a reproduction changes nothing a build reads.
        self.memo = StateMemo(ws.root, os.path.join(ws.state_dir, "state.json"))
        self.memo.path = None

    # ------------------------------------------------------------------ what to re-run
    def _build(self, name: str, ref: str | None) -> tuple[str, dict[str, Any]]:
        """(id, record) of the build to re-run: a build, never a restore or a reproduction."""
        if ref is None:
            mid, doc = self.ws.manifest(name)
        else:
            mid, doc = self.ws.resolve_manifest(ref)
            if doc.get("target") != name:
                raise UsageError(f"manifest {mid} is of {doc.get('target')}, not {name}")
        if doc.get("status") == REPRODUCTION:
            raise UsageError(
                f"manifest {mid} is a reproduction, not a build of {name}",
                hint=f"name the build it reproduced: --manifest {doc.get('reproduces')}",
            )
        if doc.get("status") in ("restored", "rollback"):
            source = self.store.source_build(doc)
            if source is None:
                raise UsageError(
                    f"{name}'s manifest {mid} restores build {doc.get('restored_from')}, "
                    "whose record is missing: there is no recipe to re-run",
                    hint=f"rebuild it (`mlbuild -B {name}`), then reproduce that build",
                )
            mid, doc = source
        if doc.get("promotion") is not None or (not doc.get("command") and not doc.get("python")):
            winner = (doc.get("promotion") or {}).get("winner")
            raise UsageError(
                f"{name} is a promotion: it copies its winner's outs and runs nothing",
                hint=f"reproduce the winner: `mlbuild reproduce {winner}`"
                if winner
                else "reproduce the candidate it promoted",
            )
        unhashed = [o["path"] for o in doc["outs"] if o.get("sha256") is None]
        if unhashed:
            raise UsageError(
                f"build {mid} of {name} recorded no sha256 for {', '.join(unhashed)}: "
                "there is nothing to compare a re-run with",
                hint=f"rebuild it (`mlbuild -B {name}`), then reproduce that build",
            )
        return mid, doc

    def _check_tolerances(self, name: str, build: dict[str, Any], tol: Mapping[str, float]) -> None:
        """Every --tolerance names a metric of the build: a typo must not pass silently."""
        if not tol:
            return
        known = sorted((build.get("metrics") or {}).keys())
        if not known:
            raise UsageError(
                f"--tolerance applies to metrics, and {name}'s build recorded none",
                hint="declare its metrics files in `metrics:`, or drop --tolerance",
            )
        from .suggest import did_you_mean

        for metric in tol:
            if metric not in known:
                raise UsageError(
                    f"--tolerance {metric}: {name} has no metric {metric!r} "
                    f"(it has {', '.join(known)})",
                    hint=did_you_mean(metric, known),
                )

    # ------------------------------------------------------------------ the run
    def run(
        self,
        target: str,
        ref: str | None,
        tolerances: dict[str, float],
        on_output: Callable[[str, str], None],
    ) -> Reproduction:
        names = self.ws.graph.select([target])
        if len(names) != 1:
            raise UsageError(
                f"{target!r} matches {len(names)} targets: {', '.join(names)}",
                hint="name one target",
            )
        name = names[0]
        spec = self.ws.pipeline.targets[name]
        build_id, build = self._build(name, ref)
        self._check_tolerances(name, build, tolerances)
        signer = self.ws.signing_key()  # a bad key fails here, before anything runs
        state = self.ws.state_dir
        with WorkspaceLock(os.path.join(state, "lock"), wait=self.options.wait), stop_on_signals():
            from .executors.local import reap_orphans

            running_dir = os.path.join(state, "running")
            for leftover in reap_orphans(running_dir):
                self.warn(f"stopped {leftover}, left running by an mlbuild that was killed")
            tmp = os.path.join(state, "tmp")
            _remove_leftovers(tmp)
            os.makedirs(tmp, exist_ok=True)
            scratch = tempfile.mkdtemp(prefix=_SCRATCH_PREFIX, dir=tmp)
            try:
                return self._reproduce(
                    spec, build_id, build, tolerances, scratch, running_dir, on_output, signer
                )
            finally:
                with contextlib.suppress(OSError):
                    remove_tree(scratch)

    def _reproduce(
        self,
        spec: TargetSpec,
        build_id: str,
        build: dict[str, Any],
        tolerances: dict[str, float],
        scratch: str,
        running_dir: str,
        on_output: Callable[[str, str], None],
        signer: SigningKey | None,
    ) -> Reproduction:
        started = time.time()
        name = spec.name
        secrets = self._secrets(spec, build)
        work = os.path.join(scratch, "work")
        os.makedirs(work)
        inputs = self._stage(spec, build, work)
        recorded_outs = [o["path"] for o in build["outs"]]
        for rel in recorded_outs:
            os.makedirs(os.path.dirname(os.path.join(work, rel)) or work, exist_ok=True)
        log = os.path.join(self.ws.state_dir, "logs", "reproduce", target_file_name(name) + ".log")
        job = self._job(spec, build, work, log, running_dir, secrets, inputs)
        notes = inputs.notes + self._package_notes(build)
        for note in notes:
            self.warn(f"{name}: {note}")
        executor = self._executor(work, running_dir)
        mask = Masker(list(secrets.values()))
        result = _run(executor, job, lambda t, line: on_output(t, mask(line)))
        where = executor.executor_record(name)
        if result.ok:
            results = self._compare(spec, build, work, scratch, tolerances)
            error = None
        else:
            results = []
            error = mask(result.error)
        packages = (build.get("environment") or {}).get("packages") or {}
        record = self._record(
            name, build_id, packages, started, where, tolerances, results, error, result, log
        )
        mid = manifest_id(record)
        # Never write what the strict parser would refuse to read back.
        parse_manifest(json.dumps(record).encode(), mid, f"reproduction of {name}")
        self.store.put(record, signer)
        return Reproduction(
            target=name,
            reproduces=build_id,
            manifest=mid,
            record=record,
            results=tuple(results),
            notes=tuple(notes),
            log=os.path.relpath(log, self.root),
            tail=tuple(mask(line) for line in tail_lines(log, 10)) if error is not None else (),
        )

    def _secrets(self, spec: TargetSpec, build: dict[str, Any]) -> dict[str, str]:
        """The secret env values the build used, from the caller's environment now (a
        manifest holds their names only)."""
        values: dict[str, str] = {}
        for env_name, entry in sorted((build.get("env") or {}).items()):
            if not isinstance(entry, dict):
                continue
            source = spec.secrets.get(env_name)
            if source is None:
                raise UsageError(
                    f"{spec.name}'s build read the secret env {env_name}, which mlbuild.yaml "
                    "no longer declares: mlbuild cannot tell where to read it from",
                    hint=f"declare it again: env: {{{env_name}: {{from: VAR, secret: true}}}}",
                )
            if source not in os.environ:
                raise UsageError(
                    f"secret env {env_name} of {spec.name} is read from ${source}, which is "
                    "not set",
                    hint=f"export {source} and run mlbuild reproduce again",
                )
            values[env_name] = os.environ[source]
        return values

    def _job(
        self,
        spec: TargetSpec,
        build: dict[str, Any],
        work: str,
        log: str,
        running_dir: str,
        secrets: dict[str, str],
        inputs: _Inputs,
    ) -> Job:
        """The recorded build as a Job rooted in the scratch directory. Lists keep the
        order mlbuild.yaml gives them now when they hold the recorded paths (a callable
        sees ``deps`` and ``outs`` in that order), else the recorded (sorted) order."""
        components = build.get("components") or {}
        deps = [d["path"] for d in build["deps"]]
        outs = [o["path"] for o in build["outs"]]
        dep_paths = list(spec.dep_paths) if sorted(spec.dep_paths) == sorted(deps) else deps
        out_paths = list(spec.outs) if sorted(spec.outs) == sorted(outs) else outs
        plain = {k: v for k, v in (build.get("env") or {}).items() if isinstance(v, str)}
        command = build.get("command")
        return Job(
            target=spec.name,
            root=work,
            cmds=tuple(command) if command else None,
            python=build.get("python"),
            env={
                **plain,
                **secrets,
                "MLBUILD_TARGET": spec.name,
                "MLBUILD_OUTS": " ".join(out_paths),
            },
            deps=tuple(dep_paths),
            outs=tuple(out_paths),
            params=dict(build.get("params") or {}),
            matrix=dict(components.get("matrix") or {}),
            log_path=log,
            running_dir=running_dir,
            retries=spec.retries,
            resources=dict(spec.resources),
            inputs=tuple(sorted(inputs.files)),
            secret_env=tuple(sorted(secrets)),
        )

    def _package_notes(self, build: dict[str, Any]) -> list[str]:
        """Declared packages whose version now differs from the build's: the reproduction
        runs with today's, which may be why it differs."""
        recorded = (build.get("environment") or {}).get("packages") or {}
        now = _versions(recorded)
        return [
            f"package {pkg} is {now[pkg]} here, the build had {version}"
            for pkg, version in sorted(recorded.items())
            if now[pkg] != version
        ]

    def _executor(self, work: str, running_dir: str) -> Executor:
        """The executor a build would use (options, else mlbuild.yaml): local, or Dask
        (shared: workers see the scratch directory, which is inside the workspace;
        remote: inputs and outs travel through the remote cache)."""
        pipeline = self.ws.pipeline
        kind = self.options.executor or pipeline.executor
        if kind == "local":
            from .executors.local import LocalExecutor

            return LocalExecutor(1, stream=self.options.verbose, running_dir=running_dir)
        if kind != "dask":
            raise UsageError(f"unknown executor {kind!r}", hint="use local or dask")
        from .executors.dask import DaskExecutor

        address = self.options.dask_address or pipeline.executor_address
        if address is None:
            raise UsageError(
                "the dask executor needs a scheduler address",
                hint="pass --dask-address tcp://HOST:8786 or set executor.address",
            )
        staging = None
        if (self.options.dask_mode or pipeline.executor_mode) == "remote":
            from .staging import RemoteStaging

            staging = RemoteStaging(
                work, StateMemo(work, None), self.cache, self.ws.transfer(self.options)
            )
        return DaskExecutor(address, staging=staging)

    # ------------------------------------------------------------------ inputs
    def _stage(self, spec: TargetSpec, build: dict[str, Any], work: str) -> _Inputs:
        """Deps, code files and params files into ``work``, each verified against the
        recorded digest (see the module doc)."""
        inputs = _Inputs()
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
            rec = OutRecord(path, "file", digest, None, 0)
            self._place(spec.name, "code file", path, digest, work, rec, False)
            inputs.files.append(path)
        self._write_params(spec, build, work, inputs)
        return inputs

    def _upstream_record(self, dep: dict[str, Any]) -> OutRecord | None:
        """How the upstream recorded the out this dep is (its type, and its mode from the
        run cache), from the upstream manifest the dep links to, else the lock file."""
        path, xxh = dep["path"], dep["xxh3"]
        doc = self.store.get_usable(dep["manifest"]) if dep.get("manifest") else None
        doc = doc or {}
        for out in doc.get("outs", []):
            if out["path"] == path and out["xxh3"] == xxh:
                for rec in self.cache.get_run(doc["key"]) or ():
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
                self.cache.restore_out(OutRecord(rel, "file", xxh, None, 0), dest, at=rel)
                return
        state = "is gone" if now is None else f"changed since the build (now {now})"
        raise UsageError(
            f"cannot reproduce {name}: {what} {rel} ({xxh}) is not in the cache, and the "
            f"workspace's copy {state}",
            hint="bring that version back (git checkout, or `mlbuild pull` for a target's "
            "out), or reproduce a later build with --manifest ID",
        )

    def _write_params(
        self, spec: TargetSpec, build: dict[str, Any], work: str, inputs: _Inputs
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
            raw[rel], trees[rel] = data, _load_params(rel, data)
        changed: dict[str, list[str]] = {rel: [] for rel in files}
        for key, value in sorted(recorded.items()):
            holders = [rel for rel in files if _lookup(trees[rel], key) is not _MISSING]
            if not holders and files:
                # Not in any file now: where most of its path exists, later files winning
                # (they override earlier ones when merged).
                best = max(files[::-1], key=lambda rel: _depth(trees[rel], key))
                holders = [best]
            for rel in holders:
                now = _lookup(trees[rel], key)
                # Compared as the key compares them: 50 and 50.0 are different values.
                if now is _MISSING or canonical_json(now) != canonical_json(value):
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

    # ------------------------------------------------------------------ compare
    def _compare(
        self,
        spec: TargetSpec,
        build: dict[str, Any],
        work: str,
        scratch: str,
        tolerances: dict[str, float],
    ) -> list[OutResult]:
        recorded_root = os.path.join(scratch, "recorded")
        metrics_files = [m for m in spec.metrics if m in {o["path"] for o in build["outs"]}]
        results: list[OutResult] = []
        for out in build["outs"]:
            results.append(
                self._compare_out(out, work, recorded_root, metrics_files, build, tolerances)
            )
        return results

    def _compare_out(
        self,
        out: dict[str, Any],
        work: str,
        recorded_root: str,
        metrics_files: list[str],
        build: dict[str, Any],
        tolerances: dict[str, float],
    ) -> OutResult:
        rel, kind, recorded = out["path"], out["type"], out["sha256"]
        now = _sha256_now(os.path.join(work, rel), work)
        if now == recorded:
            return OutResult(rel, kind, recorded, now, True, "bit-identical")
        if now is None or not now.startswith("sha256:"):
            return OutResult(rel, kind, recorded, None, False, now or "missing: not written")
        if kind == "dir":
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
        if out["type"] != "file":
            return None
        rec = OutRecord(out["path"], "file", out["xxh3"], out["sha256"], out["size"])
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

    # ------------------------------------------------------------------ the record
    def _record(
        self,
        name: str,
        build_id: str,
        packages: Mapping[str, Any],
        started: float,
        where: dict[str, Any],
        tolerances: dict[str, float],
        results: list[OutResult],
        error: str | None,
        result: JobResult,
        log: str,
    ) -> dict[str, Any]:
        from . import __version__

        if error is not None:
            verdict = Verdict.FAILED
        elif any(not r.identical and not r.within_tolerance for r in results):
            verdict = Verdict.DIFFERS
        elif any(not r.identical for r in results):
            verdict = Verdict.WITHIN_TOLERANCE
        else:
            verdict = Verdict.IDENTICAL
        ignore = (os.path.relpath(self.ws.lock_path, self.root), *self.ws.pipeline.out_owner)
        who = environment(self.root, ignore)
        finished = time.time()
        log_digest = None
        if os.path.exists(log):
            log_digest = hash_file(log, want_sha256=True).sha256
        return {
            "schema": MANIFEST_SCHEMA,
            "target": name,
            "status": REPRODUCTION,
            "reproduces": build_id,
            "started": timestamp(started),
            "finished": timestamp(finished),
            "seconds": round(finished - started, 6),
            "user": who.user,
            "host": who.host,
            "mlbuild": __version__,
            "environment": {
                "python": who.python,
                "platform": who.platform,
                "packages": _versions(packages),
                "git": who.git,
            },
            "executor": where,
            "tolerances": dict(sorted(tolerances.items())),
            "verdict": verdict.value,
            "results": [r.to_json() for r in results],
            "differing": [r.path for r in results if not r.identical],
            "error": error,
            "exit_code": result.exit_code,
            "log": log_digest,
        }


# ---------------------------------------------------------------------- helpers


def _run(executor: Executor, job: Job, on_output: Callable[[str, str], None]) -> JobResult:
    """Run ``job`` in a thread while this (the main) thread waits, so that Ctrl-C and
    SIGTERM land here: every process of the job is stopped before the scratch goes."""
    outcome: list[JobResult] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(executor.run(job, on_output))
        except BaseException as exc:  # re-raised in the main thread
            failure.append(exc)

    runner = threading.Thread(target=work, name="mlbuild-reproduce", daemon=True)
    try:
        runner.start()
        while runner.is_alive():
            runner.join(timeout=0.1)
    except KeyboardInterrupt:
        executor.kill_all()
        runner.join()
        raise
    finally:
        executor.shutdown()
    if failure:
        raise failure[0]
    return outcome[0]


def _versions(packages: Mapping[str, Any]) -> dict[str, str]:
    """The installed version of each package named (``not installed``: none), as a build
    records them."""
    from importlib import metadata

    found: dict[str, str] = {}
    for pkg in sorted(packages):
        try:
            found[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            found[pkg] = "not installed"
    return found


def _remove_leftovers(tmp: str) -> None:
    """Scratch directories of reproductions killed with -9 (the caller holds the workspace
    lock, so none of them is in use)."""
    try:
        names = sorted(os.listdir(tmp))
    except FileNotFoundError:
        return
    for entry in names:
        if entry.startswith(_SCRATCH_PREFIX):
            with contextlib.suppress(OSError):
                remove_tree(os.path.join(tmp, entry))


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


_MISSING = object()


def _lookup(tree: Any, dotted: str) -> Any:
    node = tree
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _depth(tree: Any, dotted: str) -> int:
    """How many leading parts of ``dotted`` exist in ``tree``."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        if _lookup(tree, ".".join(parts[:n])) is not _MISSING:
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


def _load_params(rel: str, data: bytes) -> Any:
    """A params file's mapping (the pipeline parsed it already: it is well-formed)."""
    text = data.decode("utf-8-sig")
    ext = os.path.splitext(rel)[1].lower()
    if ext == ".json":
        return json.loads(text)
    if ext == ".toml":
        import tomllib

        return tomllib.loads(text)
    import yaml

    return yaml.safe_load(text) or {}


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
    build: dict[str, Any],
    n_files: int,
    tolerances: Mapping[str, float],
) -> tuple[list[dict[str, Any]], bool, str]:
    """(per-metric changes, within tolerance, summary) of a differing metrics file. The
    recorded side is the file from the cache, else (one metrics file only) the metrics
    the manifest recorded."""
    from .metrics import _parse, flatten

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
        old = dict(build["metrics"])
        new = {k: _finite(v) for k, v in flatten(new_doc).items()}
        note = " (recorded file not in the cache: compared with the manifest's metrics)"
    else:
        return [], False, "recorded file not in the cache: cannot say which metric moved"
    changes: list[dict[str, Any]] = []
    for metric in sorted(set(old) | set(new)):
        a, b = old.get(metric, _MISSING), new.get(metric, _MISSING)
        if a is not _MISSING and b is not _MISSING and type(a) is type(b) and a == b:
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
                "recorded": None if a is _MISSING else _finite(a),
                "reproduced": None if b is _MISSING else _finite(b),
                "within": False,
            }
        )
    within = all(c["within"] for c in changes)
    if not changes:
        return [], True, "same metric values, different bytes" + note
    return changes, within, ", ".join(_describe_metric(c) for c in changes) + note


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
    from .checks.tables import read_table

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
