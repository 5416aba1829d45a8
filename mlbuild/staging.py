"""The client side of the Dask executor's remote mode (executors/dask.py): ship a job's
inputs to the remote cache as objects, and land the outs a worker pushed back.

Both directions go through `Transfer`, so outs are verified (xxh3-128 and sha256) before
they reach the local cache and the workspace, as for ``--pull``.
"""

from __future__ import annotations

import os
from typing import Any

from .jobs.spec import Job
from .kinds import EntryMode
from .store import Cache, OutRecord, StateMemo
from .store.records import check_declared
from .transfer import Transfer

__all__ = ["RemoteStaging"]


class RemoteStaging:
    """Implements executors.dask.Staging over the workspace, its cache and a remote."""

    def __init__(self, root: str, memo: StateMemo, cache: Cache, transfer: Transfer) -> None:
        self.root = root
        self.memo = memo
        self.cache = cache
        self.transfer = transfer
        self.url = transfer.remote.url
        self.options: dict[str, Any] = dict(transfer.remote.options)

    def stage(self, job: Job) -> list[tuple[str, str, bool]]:
        """Every file the job reads, as (path, xxh3-128, executable), pushed if missing."""
        files: list[tuple[str, str, bool]] = []
        for rel in job.inputs:
            full = os.path.join(self.root, rel)
            if os.path.isdir(full):
                for sub, digest, mode in self.memo.tree_entries(rel, want_sha256=False):
                    # deps: no links (a dep's walk follows them)
                    files.append((f"{rel}/{sub}", digest.xxh, mode == EntryMode.EXEC))
            else:
                digest = self.memo.file_digest(rel)
                files.append((rel, digest.xxh, bool(os.stat(full).st_mode & 0o100)))
        for rel, xxh, _ in files:
            self.transfer.push_file(os.path.join(self.root, rel), xxh)
        return files

    def land(self, outs: list[dict[str, Any]], declared: tuple[str, ...]) -> None:
        """Fetch (verified) and place the outs a worker pushed: records through the strict
        parser, and exactly the job's declared outs (a worker's answer is read back data
        too), before anything is fetched or written."""
        records = [OutRecord.from_json(data, "a Dask worker's result") for data in outs]
        check_declared(records, declared, "a Dask worker's result")
        for rec in records:
            self.transfer.fetch_out(rec)
            self.cache.restore_out(rec, os.path.join(self.root, rec.path), at=rec.path)
