"""Counted nouns for messages: ``1 target``, ``2 targets``, ``1 entry``, ``3 entries``.

One helper so that no message says ``1 targets`` or hedges with ``target(s)`` /
``entr(y/ies)``: a count is known when the message is written, so the noun agrees with it.
"""

from __future__ import annotations

__all__ = ["counted", "noun"]


def noun(n: int, singular: str, plural: str | None = None) -> str:
    """``singular`` for exactly one, else ``plural`` (default: ``singular`` + ``s``)."""
    if n == 1:
        return singular
    return plural if plural is not None else singular + "s"


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and its noun: ``counted(1, "entry", "entries")`` is ``1 entry``."""
    return f"{n} {noun(n, singular, plural)}"
