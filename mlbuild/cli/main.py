"""The `mlbuild` group, its global options, argv routing and `main`, the error boundary.

`main` is the ONLY place that prints errors and picks exit codes for them (`ExitCode`,
errors.py). Commands raise; they exit themselves only with a verdict that is not an error
(``-q`` stale, an audit violation, a failed build already reported by its reporter).
A bare ``mlbuild [OPTIONS] [TARGETS]`` is ``mlbuild build ...``: `_route` inserts the word
``build`` when the first word is not a subcommand, as make users expect. So ``mlbuild
--help`` lists build's options too (`_Commands.format_options`, read from the `build`
command itself so that the two lists cannot drift). Shell completion (completion.py) routes
the same way without loading anything, and completes a first word to commands and targets.
"""

from __future__ import annotations

import gc as pygc
import os
import re
import sys
from typing import TYPE_CHECKING, NoReturn

import click

from .. import __version__, interrupts
from ..errors import ExitCode, MlbuildError, environment_fault
from .context import ColorMode, Invocation, color_option

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

__all__ = ["COMPLETE_VAR", "cli", "main"]

COMPLETE_VAR = "_MLBUILD_COMPLETE"  # set by the completion scripts (click: _{PROG}_COMPLETE)

_GROUP_VALUE_OPTS = {"-C", "--directory", "-f", "--file", "--color"}
_GROUP_FLAGS = {"--debug", "--version", "--help", "-h"}


class _Commands(click.Group):
    """Subcommands, with one "did you mean" for a mistyped one (suggest.py: a swap of two
    letters is one edit, so `mlbuild stauts` names `mlbuild status`).

    `_route` hands click a first word that is not a subcommand only when it is close to
    one; every other word is a target for `build`. Such a close word still builds when it
    names a target (a target ``graphs``); otherwise it is click's usage error (exit 2)
    naming the subcommand it resembles. Subgroups (`mlbuild metrics shwo`) use this class
    too, and only suggest."""

    group_class = type  # `@cli.group()` makes subgroups of this class

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if not name or name.startswith("-") or self.get_command(ctx, name) is not None:
            return super().resolve_command(ctx, args)
        if ctx.resilient_parsing:  # shell completion: no loading, no errors; as `_route`
            if ctx.parent is None and "build" in self.commands:
                return "build", self.commands["build"], args
            return super().resolve_command(ctx, args)
        if ctx.parent is None and "build" in self.commands and _names_target(ctx, name):
            return "build", self.commands["build"], args
        from ..suggest import suggest

        close = suggest(name, self.list_commands(ctx))
        hint = f": did you mean `{ctx.command_path} {close}`?" if close else "."
        raise click.UsageError(f"No such command {name!r}{hint}", ctx)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem[str]]:
        """The subcommands, and at the top level the target names too: a first word that
        is not a command is a target (`_route`). cli/completion.py reads the names."""
        items = super().shell_complete(ctx, incomplete)
        if ctx.parent is None and not incomplete.startswith("-"):
            from .completion import target_items

            items.extend(target_items(ctx, incomplete))
        return items

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The group's options, then (top level only) build's, since a bare ``mlbuild
        TARGETS`` is a build, then the commands."""
        click.Command.format_options(self, ctx, formatter)
        build = self.commands.get("build") if ctx.parent is None else None
        if build is not None:
            sub = click.Context(build, info_name="build", parent=ctx)
            records = [
                record
                for param in build.get_params(sub)
                # not TARGETS (in the usage line), --help (build's own) nor --color (above)
                if isinstance(param, click.Option)
                and param.expose_value
                and param.name != "color"
                and (record := param.get_help_record(sub)) is not None
            ]
            with formatter.section("Build options (mlbuild [OPTIONS] [TARGETS] is a build)"):
                formatter.write_dl(records)
        self.format_commands(ctx, formatter)


def _complete_path(incomplete: str, kind: str) -> list[CompletionItem[str]]:
    """-C / -f complete as paths: the shell lists directories (``dir``) or files."""
    from click.shell_completion import CompletionItem

    return [CompletionItem(incomplete, type=kind)]


def _names_target(ctx: click.Context, word: str) -> bool:
    """Whether ``word`` is a target of the workspace the group options point at (False when
    there is none or its config does not load: then the word is taken as a mistyped
    subcommand)."""
    from ..config import find_config, load_pipeline
    from ..errors import ConfigError

    base = ctx.params.get("directory") or "."
    file_ = ctx.params.get("file_")
    try:
        config = os.path.join(base, file_) if file_ else find_config(base)
        return word in load_pipeline(config).targets
    except (ConfigError, OSError):
        return False


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"]},
    subcommand_metavar="[TARGETS]... | COMMAND [ARGS]...",
)
@click.option(
    "-C",
    "--directory",
    metavar="DIR",
    help="Run in workspace DIR (as make -C).",
    shell_complete=lambda ctx, param, incomplete: _complete_path(incomplete, "dir"),
)
@click.option(
    "-f",
    "--file",
    "file_",
    metavar="FILE",
    help="Use FILE instead of mlbuild.yaml.",
    shell_complete=lambda ctx, param, incomplete: _complete_path(incomplete, "file"),
)
@click.option("--debug", is_flag=True, help="Show a traceback on errors.")
@color_option(ColorMode.AUTO.value)
@click.version_option(__version__, prog_name="mlbuild")
@click.pass_context
def cli(
    ctx: click.Context, directory: str | None, file_: str | None, debug: bool, color: str
) -> None:
    """mlbuild: make for machine learning.

    \b
    mlbuild [OPTIONS] [TARGETS]...   build targets (default: `default:` or all)
    mlbuild status                   what is fresh, stale, restorable
    mlbuild explain TARGET           why a target would rebuild
    mlbuild reproduce TARGET         re-run its recorded build; are the outs the same?

    A first word that is not a command is a target: `mlbuild -j4 model:prod` is
    `mlbuild build -j4 model:prod`, and takes the build options below.

    Exit codes: 0 ok, 1 build failed (or -q: stale), 2 bad usage/config, 3 check or gate
    failed, 4 no target matched, 5 workspace locked, 6 verification failed, 70 internal
    error (a bug in mlbuild), 130 interrupted (143 SIGTERM, 129 SIGHUP).
    """
    invocation = ctx.ensure_object(Invocation)
    invocation.directory, invocation.file, invocation.debug = directory, file_, debug
    invocation.color = ColorMode(color)


def _route(argv: list[str]) -> list[str]:
    """Insert ``build`` where the first word is not a subcommand (``mlbuild model:prod``)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _GROUP_VALUE_OPTS:
            i += 2
            continue
        if arg in _GROUP_FLAGS or any(
            arg.startswith(o + "=") for o in _GROUP_VALUE_OPTS if o.startswith("--")
        ):
            if arg in ("--help", "-h", "--version"):
                return argv
            i += 1
            continue
        if arg.startswith(("-C", "-f")) and len(arg) > 2:
            i += 1
            continue
        break
    if i < len(argv) and (argv[i] in cli.commands or _near_command(argv[i])):
        return argv
    return [*argv[:i], "build", *argv[i:]]


