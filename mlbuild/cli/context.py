"""What every command shares: the group options (click's context object) and the small
helpers for output.

`Invocation` is created by `main` and handed to click as ``obj``; the group callback fills
it from ``-C``, ``-f``, ``--debug`` and ``--color`` and each command receives it through
`pass_invocation`. `main` keeps a reference, so the error boundary knows ``--debug`` after
click has unwound. No module-level state: one process may run several invocations.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

from ..errors import UsageError
from ..kinds import DaskMode, ExecutorType, words

if TYPE_CHECKING:
    from ..events import BuildEvents
    from ..options import BuildOptions
    from ..results import BuildResult
    from ..workspace import Workspace

__all__ = [
    "ColorMode",
    "Invocation",
    "color_option",
    "echo_lines",
    "emit_json",
    "executor_options",
    "parse_jobs",
    "pass_invocation",
    "write_output",
]


class ColorMode(Enum):
    """``--color``: as ls, grep and git spell it."""

    AUTO = "auto"  # on a terminal, unless NO_COLOR is set (and not empty)
    ALWAYS = "always"  # even into a pipe or file, and despite NO_COLOR (CI logs that show it)
    NEVER = "never"


@dataclass
class Invocation:
    """The options given before the subcommand."""

    directory: str | None = None  # -C: as make -C, everything else is relative to it
    file: str | None = None  # -f: the config file, relative to the directory
    debug: bool = False  # --debug: a traceback with every error
    color: ColorMode = ColorMode.AUTO  # --color (build's own --color wins for the build)

    def use_color(self, stream: IO[str]) -> bool:
        """Whether output to ``stream`` gets ANSI colors. ``auto`` follows
        https://no-color.org: a non-empty NO_COLOR turns color off; a command-line flag
        overrides it (``--color always``)."""
        if self.color is not ColorMode.AUTO:
            return self.color is ColorMode.ALWAYS
        return stream.isatty() and not os.environ.get("NO_COLOR")

    def base_dir(self) -> str:
        """The -C directory, checked."""
        base = self.directory or "."
        if not os.path.isdir(base):
            raise UsageError(f"-C {base}: no such directory")
        return base

    def noop_answer(
        self, targets: tuple[str, ...], options: BuildOptions, events: BuildEvents
    ) -> BuildResult | None:
        """A plain build's result from the workspace's no-op stamp (noop.py), if it holds."""
        from ..locate import locate
        from ..noop import answer, asked
        from ..store.layout import Layout

        base = self.base_dir()
        config = os.path.join(base, self.file) if self.file else None
        config_path, root, lock_path = locate(base, config)
        parts = asked(config_path, lock_path, targets, options)
        if parts is None:
            return None
        return answer(Layout(root), parts, events, wait=options.wait)

    def workspace(self, overrides: Mapping[str, Any] | None = None) -> Workspace:
        """The workspace these options name (its config is loaded lazily), with a build's
        ``--set`` values over its params."""
        from ..workspace import Workspace

        base = self.base_dir()
        if self.file:
            return Workspace(config=os.path.join(base, self.file), overrides=overrides)
        return Workspace(base, overrides=overrides)


pass_invocation = click.make_pass_decorator(Invocation, ensure=True)


F = TypeVar("F", bound=Callable[..., Any])


def color_option(default: str | None) -> Callable[[F], F]:
    """``--color auto|always|never``: a group option (every command) that `build` takes
    too, since make users put flags after the targets (``mlbuild model:prod --color never``).
    ``default`` None on build: the group's value stands unless build's is given."""
    return click.option(
        "--color",
        type=click.Choice([m.value for m in ColorMode]),
        default=default,
        show_default=default is not None,
        help="Color output: auto (a terminal, unless NO_COLOR is set), always, or never.",
    )


def executor_options(where: str) -> Callable[[F], F]:
    """``--executor``, ``--dask-address`` and ``--dask-mode``, shared by the commands that run
    jobs (build, reproduce) so that the two cannot drift; ``where`` words the help
    ("jobs run", "the job runs")."""

    def apply(command: F) -> F:
        command = click.option(
            "--dask-mode",
            type=click.Choice(words(DaskMode)),
            default=None,
            help="Workers share the workspace, or get data through the remote cache.",
        )(command)
        command = click.option(
            "--dask-address", metavar="ADDR", help="The Dask scheduler (tcp://HOST:8786)."
        )(command)
        return click.option(
            "--executor",
            type=click.Choice(words(ExecutorType)),
            default=None,
            help=f"Where {where} (default: executor: in mlbuild.yaml, else local).",
        )(command)

    return apply


def echo_lines(lines: Iterable[str]) -> None:
    for line in lines:
        click.echo(line)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


def write_output(text: str, output: str | None) -> None:
    """``-o FILE`` writes there; without it, stdout."""
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None


def parse_jobs(text: str | None) -> int | None:
    """``-j N`` / ``-j auto`` (None: the executor picks)."""
    if text is None or text == "auto":
        return None
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"bad --jobs value {text!r}", hint="use a positive integer or 'auto'")
    return int(text)
