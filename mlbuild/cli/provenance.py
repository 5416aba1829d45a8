"""Provenance: `audit`, `reproduce`, `lineage`, `manifest show|export`, `history`,
`rollback`, `card` and `diff` (the records are provenance/records.py's;
provenance/audit.py judges them)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..errors import ExitCode, VerificationError
from .completion import complete_targets
from .context import (
    Invocation,
    echo_lines,
    emit_json,
    executor_options,
    pass_invocation,
    write_output,
)
from .main import cli


@cli.command()
@click.argument("targets", nargs=-1, shell_complete=complete_targets)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "md"]), default="table", help="Output."
)
@click.option("--allow-dirty", is_flag=True, help="Accept builds from a dirty git tree.")
@click.option("--require-signatures", is_flag=True, help="An unsigned manifest is a violation.")
@click.option(
    "--require-built", is_flag=True, help="A build `mlbuild commit` recorded is a violation."
)
@click.option(
    "--trusted-key", "trusted", multiple=True, metavar="FILE", help="A public key to accept."
)
@pass_invocation
def audit(
    invocation: Invocation,
    targets: tuple[str, ...],
    fmt: str,
    allow_dirty: bool,
    require_signatures: bool,
    require_built: bool,
    trusted: tuple[str, ...],
) -> None:
    """Verify TARGETS and their whole upstream against their manifests; exit 6 on a violation.
    Builds recorded by `mlbuild commit` are listed; with --require-built they violate."""
    from ..render.tables import audit_lines

    report = invocation.workspace().audit(
        targets,
        allow_dirty=allow_dirty,
        require_signatures=require_signatures,
        trusted_keys=trusted,
    )
    if require_built:
        report.require_built()
    if fmt == "json":
        emit_json(report.to_json())
    else:
        if not require_built:  # with it, they are among the findings
            for c in report.committed:
                click.echo(f"{c.target}  committed  {c.subject}  {c.describe()}")
        echo_lines(audit_lines(report, fmt))
    if not report.ok:
        sys.exit(ExitCode.VERIFICATION)


@cli.command()
@click.argument("target", shell_complete=complete_targets)
@click.option("--manifest", "ref", metavar="ID", help="Re-run this earlier build (id or prefix).")
@click.option(
    "--tolerance",
    "tolerances",
    multiple=True,
    metavar="METRIC=DELTA",
    help="A metric may move by at most DELTA (repeatable).",
)
@executor_options("the job runs")
@click.option("-v", "--verbose", is_flag=True, help="Stream command output live.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@pass_invocation
def reproduce(
    invocation: Invocation,
    target: str,
    ref: str | None,
    tolerances: tuple[str, ...],
    executor: str | None,
    dask_address: str | None,
    dask_mode: str | None,
    verbose: bool,
    as_json: bool,
) -> None:
    """Re-run TARGET's recorded build in a scratch copy of its inputs and compare every out:
    exit 0 if reproducible, 6 if an out differs, 1 if the re-run failed."""
    from ..kinds import ExecutorType
    from ..options import BuildOptions
    from ..provenance.reproduce import parse_tolerances
    from ..provenance.reproduce import reproduce as run_reproduction

    options = BuildOptions(
        verbose=verbose,
        executor=ExecutorType.DASK.value if dask_address and executor is None else executor,
        dask_address=dask_address,
        dask_mode=dask_mode,
    )
    result = run_reproduction(
        invocation.workspace(),
        target,
        manifest=ref,
        tolerances=parse_tolerances(tolerances),
        options=options,
        on_output=lambda t, line: click.echo(f"[{t}] {line}", err=as_json),
        warn=lambda text: click.echo(f"mlbuild: warning: {text}", err=True),
    )
    if as_json:
        emit_json(result.to_json())
    else:
        echo_lines(result.lines())
    if result.exit_code:
        sys.exit(result.exit_code)


@cli.command()
@click.argument("target", shell_complete=complete_targets)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@pass_invocation
def lineage(invocation: Invocation, target: str, as_json: bool) -> None:
    """The upstream tree of TARGET as recorded: digests, manifest ids, who and when."""
    from ..render import lineage as draw

    tree = invocation.workspace().lineage(target)
    if as_json:
        emit_json(tree)
    elif sys.stdout.isatty():
        draw.print_tree(tree)
    else:
        echo_lines(draw.lines(tree))


@cli.command()
@click.argument("target", shell_complete=complete_targets)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@pass_invocation
def history(invocation: Invocation, target: str, as_json: bool) -> None:
    """Past builds and restores of TARGET, newest first."""
    from ..provenance.records import ManifestError
    from ..render.manifest import history_line

    ws = invocation.workspace()
    rows = ws.history(target)
    store = ws.manifest_store
    for skipped in store.index_problems(ws.graph.select([target])[0]):
        click.echo(f"mlbuild: warning: {skipped.message}", err=True)
    if as_json:
        builds: list[dict[str, Any]] = []
        for mid, doc, problem in rows:
            build = {"id": mid, "manifest": doc, "missing": doc is None}
            if problem is not None and doc is None and problem != "manifest file missing":
                build["corrupt"] = problem
            builds.append(build)
        emit_json({"builds": builds})
        return
    for mid, doc, problem in rows:
        if doc is None:
            click.echo(f"{mid}  ({problem})")
            continue
        overrides = doc.get("overrides") or {}  # this build's own --set, not its source's
        try:
            doc = store.view(doc)  # a restore shows its build's params and metrics
        except ManifestError as exc:
            click.echo(f"{mid}  (the build it restores is unusable: {exc.subject}: {exc.found})")
            continue
        click.echo(history_line(mid, doc, overrides))


@cli.command()
@click.argument("target", shell_complete=complete_targets)
@click.option("--to", "to", metavar="ID", help="The manifest to roll back to (id or prefix).")
@pass_invocation
def rollback(invocation: Invocation, target: str, to: str | None) -> None:
    """Restore an earlier build of TARGET from the cache, running nothing."""
    done = invocation.workspace().rollback(target, to)
    if done.already_current:
        click.echo(f"{done.target} is already current at {done.to}: nothing to roll back")
        return
    click.echo(f"rolled {done.target} back to {done.to}; recorded as {done.manifest}")
    click.echo("the next build rebuilds it unless its inputs match that build again")
    if done.stale:
        click.echo(
            f"stale now, built from the outs it replaced: {', '.join(done.stale)} "
            "(see `mlbuild status`)"
        )


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@pass_invocation
def diff(invocation: Invocation, a: str, b: str, as_json: bool) -> None:
    """What differs between two builds (manifest ids or unique prefixes)."""
    from ..provenance.views import diff_manifests
    from ..render.manifest import diff_lines

    ws = invocation.workspace()
    id_a, doc_a = ws.resolve_manifest(a)
    id_b, doc_b = ws.resolve_manifest(b)
    changes = diff_manifests(doc_a, doc_b)
    if as_json:
        emit_json({"a": id_a, "b": id_b, "differences": changes})
    else:
        echo_lines(diff_lines((id_a, doc_a), (id_b, doc_b), changes))


@cli.command()
@click.argument("target", shell_complete=complete_targets)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
@pass_invocation
def card(invocation: Invocation, target: str, output: str | None) -> None:
    """A Markdown model card for TARGET, generated from its provenance."""
    write_output(invocation.workspace().card(target), output)


@cli.group()
def manifest() -> None:
    """Provenance records: one per build or restore of a target."""


@manifest.command(name="show")
@click.argument("target", shell_complete=complete_targets)
@click.option("--json", "as_json", is_flag=True, help="The manifest itself, with its id.")
@pass_invocation
def manifest_show(invocation: Invocation, target: str, as_json: bool) -> None:
    """TARGET's current manifest: how its outs were made, from what, by whom."""
    from ..render.manifest import manifest_lines

    ws = invocation.workspace()
    mid, doc = ws.manifest(target)
    if as_json:
        emit_json({"id": mid, "manifest": doc})
        return
    # A restore is shown with the facts of the build it restores: only its who, when and
    # where are its own (the record itself is --json).
    echo_lines(manifest_lines(mid, ws.manifest_store.view(doc)))


