"""`mlbuild completion bash|zsh|fish`, and the target names the printed script completes.

The scripts are click's own (shells.py): on TAB the shell runs ``mlbuild`` again with
``_MLBUILD_COMPLETE=<shell>_complete`` and the words typed so far, and click answers from
the command tree: subcommands, options, and, for every TARGETS argument,
`complete_targets`. A first word that is not a command is a build (main.py `_route`), so the
first word completes to subcommands *and* target names (`_Commands.shell_complete`).

Target names are the concrete ones (after matrix expansion) of the workspace that ``-C`` /
``-f`` on the line point at, else the one found from the current directory. They are read
without a full load: the YAML through its parse cache (.mlbuild/cache/yaml), then the matrix
expansion only, not the passes over outs, deps and globs (5 to 7 times faster than
`load_pipeline` on 2,000 targets). A config that does not load completes nothing: a
completion never prints an error or a traceback into the user's command line.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from .main import COMPLETE_VAR, cli

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

__all__ = ["complete_targets", "target_items", "targets_option"]


def target_items(
    ctx: click.Context, incomplete: str, exclude: frozenset[str] = frozenset()
) -> list[CompletionItem[str]]:
    """The target names that start with ``incomplete``, sorted, each with its ``desc:``
    (zsh and fish show it); none when there is no workspace or its config does not load."""
    from click.shell_completion import CompletionItem

    root = ctx.find_root().params
    try:
        declared = _declared(root.get("directory"), root.get("file_"))
    except Exception:  # any failure, a bug included: complete nothing, print nothing
        return []
    return [
        CompletionItem(name, help=desc)
        for name, desc in sorted(declared.items())
        if name.startswith(incomplete) and name not in exclude
    ]


def complete_targets(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem[str]]:
    """``shell_complete`` of every TARGETS argument (and ``-t``): the target names, minus
    those already on the line."""
    given = ctx.params.get(param.name) if param.name else None
    exclude = frozenset(given) if isinstance(given, (tuple, list)) else frozenset()
    return target_items(ctx, incomplete, exclude)


def _declared(directory: str | None, file_: str | None) -> dict[str, str]:
    """Concrete target name -> its ``desc:`` on one line ("target" when it has none)."""
    from ..config import find_config
    from ..config.loader import Loader

    base = directory or "."
    loader = Loader(os.path.join(base, file_) if file_ else find_config(base))
    top = loader.doc.value
    if not isinstance(top, dict) or not isinstance(top.get("targets"), dict):
        return {}
    loader.params.load(loader.reader, loader.root, top)  # a matrix may read a params list
    names: dict[str, str] = {}
    for e in loader.matrix.expand(top["targets"]):
        desc = e.body.get("desc")
        names[e.name] = " ".join(desc.split()) if isinstance(desc, str) and desc else "target"
    return names


@cli.command()
@click.argument("shell", metavar="SHELL", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for SHELL (subcommands, options, target names).

    \b
    bash:  eval "$(mlbuild completion bash)"     in ~/.bashrc (bash >= 4.4)
    zsh:   eval "$(mlbuild completion zsh)"      in ~/.zshrc, after compinit
    fish:  mlbuild completion fish > ~/.config/fish/completions/mlbuild.fish
    """
    from .shells import SHELLS

    prog_name = ctx.find_root().info_name or "mlbuild"
    click.echo(SHELLS[shell](cli, {}, prog_name, COMPLETE_VAR).source(), nl=False)


def targets_option(command: Any) -> Any:
    """``-t/--targets T`` (repeatable, completed to target names): the commands that take a
    revision as their argument (`metrics diff`, `plots diff`) name targets with it."""
    return click.option(
        "-t",
        "--targets",
        "patterns",
        multiple=True,
        help="Only these targets (repeat).",
        shell_complete=complete_targets,
    )(command)