def _near_command(word: str) -> bool:
    """A plain word close to a subcommand (``stauts``): `_Commands` decides whether it is a
    target or a typo. Words with ``:``, globs or dots are target patterns, never commands."""
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", word):
        return False
    from ..suggest import suggest

    return suggest(word, cli.commands) is not None


def _traceback_if(debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exc()


def main(argv: list[str] | None = None) -> NoReturn:
    """Console entry point: maps every outcome to the documented exit code."""
    # A short-lived process that builds large acyclic structures: the cyclic GC would scan
    # them over and over (16-20% of a 10,000-target no-op) for nothing to free.
    pygc.set_threshold(100_000, 50, 50)
    invocation = Invocation()
    try:
        args = _route(list(sys.argv[1:] if argv is None else argv))
        if os.environ.get(COMPLETE_VAR):  # a shell asks: click answers (cli.main exits)
            from . import shells  # noqa: F401 (registers bash that knows `model:prod`)
        with interrupts.stop_on_signals():  # SIGTERM/SIGHUP stop the build as Ctrl-C does
            cli.main(args=args, prog_name="mlbuild", standalone_mode=False, obj=invocation)
    except MlbuildError as exc:
        _traceback_if(invocation.debug)
        click.echo(f"mlbuild: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:  # click's wrapper of a KeyboardInterrupt
        click.echo(f"mlbuild: {interrupts.message(exc)}", err=True)
        sys.exit(interrupts.exit_code(exc))
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.USAGE)
    except (OSError, RecursionError) as exc:
        # The environment's faults (disk full, read-only, unreadable): one line, no trace.
        _traceback_if(invocation.debug)
        fault = environment_fault(exc)
        click.echo(f"mlbuild: error: {fault}", err=True)
        sys.exit(fault.exit_code)
    except KeyboardInterrupt as exc:  # Ctrl-C 130; SIGTERM 143, SIGHUP 129 (interrupts.py)
        click.echo(f"mlbuild: {interrupts.message(exc)}", err=True)
        sys.exit(interrupts.exit_code(exc))
    except SystemExit:
        raise
    except BaseException:
        import traceback

        traceback.print_exc()
        click.echo(
            "mlbuild: internal error: this is a bug in mlbuild; please report it with the "
            "traceback above",
            err=True,
        )
        sys.exit(ExitCode.BUG)
    sys.exit(ExitCode.OK)
