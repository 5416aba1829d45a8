"""One "did you mean" for every name a user types: config keys, target names, params keys,
matrix variables, check kinds, column names and subcommands.

difflib's ratio counts swapped neighbours as two changes, so ``dpes:`` came out closer to
``desc`` than to ``deps``; yet a swap is the commonest slip of the fingers. The distance here
is the optimal string alignment distance (restricted Damerau-Levenshtein): inserting,
deleting or replacing one character, or swapping two adjacent ones, is one edit each.

A choice is suggested when it is within ``max(1, len(word) // 3)`` edits of the word and the
edits do not replace the whole word (``x`` is not "close" to ``y``), or when one of the two
starts with the other and the shorter has at least 3 characters (``integer`` -> ``int``,
``minimum`` -> ``min``: a spelled-out or abbreviated name). The closest wins; ties go to the
choice sharing the longest prefix with the word, then to the alphabetically first, so the
answer never depends on the order the choices came in.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["did_you_mean", "edit_distance", "suggest"]

MIN_PREFIX = 3  # a shorter common prefix is a coincidence, not an abbreviation


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance between ``a`` and ``b`` (a transposition of two
    adjacent characters is one edit; no substring is edited twice)."""
    if a == b:
        return 0
    if not a or not b:
        return len(a) or len(b)
    before: list[int] = []  # row i-2
    prev = list(range(len(b) + 1))  # row i-1
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            best = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, before[j - 2] + 1)
            row[j] = best
        before, prev = prev, row
    return prev[-1]


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for ca, cb in zip(a, b, strict=False):
        if ca != cb:
            break
        n += 1
    return n


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` was most likely meant to be, or None when none is close."""
    cutoff = max(1, len(word) // 3)
    ranked: list[tuple[int, int, str]] = []
    for choice in set(choices):
        if choice == word or not choice:
            continue
        short, long_ = sorted((word, choice), key=len)
        prefix = len(short) >= MIN_PREFIX and long_.startswith(short)
        if not prefix and abs(len(word) - len(choice)) > cutoff:
            continue  # cheap: the distance is at least the length difference
        distance = edit_distance(word, choice)
        close = distance <= cutoff and distance < max(len(word), len(choice))
        if close or prefix:
            ranked.append((distance, -_common_prefix(word, choice), choice))
    return min(ranked)[2] if ranked else None


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """``did you mean 'X'?`` for the closest choice (the hint of a one-line error), or None."""
    found = suggest(word, choices)
    return None if found is None else f"did you mean {found!r}?"
