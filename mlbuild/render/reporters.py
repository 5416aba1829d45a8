"""Reporters: how a build looks on a terminal, in CI logs and to machines.

* `RichReporter` (a terminal): a live display, one line per running target and a progress
  bar over the build, then a summary table. The only module that imports rich.progress, and
  only when a terminal is attached.
* `PlainReporter` (not a terminal, e.g. CI): timestamped lines, no animation.
* `JsonReporter` (``--json``): one JSON object per line per event.

`reporter` picks one of them for a command; `TransferProgress` is push's progress bar.

All three show a failed command's last lines of output and the path of its full log.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, TYPE_CHECKING, Any

from ..results import Action, BuildResult, Decision, Outcome, TargetResult

if TYPE_CHECKING:
    from ..events import BuildEvents

__all__ = [
    "JsonReporter",
    "PlainReporter",
    "RichReporter",
    "TransferProgress",
    "reporter",
    "summary_line",
]

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


def _failure_text(result: TargetResult) -> list[str]:
    lines = [f"{result.target}: {result.error}"] if result.error else []
    if result.tail:
        lines.append(f"--- last {len(result.tail)} lines of output ---")
        lines.extend(f"  {line}" for line in result.tail)
    if result.log_path:
        lines.append(f"full log: {result.log_path}")
    return lines


def reporter(*, as_json: bool, live: bool, silent: bool = False) -> BuildEvents:
    """The reporter of a build or pull: JSON Lines with ``--json``, else a live display when
    ``live`` (stdout is a terminal and the command's output is not streamed), else plain
    lines. Each class is built only here, so rich is imported only for a terminal."""
    if as_json:
        return JsonReporter()
    if live:
        return RichReporter(silent=silent)
    return PlainReporter(silent=silent)


class PlainReporter:
    """Timestamped plain lines for logs (stdout) and errors (stderr)."""

    def __init__(
        self, *, silent: bool = False, out: IO[str] | None = None, err: IO[str] | None = None
    ) -> None:
        self.silent = silent
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._lock = threading.Lock()

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
        why = decision.reasons[0].describe() if decision.reasons else ""
        self._line(f"{verb:7} {decision.target}" + (f"  ({why})" if why else ""))

    def target_output(self, target: str, line: str) -> None:
        self._line(f"[{target}] {line}")

    def target_finished(self, result: TargetResult) -> None:
        if result.outcome is Outcome.FRESH:
            return
        if result.outcome is Outcome.FAILED:
            self._line(f"FAILED  {result.target}", error=True)
            for line in _failure_text(result):
                self._line(line, error=True)
            return
        if result.outcome is Outcome.SKIPPED:
            self._line(f"skipped {result.target}  ({result.error})", error=True)
            return
        self._line(f"{_VERB[result.outcome]:7} {result.target}  {result.seconds:.2f}s")

    def warning(self, message: str) -> None:
        self._line(f"warning: {message}", error=True)

    def build_finished(self, result: BuildResult) -> None:
        self._line(summary_line(result), error=not result.ok)


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
    """A live display on a terminal; falls back to nothing fancy when output is redirected."""

    def __init__(self, *, silent: bool = False) -> None:
        from rich.console import Console

        self.console = Console(stderr=False)
        self.silent = silent
        self._lock = threading.Lock()
        self._running: dict[str, float] = {}
        self._total = 0
        self._done = 0
        self._live: Any = None
        self._progress: Any = None
        self._task: Any = None

    def _render(self) -> Any:
        from rich.console import Group
        from rich.text import Text

        now = time.monotonic()
        lines = [
            Text.assemble(("  ⠿ ", "cyan"), (name, "bold"), f"  {now - t0:5.1f}s")
            for name, t0 in sorted(self._running.items())
        ]
        return Group(self._progress, *lines)

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
        with self._lock:
            self._running[decision.target] = time.monotonic()

    def target_output(self, target: str, line: str) -> None:
        self.console.print(f"[dim]\\[{target}][/dim] {line}", markup=True, highlight=False)

    def target_finished(self, result: TargetResult) -> None:
        with self._lock:
            self._running.pop(result.target, None)
            self._done += 1
        if self._progress is not None:
            self._progress.update(self._task, completed=self._done)
        if result.outcome is Outcome.FAILED:
            self.console.print(f"[bold red]FAILED[/] {result.target}")
            for line in _failure_text(result):
                self.console.print(line, markup=False, highlight=False)
        elif result.outcome is Outcome.SKIPPED:
            self.console.print(f"[yellow]skipped[/] {result.target} ({result.error})")
        elif result.outcome is not Outcome.FRESH and not self.silent:
            color = "green" if result.outcome is Outcome.RAN else "blue"
            verb = _VERB[result.outcome]
            self.console.print(
                f"[{color}]{verb:8}[/] {result.target}  [dim]{result.seconds:.2f}s[/]"
            )

    def warning(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {message}", markup=True, highlight=False)

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


class TransferProgress:
    """A progress bar over the builds a transfer moves, on a terminal only (CI logs get
    the one summary line). Use as a context manager; `update` is thread-safe."""

    def __init__(self, label: str) -> None:
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
                console=Console(stderr=True),
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
