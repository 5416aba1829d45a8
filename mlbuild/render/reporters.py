"""Reporters: how a build looks on a terminal, in CI logs and to machines.

* `RichReporter` (a terminal): a live display, one line per running target and a progress
  bar over the build, then a summary table. The only module that imports rich.progress, and
  only when a terminal is attached.
* `PlainReporter` (not a terminal, e.g. CI): timestamped lines, no animation.
* `JsonReporter` (``--json``): one JSON object per line per event.

`reporter` picks one of them for a command; `TransferProgress` is push's progress bar.

All three show a failed command's last lines of output and the path of its full log, and
after the summary the names of the skipped targets (`skipped_line`): without ``-k`` the
targets a failure kept from starting are reported nowhere else.

Color: `reporter` is told whether to color (the CLI decides: ``--color``, NO_COLOR, a
terminal). rich's highlighter is off everywhere here: mlbuild formats its own numbers
(``1.45s``), and the highlighter would paint ``1.`` and ``45s`` apart.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, TYPE_CHECKING, Any

from ..results import Action, BuildResult, Decision, Outcome, Reason, TargetResult

if TYPE_CHECKING:
    from ..events import BuildEvents

__all__ = [
    "JsonReporter",
    "PlainReporter",
    "RichReporter",
    "TransferProgress",
    "reporter",
    "skipped_line",
    "summary_line",
]

# How many skipped targets `skipped_line` names before "and N more".
SHOWN_SKIPPED = 5

_VERB = {
    Outcome.RAN: "built",
    Outcome.RESTORED: "restored",
    Outcome.FRESH: "fresh",
    Outcome.FAILED: "FAILED",
    Outcome.SKIPPED: "skipped",
    Outcome.WOULD_RUN: "would run",
    Outcome.WOULD_RESTORE: "would restore",
}


def summary_line(result: BuildResult) -> str:
    parts = [
        f"{result.count(Outcome.RAN)} ran",
        f"{result.count(Outcome.RESTORED)} restored",
        f"{result.count(Outcome.FRESH)} fresh",
        f"{result.count(Outcome.FAILED)} failed",
    ]
    skipped = result.count(Outcome.SKIPPED)
    if skipped:
        parts.append(f"{skipped} skipped")
    state = "interrupted" if result.interrupted else ("done" if result.ok else "failed")
    return f"mlbuild: {state}: {', '.join(parts)} in {result.seconds:.2f}s"


def skipped_line(result: BuildResult) -> str | None:
    """``mlbuild: 3 skipped: a, b, c`` in build order (the first `SHOWN_SKIPPED`, then
    ``and N more``); None when nothing was skipped."""
    names = [t.target for t in result.targets if t.outcome is Outcome.SKIPPED]
    if not names:
        return None
    shown = ", ".join(names[:SHOWN_SKIPPED])
    more = len(names) - SHOWN_SKIPPED
    return f"mlbuild: {len(names)} skipped: {shown}" + (f" and {more} more" if more > 0 else "")


def _first_reason(reasons: tuple[Reason, ...]) -> str:
    return reasons[0].describe() if reasons else ""


# ANSI SGR codes of the plain reporter's words with --color always (no rich for CI logs).
_SGR = {"green": "32", "blue": "34", "red": "1;31", "yellow": "33", "dim": "2"}
_COLOR = {Outcome.RAN: "green", Outcome.RESTORED: "blue"}


# The error of a job that a signal stopped (executors' JobResult): its output ends in the
# KeyboardInterrupt traceback of the worker (loky's frames, the user's), which says nothing
# that "interrupted" does not, so it is not shown.
_INTERRUPTED = "interrupted"


def _failure_text(result: TargetResult) -> list[str]:
    lines = [f"{result.target}: {result.error}"] if result.error else []
    if result.tail and result.error != _INTERRUPTED:
        n = len(result.tail)
        lines.append(f"--- last {'line' if n == 1 else f'{n} lines'} of output ---")
        lines.extend(f"  {line}" for line in result.tail)
    if result.log_path:
        lines.append(f"full log: {result.log_path}")
    return lines


def reporter(
    *, as_json: bool, live: bool, silent: bool = False, color: bool | None = None
) -> BuildEvents:
    """The reporter of a build or pull: JSON Lines with ``--json``, else a live display when
    ``live`` (stdout is a terminal and the command's output is not streamed), else plain
    lines. Each class is built only here, so rich is imported only for a terminal.
    ``color`` None: rich decides on a terminal (NO_COLOR included), plain lines have none."""
    if as_json:
        return JsonReporter()
    if live:
        return RichReporter(silent=silent, color=color)
    return PlainReporter(silent=silent, color=bool(color))


class PlainReporter:
    """Timestamped plain lines for logs (stdout) and errors (stderr)."""

    def __init__(
        self,
        *,
        silent: bool = False,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
        color: bool = False,
    ) -> None:
        self.silent = silent
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.color = color
        self._lock = threading.Lock()

    def _paint(self, text: str, color: str) -> str:
        return f"\x1b[{_SGR[color]}m{text}\x1b[0m" if self.color else text

    def _line(self, text: str, *, error: bool = False) -> None:
        if self.silent and not error:
            return
        stream = self.err if error else self.out
        with self._lock:
            stream.write(f"{time.strftime('%H:%M:%S')} {text}\n")
            stream.flush()

    def build_started(self, targets: list[str], jobs: int) -> None:
        pass

    def target_started(self, decision: Decision) -> None:
        verb = "restore" if decision.action is Action.RESTORE else "run"
        why = _first_reason(decision.reasons)
        self._line(f"{verb:7} {decision.target}" + (f"  ({why})" if why else ""))

    def target_output(self, target: str, line: str) -> None:
        self._line(f"[{target}] {line}")

    def target_finished(self, result: TargetResult) -> None:
        if result.outcome is Outcome.FRESH:
            return
        if result.outcome is Outcome.FAILED:
            self._line(f"{self._paint('FAILED', 'red')}  {result.target}", error=True)
            for line in _failure_text(result):
                self._line(line, error=True)
            return
        if result.outcome is Outcome.SKIPPED:
            verb = self._paint("skipped", "yellow")
            self._line(f"{verb} {result.target}  ({result.error})", error=True)
            return
        word = _VERB[result.outcome]
        verb = self._paint(word, _COLOR.get(result.outcome, "dim")) + " " * (7 - len(word))
        self._line(f"{verb} {result.target}  {result.seconds:.2f}s")

    def warning(self, message: str) -> None:
        self._line(f"{self._paint('warning:', 'yellow')} {message}", error=True)

    def build_finished(self, result: BuildResult) -> None:
        self._line(summary_line(result), error=not result.ok)
        skipped = skipped_line(result)
        if skipped:
            self._line(skipped, error=True)


class JsonReporter:
    """JSON Lines: ``{"event": ..., ...}`` per event, on stdout."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self._lock = threading.Lock()

    def _emit(self, event: str, **data: Any) -> None:
        with self._lock:
            record = {"event": event, "time": round(time.time(), 3), **data}
            self.out.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
            self.out.flush()

    def build_started(self, targets: list[str], jobs: int) -> None:
        self._emit("build_started", targets=targets, jobs=jobs)

    def target_started(self, decision: Decision) -> None:
        self._emit(
            "target_started",
            target=decision.target,
            action=decision.action.value,
            key=decision.key,
            reasons=[r.to_json() for r in decision.reasons],
        )

    def target_output(self, target: str, line: str) -> None:
        self._emit("output", target=target, line=line)

    def target_finished(self, result: TargetResult) -> None:
        data = result.to_json()
        if result.tail:
            data["tail"] = list(result.tail)
        self._emit("target_finished", **data)

    def warning(self, message: str) -> None:
        self._emit("warning", message=message)

    def build_finished(self, result: BuildResult) -> None:
        self._emit(
            "build_finished",
            ok=result.ok,
            interrupted=result.interrupted,
            seconds=round(result.seconds, 3),
            counts={o.value: result.count(o) for o in Outcome},
        )


class RichReporter:
    """A live display on a terminal: one line per running target (what, since when, why),
    finished targets printed above it with the first reason, a summary table at the end.
    ``color`` None lets rich decide (it honours NO_COLOR); False strips colors."""

    def __init__(self, *, silent: bool = False, color: bool | None = None) -> None:
        from rich.console import Console

        self.console = Console(
            stderr=False, highlight=False, no_color=None if color is None else not color
        )
        self.silent = silent
        self._lock = threading.Lock()
        # target → (verb, start time, its first reason)
        self._running: dict[str, tuple[str, float, str]] = {}
        self._total = 0
        self._done = 0
        self._live: Any = None
        self._progress: Any = None
        self._task: Any = None

    def _render(self) -> Any:
        from rich.console import Group

        return Group(self._progress, *self.running_lines())

    def running_lines(self) -> list[Any]:
        """The live lines under the bar: ``⠿ run     model:prod    3.2s  (why)``, one
        screen line each (a long reason is cut with an ellipsis)."""
        from rich.text import Text

        now = time.monotonic()
        with self._lock:
            running = sorted(self._running.items())
        lines = []
        for name, (verb, t0, why) in running:
            line = Text.assemble(
                ("  ⠿ ", "cyan"),
                f"{verb:7} ",
                (name, "bold"),
                f"  {now - t0:5.1f}s",
                (f"  ({why})" if why else "", "dim"),
            )
            line.no_wrap, line.overflow = True, "ellipsis"
            lines.append(line)
        return lines

    def build_started(self, targets: list[str], jobs: int) -> None:
        if self.silent:
            return
        from rich.live import Live
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._total = len(targets)
        self._progress = Progress(
            TextColumn("mlbuild"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        self._task = self._progress.add_task("build", total=self._total)
        self._live = Live(
            self._render(),
            console=self.console,
            refresh_per_second=8,
            transient=True,
            get_renderable=self._render,
        )
        self._live.start()

    def target_started(self, decision: Decision) -> None:
        verb = "restore" if decision.action is Action.RESTORE else "run"
        with self._lock:
            self._running[decision.target] = (
                verb,
                time.monotonic(),
                _first_reason(decision.reasons),
            )

    def target_output(self, target: str, line: str) -> None:
        from rich.text import Text

        self.console.print(Text.assemble((f"[{target}]", "dim"), f" {line}"))

    def target_finished(self, result: TargetResult) -> None:
        with self._lock:
            self._running.pop(result.target, None)
            self._done += 1
        if self._progress is not None:
            self._progress.update(self._task, completed=self._done)
        from rich.text import Text

        # Text pieces, never markup: a target name or a reason may hold "[...]".
        if result.outcome is Outcome.FAILED:
            self.console.print(Text.assemble(("FAILED", "bold red"), " ", result.target))
            for text in _failure_text(result):
                self.console.print(text, markup=False)
        elif result.outcome is Outcome.SKIPPED:
            self.console.print(
                Text.assemble(("skipped", "yellow"), f" {result.target} ({result.error})")
            )
        elif result.outcome is not Outcome.FRESH and not self.silent:
            why = _first_reason(result.reasons)
            line = Text.assemble(
                (f"{_VERB[result.outcome]:8}", _COLOR.get(result.outcome, "")),
                f" {result.target}  ",
                (f"{result.seconds:.2f}s", "dim"),
                (f"  ({why})" if why else "", "dim"),
            )
            # One screen line (`explain` has the whole story); print's own arguments, since
            # it joins Text pieces into a new Text, dropping theirs.
            self.console.print(line, no_wrap=True, overflow="ellipsis")

    def warning(self, message: str) -> None:
        from rich.text import Text

        self.console.print(Text.assemble(("warning:", "yellow"), f" {message}"))

    def build_finished(self, result: BuildResult) -> None:
        if self._live is not None:
            self._live.stop()
        if self.silent and result.ok:
            return
        from rich.table import Table

        table = Table(show_header=True, header_style="bold", box=None)
        for col in ("ran", "restored", "fresh", "failed", "skipped", "time"):
            table.add_column(col, justify="right")
        table.add_row(
            str(result.count(Outcome.RAN)),
            str(result.count(Outcome.RESTORED)),
            str(result.count(Outcome.FRESH)),
            str(result.count(Outcome.FAILED)),
            str(result.count(Outcome.SKIPPED)),
            f"{result.seconds:.2f}s",
        )
        self.console.print(table)
        skipped = skipped_line(result)
        if skipped:
            self.console.print(skipped, markup=False)


class TransferProgress:
    """A progress bar over the builds a transfer moves, on a terminal only (CI logs get
    the one summary line). Use as a context manager; `update` is thread-safe."""

    def __init__(self, label: str, *, color: bool | None = None) -> None:
        self.label = label
        self._bar: Any = None
        self._task: Any = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=Console(
                    stderr=True, highlight=False, no_color=None if color is None else not color
                ),
                transient=True,
            )

    def __enter__(self) -> TransferProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def update(self, done: int, total: int) -> None:
        if self._bar is None:
            return
        if self._task is None:
            self._task = self._bar.add_task(self.label, total=total)
        self._bar.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
