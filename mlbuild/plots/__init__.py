"""Plots (`mlbuild plots show|diff`, and the plots of `mlbuild report`): the data a target's
``plots:`` files hold, read from the workspace, a recorded build or a git revision, as plain
data (JSON for ``--json``); mlbuild/render/plots.py and render/svg.py draw it.

Imported only by those commands: a build never loads it.

    data.py      a plot file's bytes → columns → one plot's series (or confusion counts)
    sources.py   the workspace, a manifest's outs (cache), a git revision; `collect`
"""

from __future__ import annotations

from .data import PlotDataError, plot_data, read_table
from .sources import Build, Revision, Source, WorkspaceFiles, collect, short_id

__all__ = [
    "Build",
    "PlotDataError",
    "Revision",
    "Source",
    "WorkspaceFiles",
    "collect",
    "plot_data",
    "read_table",
    "short_id",
]
