"""The last failed attempt of each target, so `status` and `explain` can say "failed 10:02,
exit 2" on a target that is stale because its last try did not succeed.

Make and Snakemake keep no such record; mlbuild keeps one line's worth per target:

Format of ``.mlbuild/failures.json`` (version 1)::

    {"version": 1,
     "targets": {"<target>": {"key": "<build key attempted>", "when": <epoch seconds>,
                              "cause": "exit"|"check"|"gate"|"interrupted"|"error",
                              "exit_code": <int>|null}}}

A record is written when an attempt fails (the runner, through `FailureLog`) and dropped
when the target later succeeds (ran or restored). It is shown only while the target's
current key is still the one that failed: any edit since then makes a new key, and the old
failure no longer says what would run.

The file is a note, not a record the build relies on: the bytes read back are treated as
hostile. `read_failures` is strict (the documented shape, exact types, a build key's exact
shape, a finite time); a file that fails it is ignored as a whole, and an entry for a
target the pipeline does not declare is never shown. Nothing in it is ever used as a path.
Writes are atomic (store/atomic.py).
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .atomic import atomic_write
from .records import XXH_PATTERN

__all__ = [
    "FAILURES_VERSION",
    "FailedAttempt",
    "FailureCause",
    "FailureLog",
    "clock_text",
    "read_failures",
]

FAILURES_VERSION = 1
_MAX_BYTES = 4 * 1024 * 1024  # far beyond any real file: a bigger one is not read


class FailureCause(Enum):
    """How an attempt ended without a build."""

    EXIT = "exit"  # the command (or a Python job's process) exited non-zero or was killed
    CHECK = "check"  # the outs were made, a data check rejected them
    GATE = "gate"  # the outs were made, a gate (or a promotion) rejected them
    INTERRUPTED = "interrupted"  # Ctrl-C, SIGTERM, SIGHUP
    ERROR = "error"  # anything else: a callable raised, an out was missing, ...


def clock_text(epoch: float, now: float | None = None, *, seconds: bool = False) -> str:
    """``10:02`` in local time if ``epoch`` is today, else ``2026-12-01 10:02`` (with
    ``seconds``: ``10:02:13``): how mlbuild shows a moment of this machine's recent past
    (here, and the workspace lock's "waiting for" line, store/wslock.py)."""
    when = time.localtime(epoch)
    today = time.localtime(time.time() if now is None else now)
    same_day = (when.tm_year, when.tm_yday) == (today.tm_year, today.tm_yday)
    clock = "%H:%M:%S" if seconds else "%H:%M"
    return time.strftime(clock if same_day else f"%Y-%m-%d {clock}", when)


@dataclass(frozen=True)
class FailedAttempt:
    """One failed attempt of a target: with which key, when, and how it ended."""

    key: str
    when: float
    cause: FailureCause
    exit_code: int | None = None

    def how(self) -> str:
        """``exit 2``, ``killed by signal 9``, ``rejected by a check``; "" when nothing
        more than "failed" can be said."""
        if self.cause is FailureCause.EXIT and self.exit_code is not None:
            code = self.exit_code
            return f"killed by signal {-code}" if code < 0 else f"exit {code}"
        if self.cause is FailureCause.CHECK:
            return "rejected by a check"
        if self.cause is FailureCause.GATE:
            return "rejected by a gate"
        return ""

    def describe(self, now: float | None = None) -> str:
        """One phrase: ``failed 10:02, exit 2`` / ``interrupted 10:02``."""
        at = clock_text(self.when, now)
        if self.cause is FailureCause.INTERRUPTED:
            return f"interrupted {at}"
        how = self.how()
        return f"failed {at}, {how}" if how else f"failed {at}"

    def to_json(self) -> dict[str, Any]:
        """For `status --json` / `explain --json`: the time as UTC ISO 8601, plus the text."""
        moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.when))
        return {
            "when": moment,
            "cause": self.cause.value,
            "exit_code": self.exit_code,
            "key": self.key,
            "text": self.describe(),
        }

    def _record(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "when": self.when,
            "cause": self.cause.value,
            "exit_code": self.exit_code,
        }


def _attempt(raw: Any) -> FailedAttempt | None:
    """One entry if it has exactly the documented shape, else None."""
    if not isinstance(raw, dict) or set(raw) != {"key", "when", "cause", "exit_code"}:
        return None
    key, when, cause, code = raw["key"], raw["when"], raw["cause"], raw["exit_code"]
    if not isinstance(key, str) or not XXH_PATTERN.fullmatch(key):
        return None
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        return None
    if not math.isfinite(when) or not 0 <= when < 2**37:  # representable by localtime
        return None
    if not isinstance(cause, str) or cause not in {c.value for c in FailureCause}:
        return None
    if code is not None and (
        isinstance(code, bool) or not isinstance(code, int) or not -(2**31) <= code < 2**31
    ):
        return None
    kind = FailureCause(cause)
    if (code is not None) != (kind is FailureCause.EXIT):
        return None
    return FailedAttempt(key, float(when), kind, code)


def read_failures(data: bytes) -> dict[str, FailedAttempt] | None:
    """The records in ``data`` (the file's bytes), or None if the file as a whole is not
    what `FailureLog` writes (then every note is dropped: never a guess, never a crash)."""
    if len(data) > _MAX_BYTES:
        return None
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or set(doc) != {"version", "targets"}:
        return None
    version, targets = doc["version"], doc["targets"]
    if isinstance(version, bool) or version != FAILURES_VERSION or not isinstance(targets, dict):
        return None
    found: dict[str, FailedAttempt] = {}
    for name, raw in targets.items():
        attempt = _attempt(raw)
        if attempt is None:
            return None
        found[name] = attempt
    return found


def load_failures(path: str) -> dict[str, FailedAttempt]:
    """The records in the file at ``path``; none if it is missing or fails `read_failures`."""
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX_BYTES + 1)
    except OSError:  # missing, a directory, unreadable
        return {}
    return read_failures(data) or {}


class FailureLog:
    """The failures file of one build, for its worker threads: loaded on first use (a
    build that runs nothing never reads it), rewritten atomically on each change."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._records: dict[str, FailedAttempt] | None = None

    def _loaded(self) -> dict[str, FailedAttempt]:
        if self._records is None:
            self._records = load_failures(self.path)
        return self._records

    def _save(self, records: dict[str, FailedAttempt]) -> None:
        body = {
            "version": FAILURES_VERSION,
            "targets": {n: records[n]._record() for n in sorted(records)},
        }
        with contextlib.suppress(OSError):  # only a note: a build never fails for it
            atomic_write(self.path, json.dumps(body, sort_keys=True, indent=1).encode())

    def failed(self, target: str, attempt: FailedAttempt) -> None:
        """Remember ``attempt`` as ``target``'s last failed one."""
        with self._lock:
            records = self._loaded()
            records[target] = attempt
            self._save(records)

    def succeeded(self, target: str) -> None:
        """``target`` was built or restored: its failure note, if any, is gone."""
        with self._lock:
            records = self._loaded()
            if records.pop(target, None) is not None:
                self._save(records)
