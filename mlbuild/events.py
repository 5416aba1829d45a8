"""BuildEvents: what the scheduler tells the outside world (the reporters listen)."""

from __future__ import annotations

from typing import Protocol

from .results import BuildResult, Decision, TargetResult

__all__ = ["BuildEvents", "NullEvents"]


class BuildEvents(Protocol):
    def build_started(self, targets: list[str], jobs: int) -> None: ...
    def target_started(self, decision: Decision) -> None: ...
    def target_output(self, target: str, line: str) -> None: ...
    def target_finished(self, result: TargetResult) -> None: ...
    def warning(self, message: str) -> None: ...
    def build_finished(self, result: BuildResult) -> None: ...


class NullEvents:
    """Listens to nothing: the Python API's default."""

    def build_started(self, targets: list[str], jobs: int) -> None:
        pass

    def target_started(self, decision: Decision) -> None:
        pass

    def target_output(self, target: str, line: str) -> None:
        pass

    def target_finished(self, result: TargetResult) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    def build_finished(self, result: BuildResult) -> None:
        pass
