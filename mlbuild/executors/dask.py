"""The Dask executor: the scheduler's jobs run on a ``dask.distributed`` cluster.

mlbuild keeps its own dynamic scheduling (a target is submitted when its deps are done,
at most ``-j`` at a time, resource pools respected); Dask only places each job on a
worker. Two modes:

shared
    Workers see the workspace at the same path; the job runs there exactly as the local
    executor would run it (`LocalExecutor` inside the worker, ``in_worker=True``), and the
    client commits the outs as usual.

remote (no shared filesystem)
    Data moves through the remote cache::

        client: push the job's inputs (deps, code files) as objects ──▶ submit
        worker: fetch inputs by digest into a scratch dir (verified) ─▶ run there
                ─▶ push each out's objects (trees too) ─▶ return out records + log
        client: fetch the outs by digest (verified) into the cache and the workspace
                ─▶ commit as usual

    A command sees only its declared deps and code files: what it reads without
    declaring is not there (as in a sandboxed build).

Resource pools (``resources: {gpu: 1}``) become Dask task resources for the pools that
some worker declares (``dask worker --resources gpu=1``); pools no worker declares stay
mlbuild-side only, or such a job would wait forever.

A worker killed mid-job: Dask reschedules the task on another worker (up to
``distributed.scheduler.allowed-failures`` times), and every process the job started dies
with the killed worker, so nothing half-written keeps changing. If Dask gives up, the
target fails; nothing is recorded from a job that did not finish.

``dask.distributed`` is imported only when this executor is used.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import MlbuildError, UsageError
from ..jobs.spec import Job, JobResult
from ..kinds import EntryMode, ExecutorType, OutType

__all__ = ["DaskExecutor", "Staging", "run_on_worker", "run_staged"]


def _run_cancellable(job: Job, running_dir: str, cancel: str) -> JobResult:
    """Run ``job`` with a LocalExecutor on this worker, in a thread, while this (the task's)
    thread watches the Dask Event ``cancel`` and stops the job when the client sets it
    (Ctrl-C: cancelling a future does not stop a task that is already running). Dask's
    Event works only in the task's own thread, hence the job in the other one."""
    import distributed

    from .local import LocalExecutor

    dask_event: Any = distributed.Event  # untyped in distributed
    event = dask_event(cancel)
    executor = LocalExecutor(1, stream=False, running_dir=running_dir, in_worker=True)
    outcome: list[JobResult] = []
    runner = threading.Thread(
        target=lambda: outcome.append(executor.run(job, lambda target, line: None)),
        daemon=True,
    )
    runner.start()
    while runner.is_alive():
        runner.join(timeout=0.5)
        if runner.is_alive() and event.is_set():
            executor.kill_all()
            runner.join()
    if not outcome:  # pragma: no cover - the runner thread raised
        return JobResult(ok=False, exit_code=None, error="the job's thread failed on the worker")
    return outcome[0]


def run_on_worker(job: Job, cancel: str) -> tuple[JobResult, str]:
    """The task a Dask worker runs: the job, in the shared workspace. Returns the result
    and the worker's address (recorded in the manifest)."""
    from distributed import get_worker

    result = _run_cancellable(job, job.running_dir, cancel)
    return result, str(get_worker().address)


def run_staged(  # long: one worker task, fetch -> run -> store in order; kept whole
    job: Job, inputs: list[tuple[str, str, bool]], url: str, options: dict[str, Any], cancel: str
) -> tuple[JobResult, str, list[dict[str, Any]], bytes]:
    """The task of the remote mode (see the module doc): returns the result, the worker's
    address, the records of the outs it pushed, and the job's log."""
    import dataclasses
    import os
    import shutil
    import tempfile

    from distributed import get_worker

    from ..digest import hash_bytes, hash_file, hash_tree, link_digest, tree_object, walk_tree
    from ..store import OutRecord
    from ..store.cache import check_tree_path
    from ..store.remote import Remote, RemoteError, object_rel

    worker = str(get_worker().address)
    scratch = tempfile.mkdtemp(prefix="mlbuild-job-")
    try:
        remote = Remote(url, options)
        for rel, xxh, executable in inputs:
            check_tree_path(rel)
            dest = os.path.join(scratch, *rel.split("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if not remote.download(object_rel(xxh), dest):
                raise RemoteError(f"input {rel} ({object_rel(xxh)}) is missing on the remote")
            if hash_file(dest, want_sha256=False).xxh != xxh:
                raise RemoteError(f"input {rel} ({object_rel(xxh)}) is corrupt on the remote")
            os.chmod(dest, 0o755 if executable else 0o644)
        for rel in job.outs:
            os.makedirs(os.path.dirname(os.path.join(scratch, rel)) or scratch, exist_ok=True)
        here = dataclasses.replace(
            job,
            root=scratch,
            log_path=os.path.join(scratch, ".mlbuild-job.log"),
            running_dir=os.path.join(scratch, ".mlbuild-running"),
        )
        result = _run_cancellable(here, here.running_dir, cancel)
        with open(here.log_path, "rb") as f:
            log = f.read()
        outs: list[dict[str, Any]] = []
        for rel in job.outs if result.ok else ():
            full = os.path.join(scratch, rel)
            if os.path.isdir(full):
                entries = []
                for r, path, mode in walk_tree(full, confine=scratch):
                    if mode == EntryMode.LINK:  # a link is stored as its target text (digest.py)
                        digest = link_digest(path, want_sha256=True)
                        text = os.fsencode(os.readlink(path))
                        remote.upload_bytes(text, object_rel(digest.xxh), scratch)
                    else:
                        digest = hash_file(path, want_sha256=True)
                        remote.upload(path, object_rel(digest.xxh))
                    entries.append((r, digest, mode))
                body = tree_object(entries)
                whole = hash_tree(entries)
                assert whole.xxh == hash_bytes(body)
                remote.upload_bytes(body, object_rel(whole.xxh), scratch)
                rec = OutRecord(rel, OutType.DIR.value, whole.xxh, whole.sha256, whole.size)
                outs.append(rec.to_json())
            elif os.path.lexists(full):
                fd = hash_file(full, want_sha256=True)
                remote.upload(full, object_rel(fd.xxh))
                executable = bool(os.stat(full).st_mode & 0o100)
                rec = OutRecord(rel, OutType.FILE.value, fd.xxh, fd.sha256, fd.size, executable)
                outs.append(rec.to_json())
        return result, worker, outs, log
    except RemoteError as exc:
        return JobResult(ok=False, exit_code=None, error=f"staging: {exc.message}"), worker, [], b""
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class Staging(Protocol):
    """The client side of the remote mode (staging.py): ships inputs, lands outs."""

    url: str
    options: dict[str, Any]

    def stage(self, job: Job) -> list[tuple[str, str, bool]]: ...

    def land(self, outs: list[dict[str, Any]], declared: tuple[str, ...]) -> None: ...


class DaskExecutor:
    """Submits jobs to the cluster at ``address``; see the module docstring."""

    def __init__(
        self,
        address: str,
        *,
        retries: int = 1,
        staging: Staging | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        try:
            from distributed import Client as client_class
        except ImportError:
            raise UsageError(
                "the dask executor needs dask.distributed",
                hint='pip install "mlbuild[dask]"',
            ) from None
        try:
            connect: Any = client_class  # untyped in distributed
            self.client: Any = connect(address, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise UsageError(
                f"cannot reach the Dask scheduler at {address}: {exc}",
                hint="start one with `dask scheduler`, or check --dask-address",
            ) from None
        self.address = address
        self.retries = retries
        self.staging = staging  # None: shared filesystem
        self.cancel = f"mlbuild-cancel-{uuid.uuid4().hex}"  # a Dask Event: Ctrl-C
        self._futures: set[Any] = set()
        self._lock = threading.Lock()
        workers = self.client.scheduler_info().get("workers", {})
        self.pools = {name for w in workers.values() for name in (w.get("resources") or {})}
        self.threads = sum(int(w.get("nthreads") or 1) for w in workers.values()) or 1
        self.last_worker: dict[str, str] = {}  # target → worker address of its last run

    def run(self, job: Job, on_output: Callable[[str, str], None]) -> JobResult:
        resources = {k: v for k, v in job.resources.items() if k in self.pools}
        key = f"mlbuild-{job.target}-{id(job):x}"
        staging = self.staging
        if staging is None:
            future = self.client.submit(
                run_on_worker,
                job,
                self.cancel,
                key=key,
                pure=False,
                retries=self.retries,
                resources=resources or None,
            )
        else:
            try:
                inputs = staging.stage(job)
            except MlbuildError as exc:
                return JobResult(ok=False, exit_code=None, error=f"staging: {exc.message}")
            future = self.client.submit(
                run_staged,
                job,
                inputs,
                staging.url,
                staging.options,
                self.cancel,
                key=key,
                pure=False,
                retries=self.retries,
                resources=resources or None,
            )
        with self._lock:
            self._futures.add(future)
        try:
            answer = future.result()
        except Exception as exc:  # KilledWorker, a lost scheduler, a cancelled task
            return JobResult(ok=False, exit_code=None, error=f"dask: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._futures.discard(future)
        result, worker = answer[0], answer[1]
        self.last_worker[job.target] = worker
        assert isinstance(result, JobResult)
        if staging is not None:
            os.makedirs(os.path.dirname(job.log_path), exist_ok=True)
            with open(job.log_path, "wb") as f:
                f.write(answer[3])
            if result.ok:
                try:
                    staging.land(answer[2], job.outs)
                except MlbuildError as exc:
                    return JobResult(ok=False, exit_code=None, error=f"staging: {exc.message}")
        return result

    def kill_all(self) -> None:
        """Ctrl-C: queued jobs are cancelled, running ones stopped by their workers."""
        import distributed

        with self._lock:
            futures = list(self._futures)
        dask_event: Any = distributed.Event  # untyped in distributed
        dask_event(self.cancel, client=self.client).set()
        for future in futures:
            future.cancel()
        deadline = time.monotonic() + 5
        while any(f.status == "pending" for f in futures) and time.monotonic() < deadline:
            time.sleep(0.1)  # let the workers stop their commands before we go
        self.shutdown()

    def shutdown(self) -> None:
        self.client.close()

    def executor_record(self, target: str) -> dict[str, Any]:
        """What the manifest says about where ``target`` ran."""
        return {
            "type": ExecutorType.DASK.value,
            "scheduler": self.address,
            "worker": self.last_worker.get(target),
        }
