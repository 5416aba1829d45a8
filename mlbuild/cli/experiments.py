"""Experiments: `metrics show|diff`, `params diff`, `exp show` and the HTML `report`
(queries in experiments.py and `Workspace.report_data`; tables in render/tables.py, the
experiments table in render/exp.py)."""

from __future__ import annotations

import json
import sys

import click

from ..errors import UsageError
from .completion import complete_targets, targets_option
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
@click.argument("targets", nargs=-1, shell_complete=complete_targets)
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
        # a temp target whose outs went back to the cache is as current as a fresh one
        if e.target in table and e.status not in (TargetStatus.FRESH, TargetStatus.TEMP)
    )
    if as_json:
        emit_json({"metrics": table, "stale": stale})
    else:
        echo_lines((metrics_markdown if as_md else metrics_lines)(table, stale))


@metrics.command(name="diff")
@click.argument("rev", required=False)
@targets_option
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


@cli.group()
def exp() -> None:
    """Experiments: every recorded build with its params and metrics."""


@exp.command(name="show")
@click.argument("targets", nargs=-1, shell_complete=complete_targets)
@click.option("--all-params", is_flag=True, help="Every param column, not only those that vary.")
@click.option("--sort-by", metavar="NAME", help="Sort the rows by this metric (or param).")
@click.option(
    "--sort-order",
    type=click.Choice(["asc", "desc"]),
    help="With --sort-by: ascending (the default, as DVC) or descending.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with exact values.")
@_md_option
@pass_invocation
def exp_show(
    invocation: Invocation,
    targets: tuple[str, ...],
    all_params: bool,
    sort_by: str | None,
    sort_order: str | None,
    as_json: bool,
    as_csv: bool,
    as_md: bool,
) -> None:
    """One row per recorded build of TARGETS, newest first: when, id, status, metrics and
    the params its whole lineage read (default: the targets that declare metrics)."""
    from ..experiments import SortOrder
    from ..render import exp as draw

    chosen = [flag for flag, on in (("--json", as_json), ("--csv", as_csv), ("--md", as_md)) if on]
    if len(chosen) > 1:
        raise UsageError(
            f"{' and '.join(chosen)} cannot be used together", hint="pick one output format"
        )
    if sort_order is not None and sort_by is None:
        raise UsageError("--sort-order goes with --sort-by", hint="add --sort-by METRIC")
    ws = invocation.workspace()
    table = ws.experiments(
        targets,
        all_params=all_params,
        sort_by=sort_by,
        order=SortOrder(sort_order) if sort_order else None,
    )
    for problem in table.problems:
        click.echo(f"mlbuild: warning: {problem}", err=True)
    if as_json:
        emit_json(table.to_json())
    elif as_csv:
        click.echo(draw.exp_csv(table), nl=False)
    elif as_md:
        echo_lines(draw.exp_markdown(table))
    elif sys.stdout.isatty():
        draw.print_table(table, color=invocation.use_color(sys.stdout))
    else:
        echo_lines(draw.exp_lines(table))


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
