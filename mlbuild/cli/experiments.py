"""Experiments: `metrics show|diff`, `params diff` and the HTML `report` (queries in
experiments.py and `Workspace.report_data`; tables in render/tables.py)."""

from __future__ import annotations

import json

import click

from ..errors import UsageError
from .context import Invocation, echo_lines, emit_json, pass_invocation, write_output
from .main import cli

_md_option = click.option(
    "--md", "as_md", is_flag=True, help="A GitHub Markdown table, for a pull-request comment."
)


def _one_format(as_json: bool, as_md: bool) -> None:
    """``--md`` and ``--json`` are two answers to one question: refused together, before
    anything is loaded."""
    if as_json and as_md:
        raise UsageError(
            "--md and --json cannot be used together",
            hint="--md for a pull-request comment, --json for a script: pick one",
        )


@cli.group()
def metrics() -> None:
    """Metrics of targets: a table, or what changed."""


@metrics.command(name="show")
@click.argument("targets", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@_md_option
@pass_invocation
def metrics_show(
    invocation: Invocation, targets: tuple[str, ...], as_json: bool, as_md: bool
) -> None:
    """TARGETS × metrics of their current builds (all targets with metrics by default)."""
    from ..render.tables import metrics_lines, metrics_markdown
    from ..results import TargetStatus

    _one_format(as_json, as_md)
    ws = invocation.workspace()
    table = ws.metrics(targets)
    # Metrics of a target that is not fresh describe a build its inputs have moved on from
    # (after a rollback upstream, say): said, never shown as if current.
    stale = sorted(
        e.target
        for e in ws.status(list(table))
        if e.target in table and e.status is not TargetStatus.FRESH
    )
    if as_json:
        emit_json({"metrics": table, "stale": stale})
    else:
        echo_lines((metrics_markdown if as_md else metrics_lines)(table, stale))


@metrics.command(name="diff")
@click.argument("rev", required=False)
@click.option("-t", "--targets", "patterns", multiple=True, help="Only these targets (repeat).")
@click.option("--all", "all_", is_flag=True, help="Show unchanged metrics too.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@_md_option
@pass_invocation
def metrics_diff(
    invocation: Invocation,
    rev: str | None,
    patterns: tuple[str, ...],
    all_: bool,
    as_json: bool,
    as_md: bool,
) -> None:
    """Metrics now vs each target's previous build, or vs the lock file at git REV."""
    from ..render.tables import metrics_diff_lines, metrics_diff_markdown

    _one_format(as_json, as_md)
    changes = invocation.workspace().metrics_diff(rev, patterns, all_=all_)
    base = rev or "previous build"
    if as_json:
        emit_json({"against": base, "changes": [c.to_json() for c in changes]})
    else:
        echo_lines((metrics_diff_markdown if as_md else metrics_diff_lines)(changes, base))


@cli.group()
def params() -> None:
    """Parameters: what changed since the last build."""


@params.command(name="diff")
@click.argument("rev", required=False)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@_md_option
@pass_invocation
def params_diff(invocation: Invocation, rev: str | None, as_json: bool, as_md: bool) -> None:
    """Params whose values differ from the last build (or the lock file at git REV), and
    the targets each change makes stale."""
    from ..render.tables import params_diff_lines, params_diff_markdown

    _one_format(as_json, as_md)
    changes = invocation.workspace().params_diff(rev)
    base = rev or "last build"
    if as_json:
        emit_json({"against": base, "changes": [c.to_json() for c in changes]})
    else:
        echo_lines((params_diff_markdown if as_md else params_diff_lines)(changes, base))


@cli.command()
@click.option(
    "-o",
    "--output",
    default="report.html",
    show_default=True,
    metavar="FILE",
    help="Where to write the page ('-' for stdout).",
)
@click.option("--json", "as_json", is_flag=True, help="The report's data as JSON instead.")
@pass_invocation
def report(invocation: Invocation, output: str, as_json: bool) -> None:
    """One self-contained HTML page: the DAG, status, metrics, sweeps, checks and drift."""
    data = invocation.workspace().report_data()
    if as_json:
        text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    else:
        from ..render.html import render_html

        text = render_html(data)
    write_output(text, None if output == "-" else output)
    if output != "-":
        click.echo(f"wrote {output}", err=True)
