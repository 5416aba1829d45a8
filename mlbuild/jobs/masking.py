"""Secret masking: `Masker` for a line of text, `StreamMasker` and `pump` for a command's
output, masked before a byte of it reaches the log.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable, Sequence

__all__ = ["CHUNK", "Masker", "StreamMasker", "pump"]


class Masker:
    """Replaces secret values by ``***`` in text (as CI systems do): a line shown with -v,
    an error message.

    Values shorter than 4 characters are not masked: masking "1" would garble every log
    and hide nothing worth hiding."""

    def __init__(self, values: Sequence[str]) -> None:
        # Longest first (a value inside a longer one must not break it up), then by value:
        # the same output whatever the order of the env.
        self.values = sorted({v for v in values if len(v) >= 4}, key=lambda v: (-len(v), v))

    def __bool__(self) -> bool:
        return bool(self.values)

    def __call__(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, "***")
        return text


class StreamMasker:
    """Masks secret values (as `Masker`, in their UTF-8 bytes) in a stream read in chunks,
    before anything reaches a file: a log never holds a secret, even for an instant, so
    not even a kill -9 of mlbuild leaves one behind.

    A value may straddle two reads: `feed` holds back the end of a chunk that could be the
    start of a value (at most ``len(value) - 1`` bytes), and any whole value reaching into
    it, until the next chunk or `flush`. Other output is passed on at once (a live log).
    """

    def __init__(self, values: Sequence[str]) -> None:
        self.values = [v.encode() for v in Masker(values).values]  # longest first
        self.pending = b""

    def __bool__(self) -> bool:
        return bool(self.values)

    def feed(self, chunk: bytes) -> bytes:
        """The masked bytes that can be written now."""
        if not self.values:
            return chunk
        buf = self.pending + chunk
        cut = self._held(buf)
        moved = True
        while moved and cut > 0:  # never cut through an occurrence
            moved = False
            for value in self.values:
                at = buf.find(value, max(0, cut - len(value) + 1), cut + len(value) - 1)
                if at != -1 and at < cut:
                    cut, moved = at, True
        self.pending = buf[cut:]
        return self._mask(buf[:cut])

    def _held(self, buf: bytes) -> int:
        """Where the end of ``buf`` that could begin a value starts (``len(buf)``: none)."""
        held = len(buf)
        for value in self.values:
            at = buf.find(value[:1], max(0, len(buf) - len(value) + 1))
            while at != -1 and at < held:
                if value.startswith(buf[at:]):
                    held = at
                    break
                at = buf.find(value[:1], at + 1)
        return held

    def flush(self) -> bytes:
        """The rest, at the end of the stream."""
        rest, self.pending = self.pending, b""
        return self._mask(rest)

    def _mask(self, data: bytes) -> bytes:
        for value in self.values:
            data = data.replace(value, b"***")
        return data


CHUNK = 1 << 16


def pump(
    fd: int,
    write: Callable[[bytes], object],
    masker: StreamMasker,
    finished: Callable[[], bool] | None = None,
) -> None:
    """Copy a command's output from the pipe ``fd`` to ``write``, masked, until EOF.

    With ``finished`` (the command's leader has exited), stop once the pipe is drained
    even without EOF: a background process the command left behind may hold the pipe
    open for ever (whatever it writes later is not logged). What the leader wrote is in
    the pipe before it exits, so draining after ``finished()`` loses none of it.
    """
    drain_until = 0.0  # once the leader has exited: read what is left, for 1 s at most
    while True:
        if finished is not None:
            if not drain_until and finished():
                drain_until = time.monotonic() + 1.0
            if drain_until and time.monotonic() > drain_until:
                break
            ready, _, _ = select.select([fd], [], [], 0 if drain_until else 0.1)
            if not ready:
                if drain_until:
                    break
                continue
        data = os.read(fd, CHUNK)
        if not data:
            break
        write(masker.feed(data))
    write(masker.flush())
