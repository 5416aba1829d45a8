"""`mlbuild plots show|diff`: the ``plots:`` files of targets as one self-contained HTML page
(data: mlbuild/plots/; drawing: render/plots.py and render/svg.py), or as JSON.

As ``dvc plots``: ``show`` draws the workspace's files; ``diff`` overlays other builds or
git revisions (none given: HEAD and the workspace; one: it and the workspace).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import click

from ..errors import UsageError
from ..plural import counted
from .completion import complete_targets, targets_option
from .context import Invocation, emit_json, pass_invocation, write_output
from .main import cli

if TYPE_CHECKING:
    from ..plots import Source
    from ..workspace import Workspace

_HEX = frozenset("0123456789abcdef")
WORKSPACE = "workspace"  # DVC's word for the files as they are now


def _output_option(command: Any) -> Any:
    return click.option(
        "-o",
        "--output",
        default="plots.html",
        show_default=True,
        metavar="FILE",
        help="Where to write the page ('-' for stdout).",
    )(command)


_json_option = click.option(
    "--json", "as_json", is_flag=True, help="The plots' specs and data as JSON instead."
)


@cli.group()
def plots() -> None:
    """Plots of targets (`plots:` files): a self-contained HTML page, or a comparison."""


def _names(ws: Workspace, patterns: tuple[str, ...]) -> list[str]:
    """The chosen targets that declare plots (every such target by default)."""
    chosen = ws.graph.select(patterns) if patterns else list(ws.graph.order)
    names = [n for n in chosen if ws.pipeline.targets[n].plots]
    if not names:
        which = "none of " + ", ".join(chosen) if patterns else "no target"
        raise UsageError(
            f"{which} declares plots",
            hint="add `plots: [FILE]` to a target that writes CSV, TSV, JSON or YAML "
            "(docs/plots.md)",
        )
    return names


def _write(
    plots_data: list[dict[str, Any]], output: str, as_json: bool, title: str, where: str
) -> None:
    """Warn about every source left out; refuse when nothing at all can be drawn."""
    for plot in plots_data:
        for skipped in plot["skipped"]:
            click.echo(f"mlbuild: warning: {plot['target']}: {skipped['why']}", err=True)
    drawn = [p for p in plots_data if p["revs"]]
    if not drawn:
        targets = list(dict.fromkeys(p["target"] for p in plots_data))
        raise UsageError(
            f"nothing to draw: none of the {counted(len(plots_data), 'plot file')} "
            f"exists {where}",
            hint=f"build them first: `mlbuild {' '.join(targets)}`",
        )
    if as_json:
        emit_json({"plots": plots_data})
        return
    from ..render.plots import plots_page

    write_output(plots_page(plots_data, title), None if output == "-" else output)
    if output != "-":
        click.echo(f"wrote {output} ({counted(len(drawn), 'plot')})", err=True)


@plots.command(name="show")
@click.argument("targets", nargs=-1, shell_complete=complete_targets)
@_output_option
@_json_option
@pass_invocation
def plots_show(
    invocation: Invocation, targets: tuple[str, ...], output: str, as_json: bool
) -> None:
    """Draw the plots of TARGETS from the workspace files.

    One self-contained HTML page (every target with plots by default); a plot whose file
    is missing is named and left out."""
    from ..plots import WorkspaceFiles, collect

    ws = invocation.workspace()
    data = collect(ws.pipeline, _names(ws, targets), [WorkspaceFiles(ws.root)])
    _write(data, output, as_json, f"mlbuild plots: {_title(ws)}", "in the workspace")


def _source(ws: Workspace, ref: str) -> Source:
    """``workspace``, a manifest id (``sha256:…`` or 6+ hex digits that name one), or else
    a git revision."""
    from ..plots import Build, Revision, WorkspaceFiles

    if ref == WORKSPACE:
        return WorkspaceFiles(ws.root)
    hexd = ref.removeprefix("sha256:")
    if ref.startswith("sha256:") or (len(hexd) >= 6 and set(hexd) <= _HEX):
        try:
            mid, doc = ws.resolve_manifest(ref)
        except UsageError:
            if ref.startswith("sha256:"):
                raise
        else:
            return Build(ws.cache, mid, doc)
    return Revision(ws.root, ws.lock_path, ws.cache, ref)


@plots.command(name="diff")
@click.argument("revs", nargs=-1, metavar="[REV|ID]...")
@targets_option
@_output_option
@_json_option
@pass_invocation
def plots_diff(
    invocation: Invocation,
    revs: tuple[str, ...],
    patterns: tuple[str, ...],
    output: str,
    as_json: bool,
) -> None:
    """Overlay the plots of other builds or git revisions.

    Each REV is a manifest id (or a unique prefix of 6+ hex digits), a git revision, or
    `workspace`. None given: HEAD and the workspace; one: it and the workspace (as dvc
    plots diff). Only manifest ids: the plots of their targets (unless -t)."""
    from ..plots import collect

    ws = invocation.workspace()
    refs = list(revs) or ["HEAD"]
    if len(refs) == 1 and refs[0] != WORKSPACE:
        refs.append(WORKSPACE)
    sources = [_source(ws, ref) for ref in dict.fromkeys(refs)]
    if not patterns:  # only builds to compare with: their targets, not every one
        from ..plots import Build, WorkspaceFiles

        others = [s for s in sources if not isinstance(s, WorkspaceFiles)]
        builds = [s for s in others if isinstance(s, Build)]
        if builds and len(builds) == len(others):
            patterns = tuple(dict.fromkeys(str(b.manifest["target"]) for b in builds))
    names = _names(ws, patterns)
    data = collect(ws.pipeline, names, sources)
    shown = ", ".join(s.label for s in sources)
    _write(data, output, as_json, f"mlbuild plots diff: {shown}", f"in {shown}")


def _title(ws: Workspace) -> str:
    return os.path.basename(ws.root) or ws.root
