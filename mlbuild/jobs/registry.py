"""The registry of running job processes: ``<running_dir>/<pid>`` holds the process's
kernel start time, so a build after a kill -9 of mlbuild can find and stop the commands it
left (executors/local.py: reap_orphans) without ever hitting a reused pid.
"""

from __future__ import annotations

import os

__all__ = ["process_start_time", "register_running"]


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat): with the pid, it
    names one process for good, even after the pid is reused. None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def register_running(running_dir: str, pid: int) -> str:
    """Record ``pid`` as running a job (``<running_dir>/<pid>`` holds its start time), so a
    build after a kill -9 of mlbuild can stop it; the caller removes the file when done."""
    os.makedirs(running_dir, exist_ok=True)
    marker = os.path.join(running_dir, str(pid))
    with open(marker, "w") as f:
        f.write(process_start_time(pid) or "")
    return marker
