"""Building and asking what a build would do: `build` (with ``-n`` and ``-q``), `status`,
`explain` (alias `why`)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ..errors import ExitCode
from ..kinds import ExecutorType
from .completion import complete_targets
from .context import (
    ColorMode,
    Invocation,
    color_option,
    echo_lines,
    emit_json,
    executor_options,
    parse_jobs,
    pass_invocation,
)
from .main import cli

if TYPE_CHECKING:
    from ..options import BuildOptions
    from ..results import BuildResult
    from ..workspace import Workspace


@cli.command()
@click.argument("targets", nargs=-1, shell_complete=complete_targets)
@click.option("-j", "--jobs", default=None, metavar="N", help="Parallel jobs (auto = CPU count).")
@click.option(
    "-n", "--dry-run", is_flag=True, help="Print what would run or be restored; change nothing."
)
@click.option(
    "-k", "--keep-going", is_flag=True, help="Go on with what does not depend on a failure."
)
@click.option("-B", "--force", is_flag=True, help="Rebuild the named targets even if fresh.")
@click.option(
    "--force-all", is_flag=True, help="Rebuild the named targets and their whole upstream."
)
@click.option("--no-cache", is_flag=True, help="Do not store outs in the cache.")
@click.option("--no-restore", is_flag=True, help="Do not restore from the cache; run instead.")
@click.option("-q", "--question", is_flag=True, help="Run nothing; exit 0 if fresh, 1 if stale.")
@click.option("-s", "--silent", "--quiet", "silent", is_flag=True, help="Print only failures.")
@click.option("-v", "--verbose", is_flag=True, help="Stream command output live.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines events on stdout.")
@click.option("--resources", default="", metavar="NAME=N,...", help="Capacity of resource pools.")
@click.option(
    "--wait/--no-wait", default=True, help="Wait for, or fail (exit 5) on, a held workspace lock."
)
@click.option("--remote", metavar="URL", help="Remote cache (fsspec URL) instead of remote:.")
@click.option("--pull", is_flag=True, help="Restore stale targets from the remote first.")
@click.option("--push", is_flag=True, help="Upload successful builds to the remote.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a param for this build only (repeatable; params.yaml is not edited).",
)
@executor_options("jobs run")
@color_option(None)
@pass_invocation
def build(
    invocation: Invocation,
    targets: tuple[str, ...],
    jobs: str | None,
    dry_run: bool,
    keep_going: bool,
    force: bool,
    force_all: bool,
    no_cache: bool,
    no_restore: bool,
    question: bool,
    silent: bool,
    verbose: bool,
    as_json: bool,
    resources: str,
    wait: bool,
    remote: str | None,
    pull: bool,
    push: bool,
    sets: tuple[str, ...],
    executor: str | None,
    dask_address: str | None,
    dask_mode: str | None,
    color: str | None,
) -> None:
    """Build TARGETS (names, globs like 'model:*', or kind prefixes like data:)."""
    from ..options import BuildOptions, parse_resources

    options = BuildOptions(
        jobs=parse_jobs(jobs),
        dry_run=dry_run,
        keep_going=keep_going,
        force=force,
        force_all=force_all,
        store=not no_cache,
        restore=not no_restore,
        verbose=verbose,
        wait=wait,
        resources=parse_resources(resources),
        remote=remote,
        pull=pull,
        push=push,
        executor=ExecutorType.DASK.value if dask_address and executor is None else executor,
        dask_address=dask_address,
        dask_mode=dask_mode,
    )
    if question or dry_run or sets:
        from ..config.params import parse_overrides

        ws = invocation.workspace(parse_overrides(sets))
        if sets:
            _note_unread(ws)
        if question or dry_run:
            _plan(ws, targets, options, question=question, as_json=as_json)
            return
    else:
        ws = None
    from ..render.reporters import reporter

    if color is not None:
        invocation.color = ColorMode(color)
    events = reporter(
        as_json=as_json,
        live=sys.stdout.isatty() and not verbose,
        silent=silent,
        color=invocation.use_color(sys.stdout),
    )
    if ws is None:
        # A no-op is answered from its stamp before the pipeline's modules are imported.
        fast = invocation.noop_answer(targets, options, events)
        if fast is not None:
            _finish(fast, as_json=as_json, silent=silent)
            return
        ws = invocation.workspace()
    result = ws.build(targets, options=options, events=events, answer_from_stamp=False)
    _finish(result, as_json=as_json, silent=silent)


def _note_unread(ws: Workspace) -> None:
    """Say which ``--set`` values no target reads: they change nothing, and a user who meant
    them (a script reading an undeclared key) should hear it rather than see "fresh"."""
    from ..config.params import overrides_read

    read = {k for s in ws.pipeline.targets.values() for k in overrides_read(s.params, ws.overrides)}
    for key in ws.overrides:
        if key not in read:
            click.echo(
                f"mlbuild: note: --set {key}: no target reads it, so it changes nothing",
                err=True,
            )


def _finish(result: BuildResult, *, as_json: bool, silent: bool) -> None:
    """After the reporter's summary: what was pushed, and the exit code of a build that
    did not succeed (with one line naming the failed targets, unless --json)."""
    from ..plural import counted
    from ..results import Outcome

    if result.pushed and not (as_json or silent):
        click.echo(f"mlbuild: pushed {result.pushed}", err=True)
    if result.interrupted:
        sys.exit(ExitCode.INTERRUPTED)
    if not result.ok:
        failed = [t.target for t in result.targets if t.outcome is Outcome.FAILED]
        if not as_json:
            rejected = result.exit_code is ExitCode.CHECK_FAILED
            what = "rejected by a check or gate" if rejected else "failed"
            click.echo(
                f"mlbuild: error: {counted(len(failed), 'target')} {what}: {', '.join(failed)}",
                err=True,
            )
        sys.exit(result.exit_code)


def _plan(
    ws: Workspace,
    targets: tuple[str, ...],
    options: BuildOptions,
    *,
    question: bool,
    as_json: bool,
) -> None:
    """``-n`` prints what would happen, with the commands that would run; ``-q`` prints
    nothing and exits 1 if anything is stale (both with ``--json``: the decisions and the
    commands). Secrets are read from this process's environment, as a build would, only
    to mask their values in the commands shown."""
    import os

    from ..render.explain import plan_json, plan_lines
    from ..results import Action

    decisions = ws.plan(targets, options)
    specs, root = ws.pipeline.targets, ws.pipeline.root
    if as_json:
        emit_json(plan_json(decisions, specs, root=root, environ=os.environ))
    elif not question:
        echo_lines(plan_lines(decisions, specs, root=root, environ=os.environ))
    if question and any(d.action is not Action.FRESH for d in decisions):
        sys.exit(ExitCode.BUILD_FAILED)


@cli.command()
@click.argument("targets", nargs=-1, shell_complete=complete_targets)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@pass_invocation
def status(invocation: Invocation, targets: tuple[str, ...], as_json: bool) -> None:
    """Each target: fresh / stale / restorable / never-built, with every reason, and the
    last failed attempt of one that would run with the key that failed.

    Exits 0 whatever the statuses (test freshness with `mlbuild -q`), 2 on a bad config,
    4 when a pattern matches no target."""
    from ..render.explain import status_json, status_lines

    entries = invocation.workspace().status(targets)
    if as_json:
        emit_json(status_json(entries))
    else:
        echo_lines(status_lines(entries))


@cli.command()
@click.argument("target", shell_complete=complete_targets)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@pass_invocation
def explain(invocation: Invocation, target: str, as_json: bool) -> None:
    """Every reason TARGET is stale, as a cause tree (`explain` and `why` are the same).

    Exits 0 whether TARGET is fresh or stale (test freshness with `mlbuild -q TARGET`),
    2 on a bad config, 4 when the pattern matches no target."""
    from ..render.explain import explanation_json, explanation_lines

    tree = invocation.workspace().explain(target)
    if as_json:
        emit_json(explanation_json(tree))
    else:
        echo_lines(explanation_lines(tree))


cli.add_command(explain, name="why")
