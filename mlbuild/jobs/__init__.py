"""Jobs: what a worker runs, and the machinery around running it.

spec.py      Job (plain, picklable), JobResult; build_job / read_secrets: a target's Job,
             its secrets read at run time.
masking.py   Masker, StreamMasker, pump: secrets masked before a byte reaches a log.
registry.py  process_start_time, register_running: the running-process registry.
call.py      call_python: a ``python:`` callable run in this process (in a worker).
logs.py      tail_lines: the end of a job's log.

Every name is re-exported here, so ``from mlbuild.jobs import Job, JobResult`` works.
"""

from __future__ import annotations

from .call import call_python
from .logs import tail_lines
from .masking import Masker, StreamMasker, pump
from .registry import process_start_time, register_running
from .spec import Job, JobResult, build_job, read_secrets

__all__ = [
    "Job",
    "JobResult",
    "Masker",
    "StreamMasker",
    "build_job",
    "call_python",
    "process_start_time",
    "pump",
    "read_secrets",
    "register_running",
    "tail_lines",
]
