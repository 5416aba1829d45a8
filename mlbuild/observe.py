"""What a build's decisions looked at on disk, so that a later no-op can be answered from it.

A no-op build at 10,000 targets spends ~1 s loading and interpolating mlbuild.yaml, ~0.35 s
parsing the lock file and ~0.4 s deciding, to learn that nothing changed (make learns it
from 10,000 stats). stamp.py keeps, after a build that found every target fresh, the
*answer* together with everything that answer was computed from; the next build with the
same arguments re-checks only those observations and, when every one still holds, reports
the same answer without loading anything.

That is only sound if the list is complete, so the loader, the code scanner and the stat
memo ask the disk through the functions here (never `os.path` directly) while an
`Observer` is active: each records the question and the answer it got. A probe nobody
recorded would be a way to a wrong "fresh"; tests/scenarios/test_noop_stamp.py runs a
no-op with every `os.stat`, `os.lstat`, `os.scandir` and `open` of the workspace logged
and fails on any path the stamp does not cover.

The observer is per thread: decisions run in the thread that called `Workspace.build`;
jobs in worker threads are never recorded (a build that runs anything writes no stamp).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum

__all__ = [
    "Observer",
    "Probe",
    "active",
    "exists",
    "installed",
    "isdir",
    "isfile",
    "islink",
    "lexists",
    "observing",
    "realpath",
]


class Probe(str, Enum):
    """A yes/no question about one path, answered from its lstat (and stat for a link)."""

    EXISTS = "exists"  # os.path.exists: follows links
    LEXISTS = "lexists"
    ISFILE = "isfile"
    ISDIR = "isdir"
    ISLINK = "islink"


class Observer:
    """The observations of one build, each as the answer the build got.

    Paths are workspace-relative (``"."`` for the root itself); a question about a path
    outside the workspace makes the build's answer unfit to keep (``unfit``)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._prefix = root.rstrip(os.sep) + os.sep
        self.probes: dict[tuple[Probe, str], bool] = {}
        self.reals: dict[str, str] = {}  # rel → os.path.realpath of it
        self.globs: dict[str, tuple[str, ...]] = {}  # pattern → files it matched
        self.specs: dict[str, bool] = {}  # top-level module → installed (find_spec)
        self.reads: dict[str, str] = {}  # rel → xxh3 of the bytes read whole
        self.digests: dict[str, tuple[str | None, bool, bool]] = {}  # rel → (xxh, dir, out)
        self.packages: dict[str, str] = {}  # distribution → version (or "not installed")
        self.unfit: str | None = None  # why this build's answer cannot be kept

    def rel(self, full: str) -> str | None:
        """``full`` relative to the root, or None (and the observer unfit) when outside."""
        if full.startswith(self._prefix):
            return full[len(self._prefix) :]
        if full.rstrip(os.sep) == self.root.rstrip(os.sep):
            return "."
        self.refuse(f"a path outside the workspace was consulted: {full}")
        return None

    def refuse(self, why: str) -> None:
        """Something this build depended on cannot be re-checked: keep no answer."""
        if self.unfit is None:
            self.unfit = why

    def probe(self, kind: Probe, full: str, answer: bool) -> None:
        rel = self.rel(full)
        if rel is not None:
            self.probes[(kind, rel)] = answer

    def glob(self, root: str, pattern: str, matched: list[str]) -> None:
        if root != self.root:
            self.refuse(f"a glob outside the workspace was expanded: {pattern}")
        else:
            self.globs[pattern] = tuple(matched)

    def read(self, full: str, data: bytes | None) -> None:
        """``full`` was read whole (``data``), or found missing (None: kept as "")."""
        from .digest import hash_bytes

        rel = self.rel(full)
        if rel is not None:
            self.reads[rel] = "" if data is None else hash_bytes(data)


_local = threading.local()


def active() -> Observer | None:
    """The observer of this thread's build, if one is recording."""
    observer: Observer | None = getattr(_local, "observer", None)
    return observer


@contextmanager
def observing(observer: Observer | None) -> Iterator[Observer | None]:
    """Record this thread's probes into ``observer`` (None: record nothing) meanwhile."""
    saved = active()
    _local.observer = observer
    try:
        yield observer
    finally:
        _local.observer = saved


def _ask(kind: Probe, full: str, answer: bool) -> bool:
    observer = active()
    if observer is not None:
        observer.probe(kind, full, answer)
    return answer


def exists(full: str) -> bool:
    return _ask(Probe.EXISTS, full, os.path.exists(full))


def lexists(full: str) -> bool:
    return _ask(Probe.LEXISTS, full, os.path.lexists(full))


def isfile(full: str) -> bool:
    return _ask(Probe.ISFILE, full, os.path.isfile(full))


def isdir(full: str) -> bool:
    return _ask(Probe.ISDIR, full, os.path.isdir(full))


def islink(full: str) -> bool:
    return _ask(Probe.ISLINK, full, os.path.islink(full))


def installed(module: str) -> bool:
    """Whether the top-level ``module`` can be imported (find_spec; nothing imported)."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    observer = active()
    if observer is not None:
        observer.specs[module] = found
    return found


def realpath(full: str) -> str:
    real = os.path.realpath(full)
    observer = active()
    if observer is not None:
        rel = observer.rel(full)
        if rel is not None:
            observer.reals[rel] = real
    return real
