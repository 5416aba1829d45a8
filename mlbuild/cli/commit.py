"""`mlbuild commit`: accept the outs in the workspace as the build of the current key,
running nothing (``dvc commit``, ``make -t``); the logic is rebuild/accept.py."""

from __future__ import annotations

import click

from ..plural import counted
from .completion import complete_targets
from .context import Invocation, emit_json, pass_invocation
from .main import cli


@cli.command()
@click.argument("targets", nargs=-1, required=True, shell_complete=complete_targets)
@click.option("-n", "--dry-run", is_flag=True, help="List what would be committed; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document: a row per target.")
@pass_invocation
def commit(invocation: Invocation, targets: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Record the current outs of TARGETS as their build, running nothing (after a
    comment-only edit, or outs made by hand). Their checks and gates still judge them;
    the manifest says status commit; `audit --require-built` refuses it. Exit 1 if an
    out is missing or an upstream is stale (commit it too, or build it)."""
    from ..rebuild.accept import AcceptOutcome

    results = invocation.workspace().commit(targets, dry_run=dry_run)
    if as_json:
        emit_json({"dry_run": dry_run, "targets": [r.to_json() for r in results]})
        return
    width = max(len(r.outcome.value) for r in results)
    for r in results:
        line = f"{r.outcome.value:<{width}}  {r.target}"
        if r.manifest is not None:
            line += f"  ({r.manifest[:19]})"
        if r.reasons:
            line += f"  accepting: {'; '.join(r.reasons)}"
        click.echo(line)
        for warning in r.warnings:
            click.echo(f"warning: {warning}", err=True)
    done = [r for r in results if r.outcome is not AcceptOutcome.CURRENT]
    verb = "would commit" if dry_run else "committed"
    click.echo(f"{verb} {counted(len(done), 'target')}; nothing ran")
