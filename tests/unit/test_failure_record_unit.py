"""The failures file (.mlbuild/failures.json) read back as hostile bytes: only exactly what
`FailureLog` writes is accepted, anything else drops every note, never a crash; and how an
attempt is worded ("failed 10:02, exit 2")."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from mlbuild.store import Layout
from mlbuild.store.failures import (
    FailedAttempt,
    FailureCause,
    FailureLog,
    clock_text,
    load_failures,
    read_failures,
)

KEY = "xxh3-128:" + "ab" * 16
WHEN = 1_796_300_000.5


def _file(entry: Any, **top: Any) -> bytes:
    doc = {"version": 1, "targets": {"b": entry}, **top}
    return json.dumps(doc).encode()


GOOD = {"key": KEY, "when": WHEN, "cause": "exit", "exit_code": 2}


def test_what_the_log_writes_reads_back_and_a_success_forgets_it(tmp_path: Path) -> None:
    path = Layout(str(tmp_path)).failures_file
    log = FailureLog(path)
    log.failed("model:prod", FailedAttempt(KEY, WHEN, FailureCause.EXIT, 2))
    log.failed("g", FailedAttempt(KEY, WHEN, FailureCause.GATE))
    assert load_failures(path) == {
        "model:prod": FailedAttempt(KEY, WHEN, FailureCause.EXIT, 2),
        "g": FailedAttempt(KEY, WHEN, FailureCause.GATE),
    }
    FailureLog(path).succeeded("model:prod")
    assert set(load_failures(path)) == {"g"}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b"{" * 100_000,
        _file(GOOD)[:-3],
        json.dumps({"version": 2, "targets": {"b": GOOD}}).encode(),
        json.dumps({"version": True, "targets": {"b": GOOD}}).encode(),
        json.dumps({"version": 1, "targets": []}).encode(),
        _file(GOOD, extra=1),
        _file({**GOOD, "extra": 1}),
        _file({k: v for k, v in GOOD.items() if k != "when"}),
        _file({**GOOD, "key": "../../etc/passwd"}),
        _file({**GOOD, "key": KEY.upper()}),
        _file({**GOOD, "key": None}),
        _file({**GOOD, "when": "10:02"}),
        _file({**GOOD, "when": True}),
        _file({**GOOD, "when": -1}),
        _file({**GOOD, "when": 1e300}),
        b'{"version": 1, "targets": {"b": {"key": "%s", "when": NaN, "cause": "exit", '
        b'"exit_code": 2}}}' % KEY.encode(),
        _file({**GOOD, "cause": "boom"}),
        _file({**GOOD, "exit_code": "2"}),
        _file({**GOOD, "exit_code": True}),
        _file({**GOOD, "exit_code": 2**40}),
        _file({**GOOD, "exit_code": None}),  # an exit without its code
        _file({**GOOD, "cause": "gate"}),  # a gate with an exit code
        _file({**GOOD, "exit_code": 2.0}),
    ],
)
def test_a_file_not_as_written_is_ignored_as_a_whole(tmp_path: Path, data: bytes) -> None:
    assert read_failures(data) is None
    path = tmp_path / "failures.json"
    path.write_bytes(data)
    assert load_failures(str(path)) == {}


def test_a_missing_or_unreadable_file_is_no_note(tmp_path: Path) -> None:
    assert load_failures(str(tmp_path / "absent.json")) == {}
    assert load_failures(str(tmp_path)) == {}  # a directory
    assert read_failures(_file(GOOD)) == {"b": FailedAttempt(KEY, WHEN, FailureCause.EXIT, 2)}


def test_an_attempt_is_worded_in_local_time_today_or_with_its_date() -> None:
    now = time.mktime((2026, 12, 3, 18, 0, 0, 0, 0, -1))
    today = time.mktime((2026, 12, 3, 10, 2, 30, 0, 0, -1))
    before = time.mktime((2026, 12, 1, 9, 5, 0, 0, 0, -1))
    assert clock_text(today, now) == "10:02"
    assert clock_text(before, now) == "2026-12-01 09:05"
    cases = {
        FailedAttempt(KEY, today, FailureCause.EXIT, 2): "failed 10:02, exit 2",
        FailedAttempt(KEY, today, FailureCause.EXIT, -9): "failed 10:02, killed by signal 9",
        FailedAttempt(KEY, today, FailureCause.CHECK): "failed 10:02, rejected by a check",
        FailedAttempt(KEY, today, FailureCause.GATE): "failed 10:02, rejected by a gate",
        FailedAttempt(KEY, today, FailureCause.INTERRUPTED): "interrupted 10:02",
        FailedAttempt(KEY, before, FailureCause.ERROR): "failed 2026-12-01 09:05",
    }
    assert [a.describe(now) for a in cases] == list(cases.values())
