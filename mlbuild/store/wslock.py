"""The workspace lock: one mlbuild writing a workspace at a time.

An ``flock`` on ``.mlbuild/lock``: the kernel drops it when the process dies (even on
kill -9), so a crashed build never leaves a stale lock behind.

The file's content (format 1) says who holds it, for the one who waits: one JSON object,
``{"pid": 4242, "since": 1767225600.5}`` (Unix seconds), written by the holder once it
has the lock and emptied before it lets go. Only a message reads it, so an empty, partial
or foreign content just makes the message less precise ("another mlbuild"); what a dead
holder left is never read, since nobody waits on a lock that nobody holds.

A second mlbuild that finds the lock held waits (``--wait``, the default) and, if it is
still waiting after `PATIENCE` seconds, says once whom it waits for, as make users expect
to see something rather than a silent hang; with ``--no-wait`` it fails (exit 5) naming
the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable
from types import TracebackType

from ..errors import LockHeldError
from .failures import clock_text

__all__ = ["PATIENCE", "WorkspaceLock", "holder_text"]

PATIENCE = 1.0  # seconds of silent waiting before the "waiting for" notice
_POLL = 0.05  # how often a waiter retries before it has spoken


def _to_stderr(message: str) -> None:
    print(f"mlbuild: {message}", file=sys.stderr, flush=True)


def holder_text(fd: int) -> str | None:
    """``PID 4242 (since 10:02:13)`` from the lock file's content (the date too if not
    today); None when it does not say (a holder that has not written it yet, or the empty
    file of an older mlbuild)."""
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        pid, since = data["pid"], float(data["since"])
        if not isinstance(pid, int) or isinstance(pid, bool):
            return None
        return f"PID {pid} (since {clock_text(since, seconds=True)})"
    except (OSError, ValueError, KeyError, TypeError, OverflowError, UnicodeDecodeError):
        return None


class WorkspaceLock:
    """``with WorkspaceLock(path, wait=True):`` holds the flock for the block. ``notice``
    receives the one "waiting for" line (default: stderr, ``mlbuild: ...``);
    ``patience`` is how long to wait before saying it."""

    def __init__(
        self,
        path: str,
        *,
        wait: bool,
        notice: Callable[[str], None] = _to_stderr,
        patience: float = PATIENCE,
    ) -> None:
        self.path = path
        self.wait = wait
        self.notice = notice
        self.patience = patience
        self.fd: int | None = None

    def __enter__(self) -> WorkspaceLock:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _try_lock(fd):
                if not self.wait:
                    holder = holder_text(fd)
                    raise LockHeldError(
                        "another mlbuild is running in this workspace"
                        + (f": {holder}" if holder else ""),
                        hint="wait for it, or run without --no-wait to queue behind it",
                    )
                self._wait(fd)
            _record_holder(fd)
        except BaseException:
            os.close(fd)  # closing drops the flock too, if it was taken
            raise
        self.fd = fd
        return self

    def _wait(self, fd: int) -> None:
        """Poll until `patience` runs out (no notice for a lock that is released at
        once), say whom we wait for, then block in the kernel until the lock is ours."""
        deadline = time.monotonic() + self.patience
        while time.monotonic() < deadline:
            time.sleep(_POLL)
            if _try_lock(fd):
                return
        holder = holder_text(fd) or "another mlbuild"
        self.notice(f"waiting for the workspace lock held by {holder}")
        fcntl.flock(fd, fcntl.LOCK_EX)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):  # only a message reads the content
                os.ftruncate(self.fd, 0)  # no one holds it now
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _record_holder(fd: int) -> None:
    """Write who holds the lock (format 1, above); a failure to write it is no reason to
    refuse the lock, which the flock alone guarantees."""
    data = json.dumps({"pid": os.getpid(), "since": round(time.time(), 3)}).encode()
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
