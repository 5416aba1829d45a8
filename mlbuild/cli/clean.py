"""`mlbuild clean`: remove the outs of targets that the cache can put back
(maintenance.py `clean`); a plain build then restores them without running anything.
`mlbuild unprotect`: private copies of outs hardlinked to the cache (protection.py)."""

from __future__ import annotations

import click

from ..plural import counted, noun
from .completion import complete_targets
from .context import Invocation, emit_json, pass_invocation
from .main import cli


@cli.command()
@click.argument("targets", nargs=-1, shell_complete=complete_targets)
@click.option("-n", "--dry-run", is_flag=True, help="List what would go; remove nothing.")
@click.option("--force", is_flag=True, help="Also remove outs the cache cannot restore.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document: removed, kept.")
@pass_invocation
def clean(
    invocation: Invocation, targets: tuple[str, ...], dry_run: bool, force: bool, as_json: bool
) -> None:
    """Remove the declared outs of TARGETS (every target by default, not default:) whose
    bytes are in the cache; keep and name the others unless --force."""
    from ..maintenance import Uncached

    report = invocation.workspace().clean(targets, force=force, dry_run=dry_run)
    if as_json:
        emit_json(report.to_json())
        return
    if not report.outs:
        click.echo("nothing to clean: none of the declared outs of those targets exists")
        return
    verb = "would remove" if dry_run else "removed"
    for out in report.outs:
        word = verb if out.removed else "kept"
        why = "" if out.why is None else out.why.describe(out.target)
        if out.why is not None and out.removed:
            why = f"forced: {why}"
        elif out.why is Uncached.OUTSIDE:
            why += "; never removed"
        click.echo(f"{word:<{len(verb)}}  {out.path}" + (f"  ({why})" if why else ""))
    removed, kept = report.removed, report.kept
    targets_hit = len({out.target for out in removed})
    summary = f"{verb} {counted(len(removed), 'out')} of {counted(targets_hit, 'target')}"
    if kept:
        summary += f"; kept {counted(len(kept), 'out')} the cache cannot restore"
    if any(out.why is not Uncached.OUTSIDE for out in kept):
        summary += f" (--force removes {noun(len(kept), 'it', 'them')} too)"
    click.echo(summary)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@pass_invocation
def unprotect(invocation: Invocation, paths: tuple[str, ...]) -> None:
    """Make the outs at PATHS (files or directories) editable: each file hardlinked to the
    cache (cache.link: hardlink) becomes a private, writable copy of the same bytes."""
    for done in invocation.workspace().unprotect(paths):
        if done.files:
            shared = counted(len(done.files), "file")
            click.echo(f"unprotected {done.path}: {shared} made private and writable")
        else:
            click.echo(f"{done.path}: nothing shares its bytes with the cache")
