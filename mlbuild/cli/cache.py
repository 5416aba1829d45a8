"""The caches: `push` and `pull` (transfer.py), `cache verify` and `gc` (maintenance.py),
on the local cache or, with ``--remote``, the remote one."""

from __future__ import annotations

import sys

import click

from ..errors import ExitCode, VerificationError
from ..plural import counted, noun
from .completion import complete_targets
from .context import Invocation, parse_jobs, pass_invocation
from .main import cli


@cli.command()
@click.argument("targets", nargs=-1, shell_complete=complete_targets)
@click.option("--remote", metavar="URL", help="Remote cache (fsspec URL) instead of remote:.")
@click.option("-j", "--jobs", default=None, metavar="N", help="Parallel transfers (x2).")
@pass_invocation
def push(
    invocation: Invocation, targets: tuple[str, ...], remote: str | None, jobs: str | None
) -> None:
    """Upload the current builds of TARGETS (all by default): objects, manifests, then
    run-cache entries. What the remote already has is not sent again."""
    from ..options import BuildOptions
    from ..render.reporters import TransferProgress

    with TransferProgress("pushing builds", color=invocation.use_color(sys.stderr)) as bar:
        stats = invocation.workspace().push(
            targets, BuildOptions(jobs=parse_jobs(jobs), remote=remote), progress=bar.update
        )
    click.echo(f"pushed {stats.describe()}")


@cli.command()
@click.argument("targets", nargs=-1, shell_complete=complete_targets)
@click.option("--remote", metavar="URL", help="Remote cache (fsspec URL) instead of remote:.")
@click.option("-j", "--jobs", default=None, metavar="N", help="Parallel transfers.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines events on stdout.")
@pass_invocation
def pull(
    invocation: Invocation,
    targets: tuple[str, ...],
    remote: str | None,
    jobs: str | None,
    as_json: bool,
) -> None:
    """Restore TARGETS (and their upstream) from the remote by build key, verifying every
    object; runs no command. Exit 1 if some target is in neither cache."""
    from ..options import BuildOptions
    from ..render.reporters import reporter
    from ..results import Outcome

    # On a terminal, a live bar over the targets being restored.
    events = reporter(
        as_json=as_json, live=sys.stdout.isatty(), color=invocation.use_color(sys.stdout)
    )
    result = invocation.workspace().pull(
        targets, BuildOptions(jobs=parse_jobs(jobs), remote=remote), events=events
    )
    if result.interrupted:
        sys.exit(ExitCode.INTERRUPTED)
    missing = [t.target for t in result.targets if t.outcome is Outcome.SKIPPED]
    if missing:
        if not as_json:
            click.echo(
                f"mlbuild: error: {counted(len(missing), 'target')} not available from the caches: "
                f"{', '.join(missing)}",
                err=True,
            )
        sys.exit(ExitCode.BUILD_FAILED)


@cli.group()
def cache() -> None:
    """The local cache (or, with --remote, the remote one)."""


_REMOTE_OPTION = click.option(
    "--remote",
    "remote",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[URL]",
    help="The remote cache instead (mlbuild.yaml's remote:, or URL).",
)


@cache.command(name="verify")
@_REMOTE_OPTION
@click.option("--repair", is_flag=True, help="Drop corrupt objects and the entries naming them.")
@pass_invocation
def cache_verify(invocation: Invocation, remote: str | None, repair: bool) -> None:
    """Re-hash every cache object and check that every run-cache entry's objects exist;
    exit 6 on a problem (0 after --repair)."""
    from ..options import BuildOptions

    report = invocation.workspace().verify_cache(
        remote=remote is not None, repair=repair, options=BuildOptions(remote=remote or None)
    )
    for rel, got in report.corrupt:
        click.echo(f"corrupt  {rel}  (its bytes hash to {got})")
    for entry, digest in report.missing:
        click.echo(f"missing  {entry} names {digest}, which is not there")
    click.echo(
        f"checked {counted(report.checked, 'object')}: {len(report.corrupt)} corrupt, "
        f"{len(report.missing)} missing"
    )
    if repair and not report.ok:
        click.echo(
            f"dropped {counted(report.dropped_objects, 'object')} and "
            f"{counted(report.dropped_runs, 'run-cache entry', 'run-cache entries')} naming "
            "them: those builds are no longer restorable from this cache"
        )
    elif not report.ok:
        raise VerificationError(
            f"{len(report.corrupt)} corrupt and {len(report.missing)} missing cache "
            f"{noun(len(report.corrupt) + len(report.missing), 'object')}",
            hint="mlbuild cache verify --repair drops them and the entries naming them",
        )


@cli.command()
@click.option("--keep", default=3, show_default=True, help="Builds kept per target.")
@_REMOTE_OPTION
@click.option("-n", "--dry-run", is_flag=True, help="Say what would go; delete nothing.")
@pass_invocation
def gc(invocation: Invocation, keep: int, remote: str | None, dry_run: bool) -> None:
    """Delete cache objects not needed by the lock file or each target's last N builds."""
    from ..options import BuildOptions

    report = invocation.workspace().gc(
        keep=keep,
        remote=remote is not None,
        dry_run=dry_run,
        options=BuildOptions(remote=remote or None),
    )
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {counted(report.removed_objects, 'object')} "
        f"({report.removed_bytes / 2**20:.1f} MiB) and "
        f"{counted(report.removed_runs, 'run-cache entry', 'run-cache entries')}; kept "
        f"{counted(report.kept_objects, 'object')} and "
        f"{counted(report.kept_runs, 'entry', 'entries')}"
        + (
            f"; {verb} {counted(report.removed_temporaries, 'leftover temporary file')}"
            if report.removed_temporaries
            else ""
        )
    )
