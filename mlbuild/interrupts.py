"""SIGTERM and SIGHUP take the path of Ctrl-C.

``timeout``, a CI cancel and a closed terminal send SIGTERM or SIGHUP; by default they kill
mlbuild on the spot, and the commands it started (each in its own session) keep running
and writing outs. While `stop_on_signals` is active, either signal raises `Terminated`, a
`KeyboardInterrupt`, in the main thread: the scheduler stops every job as it does on
Ctrl-C, records nothing unfinished, and the CLI exits with 128 + the signal number (143,
129; Ctrl-C stays 130).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from .errors import ExitCode

__all__ = ["Terminated", "exit_code", "message", "stop_on_signals"]

_HANDLED = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Terminated` in the main thread (once:
    a repeat while jobs are being stopped is ignored, so the stop itself is not cut
    short). The previous handlers come back when the block ends.

    Only a signal left at its default action is taken over: an ignored SIGHUP (``nohup``)
    stays ignored, and a handler of the caller's own (a program that uses mlbuild as a
    library, or an outer `stop_on_signals`) stays in charge. Off the main thread, where
    Python cannot install handlers, this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise Terminated(signum)

    previous = {}
    for sig in _HANDLED:
        if signal.getsignal(sig) is signal.SIG_DFL:
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def exit_code(exc: BaseException) -> int:
    """128 + the signal that interrupted: ``exc`` or what it was raised from (click turns
    a KeyboardInterrupt into ``Abort``); 130 for Ctrl-C."""
    for cause in (exc, exc.__cause__, exc.__context__):
        if isinstance(cause, Terminated):
            return ExitCode.for_signal(cause.signum)
    return ExitCode.INTERRUPTED


def message(exc: BaseException) -> str:
    """The CLI's last line: ``interrupted``, naming the signal unless it was Ctrl-C."""
    code = exit_code(exc)
    if code == ExitCode.INTERRUPTED:
        return "interrupted"
    return f"interrupted by {signal.Signals(code - 128).name}"
