"""One exception tree for everything mlbuild reports to a user.

::

    MlbuildError                 exit code   meaning
    ├── ConfigError              2           mlbuild.yaml (or a params file) is wrong
    ├── UsageError               2           bad command-line usage
    ├── NoTargetError            4           a requested target matched nothing
    ├── LockHeldError            5           another mlbuild holds the workspace lock
    ├── BuildFailed              1           a user command failed / missed an out
    ├── CheckFailed              3           built, but a data check or gate failed
    ├── VerificationError        6           audit or verification found a violation
    └── Interrupted              130         Ctrl-C (SIGTERM 143, SIGHUP 129: 128 + N)

Any other exception is "mlbuild broke" (exit 70): the CLI prints a traceback and asks for
a bug report. `ExitCode` names every number. "Your command failed" (BuildFailed) is kept
apart from "your mlbuild.yaml is wrong" (ConfigError) so that CI can tell them apart by
exit code alone.
"""

from __future__ import annotations

import enum
import errno
from dataclasses import dataclass

__all__ = [
    "BuildFailed",
    "CheckFailed",
    "ConfigError",
    "ExitCode",
    "Interrupted",
    "LockHeldError",
    "MlbuildError",
    "NoTargetError",
    "SourcePos",
    "UsageError",
    "VerificationError",
]


class ExitCode(enum.IntEnum):
    """Every exit code of the `mlbuild` command, in one place (the table above; ``mlbuild
    --help`` lists them too). CI tells outcomes apart by these numbers alone, so they never
    change."""

    OK = 0
    BUILD_FAILED = 1  # a command failed; also `-q` (stale) and `pull` (not in any cache)
    USAGE = 2  # bad usage or config (click's own usage errors too)
    CHECK_FAILED = 3
    NO_TARGET = 4
    LOCKED = 5
    VERIFICATION = 6
    BUG = 70  # mlbuild broke (EX_SOFTWARE): a traceback and a request for a bug report
    INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT

    @staticmethod
    def for_signal(signum: int) -> int:
        """128 + the signal number (SIGTERM 143, SIGHUP 129), as a shell reports a process
        killed by it: an int, since only SIGINT's has a name here."""
        return 128 + signum


@dataclass(frozen=True)
class SourcePos:
    """A 1-based line and column in a file, for `file:line:col:` prefixes."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class MlbuildError(Exception):
    """Base of every error mlbuild reports to a user as one line plus an optional hint."""

    exit_code: ExitCode = ExitCode.BUILD_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message} ({self.hint})"


class ConfigError(MlbuildError):
    """mlbuild.yaml or a params file is wrong; found before anything runs."""

    exit_code = ExitCode.USAGE

    def __init__(
        self, message: str, *, pos: SourcePos | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.pos = pos

    def __str__(self) -> str:
        text = super().__str__()
        return text if self.pos is None else f"{self.pos}: {text}"


class UsageError(MlbuildError):
    """The command line asks for something that cannot be done."""

    exit_code = ExitCode.USAGE


class NoTargetError(MlbuildError):
    """A target pattern on the command line matched no target."""

    exit_code = ExitCode.NO_TARGET


class LockHeldError(MlbuildError):
    """Another mlbuild process holds the workspace lock (and --no-wait was given)."""

    exit_code = ExitCode.LOCKED


class BuildFailed(MlbuildError):
    """At least one target's command failed or did not write a declared out."""

    exit_code = ExitCode.BUILD_FAILED


class CheckFailed(MlbuildError):
    """Targets were built, but a data check or a gate failed.

    ``findings`` are the verdicts as recorded in manifests (kept beside the rejected outs)."""

    exit_code = ExitCode.CHECK_FAILED

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        findings: tuple[dict[str, object], ...] = (),
    ) -> None:
        super().__init__(message, hint=hint)
        self.findings = findings


class VerificationError(MlbuildError):
    """An audit or a cache verification found a violation."""

    exit_code = ExitCode.VERIFICATION


class Interrupted(MlbuildError):
    """The user pressed Ctrl-C; running jobs were stopped."""

    exit_code = ExitCode.INTERRUPTED


class EnvironmentFault(MlbuildError):
    """The machine refused an operation (disk full, read-only or unreadable path, a tree
    nested too deeply): not a bug in mlbuild, not a mistake in mlbuild.yaml. Everything
    mlbuild writes is atomic, so what finished before the fault stays recorded."""

    exit_code = ExitCode.BUILD_FAILED


_FAULT_HINTS = {
    errno.ENOSPC: "free some space on that disk and run mlbuild again; finished work is kept",
    errno.EDQUOT: "free some space (disk quota) and run mlbuild again; finished work is kept",
    errno.EROFS: "that filesystem is read-only: make it writable, or work in a writable copy",
    errno.EACCES: "check the permissions of that path (and of .mlbuild/)",
    errno.EPERM: "check the permissions of that path (and of .mlbuild/)",
    errno.ENAMETOOLONG: "shorten the path, or nest the files less deeply",
    errno.ELOOP: "a symlink loop: fix or remove the link",
    errno.EIO: "the disk reported an I/O error: check the device",
}


def environment_fault(exc: BaseException) -> EnvironmentFault:
    """A one-line `EnvironmentFault` for an OSError or RecursionError that reached the top."""
    if isinstance(exc, RecursionError):
        return EnvironmentFault(
            "a directory is nested too deeply to walk",
            hint="flatten it, or keep it out of deps and outs",
        )
    if isinstance(exc, OSError):
        what = exc.strerror or type(exc).__name__
        where = exc.filename if exc.filename is not None else None
        text = f"{what}: {where}" if where is not None else what
        if exc.filename2 is not None:
            text += f" -> {exc.filename2}"
        return EnvironmentFault(text, hint=_FAULT_HINTS.get(exc.errno or 0))
    return EnvironmentFault(str(exc))
