"""``python -m mlbuild.executors.supervise CMD``: run ``/bin/sh -c CMD`` in its own process
group and take the whole group down when told to stop.

How a Dask worker runs a shell command (executors/local.py, ``in_worker``). The kernel
sends this process SIGTERM when the worker that started it dies (PR_SET_PDEATHSIG, set
before exec); the death signal reaches only this one process, and ``sh`` forks its
commands, so it is this supervisor that kills the command's whole group. Without it, a
command outlives a killed worker and keeps writing outs while Dask retries the job.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from types import FrameType


def main() -> None:
    proc = subprocess.Popen(["/bin/sh", "-c", sys.argv[1]], start_new_session=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = proc.wait()
    sys.exit(128 - code if code < 0 else code)  # killed by signal N: 128 + N, as sh says


if __name__ == "__main__":
    main()
