"""One target's turn, in a scheduler worker thread: restore it, or prepare, run (or
promote) and commit it, and say how it ended as a `Done`.

The scheduler decides and launches (scheduler.py); this is what a launched target does,
over the rebuilder's steps (rebuild/) and the executor. Its Job is built by
`jobs.spec.build_job`, its secrets read by `jobs.spec.read_secrets`, at run time.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import TargetSpec, check_inside
from .errors import BuildFailed, CheckFailed, MlbuildError
from .events import BuildEvents
from .executors import Executor
from .jobs.logs import tail_lines
from .jobs.masking import Masker
from .jobs.spec import build_job, read_secrets
from .kinds import LinkType, Severity
from .plural import counted
from .rebuild import Rebuilder
from .results import Action, Decision, Outcome, TargetResult
from .store import Cache, OutRecord, RecordError
from .store.cache import remove_tree
from .store.failures import FailedAttempt, FailureCause, FailureLog

__all__ = ["Done", "TargetRunner"]

_SHOWN_READS = 5  # undeclared reads named one per line; the rest are counted
# What a refused write prints (the shell, coreutils, Python's PermissionError).
_REFUSED_WRITE = ("Permission denied", "Read-only file system", "PermissionError")


@dataclass(frozen=True)
class Done:
    """How a target ended; ``outs`` None: it failed (or was skipped), dependents wait.
    ``cause`` and ``exit_code``: how a failed attempt ended (store/failures.py)."""

    result: TargetResult
    outs: tuple[OutRecord, ...] | None
    cause: FailureCause = FailureCause.ERROR
    exit_code: int | None = None


class TargetRunner:
    def __init__(
        self,
        rebuilder: Rebuilder,
        executor: Executor,
        events: BuildEvents,
        *,
        run: bool,
        running_dir: str,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.rb = rebuilder
        self.executor = executor
        self.events = events
        self.run = run  # False (`mlbuild pull`): a failed restore is skipped, never run
        self.running_dir = running_dir
        self.environ = environ  # where secrets are read, when a job is about to run
        self._temp_lock = threading.Lock()  # restores of temp upstream, one at a time
        # Each target's last failed attempt, for `status` and `explain`.
        self.failures = FailureLog(rebuilder.ctx.layout.failures_file)

    def execute(
        self,
        spec: TargetSpec,
        decision: Decision,
        upstream: Mapping[str, tuple[OutRecord, ...]],
        temp_upstream: tuple[TargetSpec, ...] = (),
    ) -> Done:
        """Restore, or run the job (the outs of its ``temp_upstream`` brought back first if
        a build removed them) and commit its outs; a failed attempt is remembered with the
        key it was made with (store/failures.py), a success forgets it."""
        done = self._execute(spec, decision, upstream, temp_upstream)
        outcome = done.result.outcome
        if outcome is Outcome.FAILED and decision.key is not None:
            attempt = FailedAttempt(decision.key, time.time(), done.cause, done.exit_code)
            self.failures.failed(spec.name, attempt)
        elif outcome in (Outcome.RAN, Outcome.RESTORED):
            self.failures.succeeded(spec.name)
        return done

    def _execute(
        self,
        spec: TargetSpec,
        decision: Decision,
        upstream: Mapping[str, tuple[OutRecord, ...]],
        temp_upstream: tuple[TargetSpec, ...],
    ) -> Done:
        t0 = time.monotonic()
        wall = time.time()
        if decision.action is Action.RESTORE:
            try:
                recs = self.rb.materializer.restore(spec, decision, wall)
                elapsed = time.monotonic() - t0
                return Done(
                    TargetResult(spec.name, Outcome.RESTORED, elapsed, decision.reasons), recs
                )
            except (OSError, MlbuildError) as exc:
                if not self.run:  # `mlbuild pull` runs nothing
                    error = f"restore failed ({exc})"
                    return Done(TargetResult(spec.name, Outcome.SKIPPED, error=error), None)
                self.events.warning(f"{spec.name}: restore failed ({exc}); running it instead")
        try:
            self._restore_temp_deps(spec, temp_upstream, wall)
        except (OSError, MlbuildError) as exc:
            error = f"could not restore the temp outs it reads ({exc})"
            return Done(TargetResult(spec.name, Outcome.FAILED, 0.0, decision.reasons, error), None)
        try:
            secrets = read_secrets(spec, self.environ)
        except BuildFailed as exc:
            return Done(
                TargetResult(spec.name, Outcome.FAILED, 0.0, decision.reasons, exc.message), None
            )
        promotion = None
        try:
            self.rb.materializer.prepare(spec)
            if spec.promote is not None:
                promotion = self.rb.materializer.promote(spec)  # copies the winner's outs
        except CheckFailed as exc:
            return self._rejected(spec, decision, exc, t0)
        except (OSError, MlbuildError) as exc:
            return Done(
                TargetResult(spec.name, Outcome.FAILED, 0.0, decision.reasons, error=str(exc)), None
            )
        if promotion is not None:
            self.events.target_output(
                spec.name, f"promoted {promotion['winner']} by {promotion['by']}"
            )
            return self._commit(spec, decision, upstream, wall, t0, promotion)
        return self._run_job(spec, decision, upstream, secrets, wall, t0)

    def _restore_temp_deps(
        self, spec: TargetSpec, temp_upstream: tuple[TargetSpec, ...], wall: float
    ) -> None:
        """Bring back the outs of each `temp` upstream that a build removed (it was found
        fresh: "temp (in cache)") before ``spec`` runs on them, from the cache, under the
        upstream's recorded key. One at a time: two dependents may ask at once."""
        if not temp_upstream:
            return
        ctx = self.rb.ctx
        with self._temp_lock:
            for up in temp_upstream:
                entry = ctx.lock.entries.get(up.name)
                if entry is None or not _gone(ctx.root, up.outs):
                    continue
                again = Decision(up.name, Action.RESTORE, entry.key, (), entry.components)
                self.rb.materializer.restore(up, again, wall)
                self.events.target_output(
                    spec.name, f"restored temp outs of {up.name} from the cache"
                )

    def drop_temp(self, spec: TargetSpec, outs: tuple[OutRecord, ...]) -> list[str]:
        """Delete the declared outs of a `temp` target whose every dependent in the build
        succeeded, each only if the cache holds it (never delete what cannot come back).
        Returns the paths removed, in declared order."""
        ctx = self.rb.ctx
        removed: list[str] = []
        by_path = {rec.path: rec for rec in outs}
        for rel in spec.outs:
            rec = by_path.get(rel)
            if rec is None or not _in_cache(ctx.cache, rec):
                continue
            if os.path.dirname(rel) and not check_inside(ctx.root, os.path.dirname(rel)):
                continue  # a symlink made since load leads out: never reached
            full = os.path.join(ctx.root, rel)
            if os.path.lexists(full):
                remove_tree(full)
                removed.append(rel)
        return removed

    def _run_job(
        self,
        spec: TargetSpec,
        decision: Decision,
        upstream: Mapping[str, tuple[OutRecord, ...]],
        secrets: Mapping[str, str],
        wall: float,
        t0: float,
    ) -> Done:
        job = build_job(
            spec,
            root=self.rb.ctx.root,
            code=list(decision.components.get("code", {})),
            secrets=secrets,
            log_path=self.rb.ctx.log_path(spec.name),
            running_dir=self.running_dir,
        )
        mask = Masker(list(secrets.values()))
        if mask:
            # The executor masks the log as the bytes arrive (jobs.masking.StreamMasker); the lines
            # shown (-v) are masked here too, whatever executor produced them.
            result = self.executor.run(
                job, lambda t, line: self.events.target_output(t, mask(line))
            )
        else:
            result = self.executor.run(job, self.events.target_output)
        if not result.ok:
            if result.error == "interrupted":
                cause, code = FailureCause.INTERRUPTED, None
            elif result.exit_code is not None and result.exit_code != 0:
                cause, code = FailureCause.EXIT, result.exit_code
                self._say_protected(spec)
            else:  # a callable that raised, a worker lost: no exit status to show
                cause, code = FailureCause.ERROR, None
            return self._failed(spec, decision, mask(result.error), t0, cause, code)
        undeclared = self.rb.committer.undeclared_reads(spec, decision, result.read, result.written)
        if undeclared and spec.strict_inputs:
            error = (
                f"read {', '.join(undeclared)}, which it does not declare (strict_inputs); "
                "add it to deps, or to outs if the target writes it"
            )
            return self._failed(spec, decision, error, t0)
        return self._commit(spec, decision, upstream, wall, t0, None, undeclared)

    def _commit(
        self,
        spec: TargetSpec,
        decision: Decision,
        upstream: Mapping[str, tuple[OutRecord, ...]],
        wall: float,
        t0: float,
        promotion: dict[str, Any] | None,
        undeclared: Mapping[str, str] | None = None,
    ) -> Done:
        """Commit a finished run (or promotion): checks and gates first (rebuild/validate)."""
        ran_on = self.executor.executor_record(spec.name) if promotion is None else None
        paths = sorted(undeclared or ())
        for path in paths[:_SHOWN_READS]:
            self.events.warning(
                f"{spec.name} read {path}, which it does not declare: its key does not cover it"
            )
        if len(paths) > _SHOWN_READS:
            self.events.warning(
                f"{spec.name} read {counted(len(paths) - _SHOWN_READS, 'more undeclared file')}; "
                f"mlbuild show {spec.name} lists them all"
            )
        try:
            commit = self.rb.committer.commit(
                spec, decision, upstream, wall, promotion, ran_on, undeclared
            )
        except CheckFailed as exc:
            return self._rejected(spec, decision, exc, t0)
        except (OSError, MlbuildError) as exc:
            return self._failed(
                spec, decision, exc.message if isinstance(exc, MlbuildError) else str(exc), t0
            )
        for warning in commit.warnings:
            self.events.warning(warning)
        return Done(
            TargetResult(
                spec.name,
                Outcome.RAN,
                time.monotonic() - t0,
                decision.reasons,
                log_path=self.rb.ctx.log_path(spec.name),
                recorded=commit.recorded,
            ),
            commit.outs,
        )

    def _say_protected(self, spec: TargetSpec) -> None:
        """A command that failed on a refused write, with deps hardlinked to the cache
        (read-only, protection.py): say which, and how to edit one."""
        if LinkType.HARDLINK not in self.rb.ctx.cache.link:
            return
        tail = "\n".join(tail_lines(self.rb.ctx.log_path(spec.name)))
        if not any(sign in tail for sign in _REFUSED_WRITE):
            return
        from .config import DepKind
        from .protection import protected_under

        targets = self.rb.ctx.pipeline.targets
        paths = [d.value for d in spec.deps if d.kind is DepKind.PATH]
        paths += [out for d in spec.dep_targets for out in targets[d].outs]
        for path in protected_under(self.rb.ctx.root, paths):
            self.events.warning(
                f"{spec.name}: {path} is read-only, hardlinked to the cache (cache.link); "
                f"mlbuild unprotect {path} makes it a private, writable copy"
            )

    def _failed(
        self,
        spec: TargetSpec,
        decision: Decision,
        error: str,
        t0: float,
        cause: FailureCause = FailureCause.ERROR,
        exit_code: int | None = None,
    ) -> Done:
        """A failed command: its partial outs go to .mlbuild/failed/ for debugging."""
        self.rb.materializer.keep_failed(spec)
        log = self.rb.ctx.log_path(spec.name)
        failed = TargetResult(
            spec.name,
            Outcome.FAILED,
            time.monotonic() - t0,
            decision.reasons,
            error,
            log,
            tail_lines(log),
        )
        return Done(failed, None, cause, exit_code)

    def _rejected(self, spec: TargetSpec, decision: Decision, exc: CheckFailed, t0: float) -> Done:
        """A check or gate said no: the new outs are kept for inspection, the previous ones
        and the lock entry stay as they were (exit 3)."""
        where = self.rb.validator.reject(spec, exc.findings)
        rel = os.path.relpath(where, self.rb.ctx.root)
        # A check's finding names its check; a gate's, or a promotion's, does not. A
        # failed check of severity warn rejects nothing.
        by_check = any(
            "check" in f and not f.get("passed", True) and f.get("severity") == Severity.ERROR
            for f in exc.findings
        )
        return Done(
            TargetResult(
                spec.name,
                Outcome.FAILED,
                time.monotonic() - t0,
                decision.reasons,
                f"{exc.message} (rejected outs kept in {rel}/)",
                checks_failed=True,
            ),
            None,
            FailureCause.CHECK if by_check else FailureCause.GATE,
        )


def _gone(root: str, outs: tuple[str, ...]) -> bool:
    """Whether any of ``outs`` (workspace-relative, declared) is missing."""
    return any(not os.path.lexists(os.path.join(root, rel)) for rel in outs)


def _in_cache(cache: Cache, rec: OutRecord) -> bool:
    """`Cache.has_out`, a corrupt tree counting as absent (the out is then kept)."""
    try:
        return cache.has_out(rec)
    except RecordError:
        return False