@manifest.command(name="export")
@click.argument("target", shell_complete=complete_targets)
@click.option(
    "--format", "fmt", type=click.Choice(["in-toto", "json"]), default="in-toto", help="Format."
)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
@pass_invocation
def manifest_export(invocation: Invocation, target: str, fmt: str, output: str | None) -> None:
    """Export TARGET's provenance: an in-toto Statement v1 (SLSA Provenance v1), in a signed
    DSSE envelope when a signing key is configured; or the raw manifest (json)."""
    from ..provenance.export import dsse_envelope, in_toto_statement
    from ..provenance.records import ManifestError

    ws = invocation.workspace()
    try:
        mid, doc = ws.manifest(target)  # strict: an edited or corrupt manifest is refused
    except ManifestError as exc:
        if exc.check != "manifest-id":
            raise
        raise VerificationError(
            f"manifest {exc.expected} of {target} ({exc.subject}) was modified after it was "
            "written; refusing to export",
            hint="run `mlbuild audit` to see what changed",
        ) from None
    if fmt == "json":
        data: dict[str, Any] = {"id": mid, "manifest": doc}
    else:
        # A restore attests the facts of the build it restores (ManifestStore.view).
        data = in_toto_statement(mid, ws.manifest_store.view(doc))
        signer = ws.signing_key()
        if signer is not None:
            data = dsse_envelope(data, signer)
    write_output(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", output)
