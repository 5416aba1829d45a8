"""The workspace lock: one mlbuild writing a workspace at a time.

An ``flock`` on ``.mlbuild/lock``: the kernel drops it when the process dies (even on
kill -9), so a crashed build never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from types import TracebackType

from ..errors import LockHeldError


class WorkspaceLock:
    def __init__(self, path: str, *, wait: bool) -> None:
        self.path = path
        self.wait = wait
        self.fd: int | None = None

    def __enter__(self) -> WorkspaceLock:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not self.wait:
                os.close(fd)
                raise LockHeldError(
                    "another mlbuild is running in this workspace",
                    hint="wait for it, or run without --no-wait to queue behind it",
                ) from None
            fcntl.flock(fd, fcntl.LOCK_EX)
        self.fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
