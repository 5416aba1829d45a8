"""Issue 12 polish without a CLI call: counted nouns, when to color, the terminal
reporter's lines (reason shown, numbers not split by rich's highlighter) and the
"waiting for the workspace lock" notice."""

from __future__ import annotations

import io
import os
import re
import threading
from pathlib import Path

import pytest

from mlbuild.cli.context import ColorMode, Invocation
from mlbuild.plural import counted
from mlbuild.render.reporters import PlainReporter, RichReporter
from mlbuild.results import Action, Decision, Outcome, Reason, ReasonKind, TargetResult
from mlbuild.store import WorkspaceLock

WHY = (Reason(ReasonKind.PARAM, "train.lr", 0.1, 0.2),)


def test_counted_nouns_agree_with_their_count() -> None:
    assert [counted(n, "target") for n in (0, 1, 2)] == ["0 targets", "1 target", "2 targets"]
    assert counted(1, "entry", "entries") == "1 entry"
    assert counted(3, "entry", "entries") == "3 entries"


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("mode", "tty", "no_color", "expected"),
    [
        (ColorMode.AUTO, True, "", True),
        (ColorMode.AUTO, True, "1", False),  # no-color.org: any non-empty value
        (ColorMode.AUTO, False, "", False),
        (ColorMode.ALWAYS, False, "1", True),  # a flag overrides NO_COLOR
        (ColorMode.NEVER, True, "", False),
    ],
)
def test_color_follows_the_flag_then_no_color_then_the_terminal(
    monkeypatch: pytest.MonkeyPatch, mode: ColorMode, tty: bool, no_color: str, expected: bool
) -> None:
    monkeypatch.setenv("NO_COLOR", no_color)
    assert Invocation(color=mode).use_color(_Stream(tty)) is expected


def test_terminal_lines_show_the_reason_and_keep_durations_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # a terminal, as far as rich can tell
    monkeypatch.setenv("COLUMNS", "200")
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    reporter = RichReporter(color=True)
    reporter.target_started(Decision("model:lr", Action.RUN, None, WHY))
    (live,) = reporter.running_lines()
    line = r"  ⠿ run     model:lr  +\d+\.\ds  \(param train\.lr: 0\.1 → 0\.2\)"
    assert re.fullmatch(line, live.plain), live.plain
    reporter.target_finished(TargetResult("model:lr", Outcome.RAN, 1.45, WHY))
    printed = out.getvalue()
    assert "\x1b[" in printed  # colored ...
    assert "1.45s" in printed  # ... but the highlighter did not split the number
    assert "(param train.lr: 0.1 → 0.2)" in re.sub(r"\x1b\[[0-9;]*m", "", printed)


def test_a_waiter_names_the_holder_once_after_its_patience(tmp_path: Path) -> None:
    path = str(tmp_path / ".mlbuild" / "lock")
    said: list[str] = []
    acquired = threading.Event()

    def second() -> None:
        with WorkspaceLock(path, wait=True, notice=said.append, patience=0.05):
            acquired.set()

    with WorkspaceLock(path, wait=False):
        thread = threading.Thread(target=second)
        thread.start()
        assert not acquired.wait(0.3)
        assert len(said) == 1
        assert re.fullmatch(
            rf"waiting for the workspace lock held by PID {os.getpid()} "
            r"\(since \d\d:\d\d:\d\d\)",
            said[0],
        ), said
    thread.join(5)
    assert acquired.is_set() and len(said) == 1
    assert Path(path).read_text() == ""  # released: it names no holder any more


def test_an_interrupted_job_says_interrupted_without_its_traceback() -> None:
    out, err = io.StringIO(), io.StringIO()
    traceback = ("Traceback (most recent call last):", "  File ...loky...", "KeyboardInterrupt")
    stopped = TargetResult(
        "t", Outcome.FAILED, error="interrupted", tail=traceback, log_path="t.log"
    )
    PlainReporter(out=out, err=err).target_finished(stopped)
    lines = [line.split(" ", 1)[1] for line in err.getvalue().splitlines()]
    assert lines == ["FAILED  t", "t: interrupted", "full log: t.log"]
