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
manifest (reproductions have an index of their own, store.py), no run-cache entry. The
scratch directory goes in every case: success, failure, Ctrl-C (nothing is recorded then).

Verdicts (`records.Verdict`) and exit codes: ``identical`` (0) every out bit-identical;
``within-tolerance`` (0) only metrics files differ and every metric that moved is within
its ``--tolerance`` (a metric with none must not move); ``differs`` (6, the audit's code)
anything else differs or is missing; ``failed`` (1) the re-run itself failed. All four are
recorded. What cannot be re-run at all (an input whose recorded bytes are gone, a TOML
params file to rewrite, a promotion) is a usage error (exit 2) and records nothing.

The scratch directory holds only what the build declared, as a sandbox would: a command
that reads an undeclared file fails or differs here, which is what this check is for.

The phases, one module each: reproduce_stage.py (inputs into the scratch directory),
reproduce_run.py (the job and its executor), reproduce_compare.py (out by out); the record
is written here.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..digest import hash_file
from ..errors import ExitCode, UsageError
from ..interrupts import stop_on_signals
from ..jobs.logs import tail_lines
from ..jobs.masking import Masker
from ..jobs.spec import JobResult
from ..kinds import ManifestStatus
from ..options import BuildOptions
from ..store import WorkspaceLock
from ..store.cache import remove_tree
from .parse import parse_manifest
from .records import (
    MANIFEST_SCHEMA,
    Manifest,
    Verdict,
    environment,
    is_restore,
    manifest_id,
    reproduction_line,
    timestamp,
)
from .reproduce_compare import Comparer, OutResult
from .reproduce_run import executor_for, job_for, package_notes, run_job, secrets_for, versions
from .reproduce_stage import Stager

if TYPE_CHECKING:
    from ..config import TargetSpec
    from ..workspace import Workspace
    from .signing import SigningKey

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


class _Reproducer:
    """One reproduction: picks the build, runs the phases, writes the record."""

    def __init__(self, ws: Workspace, options: BuildOptions, warn: Callable[[str], None]) -> None:
        self.ws = ws
        self.options = options
        self.warn = warn
        self.store = ws.manifest_store
        self.root = ws.root
        self.stager = Stager(ws)  # reads the stat memo now, as before any other step
        self.comparer = Comparer(ws.cache)

    # ------------------------------------------------------------------ what to re-run
    def _build(self, name: str, ref: str | None) -> tuple[str, Manifest]:
        """(id, record) of the build to re-run: a build, never a restore or a reproduction."""
        if ref is not None:
            mid, doc = self.ws.resolve_build(
                ref, name, "name the build it reproduced: --manifest"
            )
        else:
            mid, doc = self.ws.manifest(name)  # the current one: a build or a restore
        if doc.get("status") == ManifestStatus.REPRODUCTION:
            raise UsageError(
                f"manifest {mid} is a reproduction, not a build of {name}",
                hint=f"name the build it reproduced: --manifest {doc.get('reproduces')}",
            )
        if is_restore(doc):
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

    def _check_tolerances(self, name: str, build: Manifest, tol: Mapping[str, float]) -> None:
        """Every --tolerance names a metric of the build: a typo must not pass silently."""
        if not tol:
            return
        known = sorted((build.get("metrics") or {}).keys())
        if not known:
            raise UsageError(
                f"--tolerance applies to metrics, and {name}'s build recorded none",
                hint="declare its metrics files in `metrics:`, or drop --tolerance",
            )
        from ..suggest import did_you_mean

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
        layout = self.ws.layout
        with WorkspaceLock(layout.workspace_lock, wait=self.options.wait), stop_on_signals():
            from ..executors.local import reap_orphans

            running_dir = layout.running_dir
            for leftover in reap_orphans(running_dir):
                self.warn(f"stopped {leftover}, left running by an mlbuild that was killed")
            tmp = layout.tmp_dir
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
        build: Manifest,
        tolerances: dict[str, float],
        scratch: str,
        running_dir: str,
        on_output: Callable[[str, str], None],
        signer: SigningKey | None,
    ) -> Reproduction:
        started = time.time()
        name = spec.name
        secrets = secrets_for(spec, build)
        work = os.path.join(scratch, "work")
        os.makedirs(work)
        inputs = self.stager.stage(spec, build, work)
        recorded_outs = [o["path"] for o in build["outs"]]
        for rel in recorded_outs:
            os.makedirs(os.path.dirname(os.path.join(work, rel)) or work, exist_ok=True)
        log = self.ws.layout.reproduce_log(name)
        job = job_for(spec, build, work, log, running_dir, secrets, inputs)
        notes = inputs.notes + package_notes(build)
        for note in notes:
            self.warn(f"{name}: {note}")
        executor = executor_for(self.ws, self.options, work, running_dir)
        mask = Masker(list(secrets.values()))
        result = run_job(executor, job, lambda t, line: on_output(t, mask(line)))
        where = executor.executor_record(name)
        if result.ok:
            results = self.comparer.compare(spec, build, work, scratch, tolerances)
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
        from .. import __version__

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
            "status": ManifestStatus.REPRODUCTION.value,
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
                "packages": versions(packages),
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

