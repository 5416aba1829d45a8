"""Reading a job's log: `tail_lines`, the end shown when a job fails."""

from __future__ import annotations

import os

__all__ = ["tail_lines"]


def tail_lines(path: str, n: int = 20) -> tuple[str, ...]:
    """The last ``n`` lines of a log file (reads only its end)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except FileNotFoundError:
        return ()
    lines = data.decode("utf-8", "replace").splitlines()
    return tuple(lines[-n:])
