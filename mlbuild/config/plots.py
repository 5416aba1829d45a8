"""A target's ``plots:``, validated: data files it writes and how to draw them.

Each entry is a path (a ``line`` plot) or a mapping ``{path, kind, x, y, title}``, as DVC's
``plots:`` in dvc.yaml (DVC calls the kind ``template``). A plot file is an out of the target,
as a metrics file is: added to its outs when not listed there (before the metrics files), so
it is cached, restored, promoted and recorded in the manifest like any out. What is known at
load is checked here (keys, kind, format, place); a column the data lacks can only be found
when the file is read (mlbuild/plots/).
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..suggest import did_you_mean
from .access import Reader
from .interpolate import Scope, interpolate
from .paths import OutGuard, normalize_path
from .schema import PLOT_FORMATS, PLOT_KEYS, PLOT_KINDS
from .specs import PlotSpec

__all__ = ["load_plots"]

# What a dvc.yaml user may write, and what it is called here.
_DVC_WORDS = {"template": "kind", "x_label": "title", "y_label": "title"}


def load_plots(
    reader: Reader,
    root: str,
    guard: OutGuard,
    path: tuple[Any, ...],
    raw: Any,
    scope: Scope,
    outs: list[str],
) -> tuple[PlotSpec, ...]:
    """The ``plots:`` of the target at ``path``; each plot file not already in ``outs`` is
    appended to it."""
    if raw is None:
        return ()
    here = path + ("plots",)
    if not isinstance(raw, list):
        raise reader.fail(
            "plots must be a list of files or {path, kind, x, y, title} mappings",
            here,
            hint="plots: [plots/loss.csv, {path: plots/roc.csv, kind: roc}]",
        )
    plots: list[PlotSpec] = []
    for i, item in enumerate(raw):
        plot = _one(reader, root, guard, here + (i,), item, scope)
        if any(p.path == plot.path for p in plots):
            raise reader.fail(f"plot file {plot.path!r} is listed twice", here + (i,))
        plots.append(plot)
        if plot.path not in outs:
            outs.append(plot.path)
    return tuple(plots)


def _one(
    reader: Reader, root: str, guard: OutGuard, at: tuple[Any, ...], item: Any, scope: Scope
) -> PlotSpec:
    if isinstance(item, str):
        item = {"path": item}
        path_at = at
    else:
        path_at = at + ("path",)
    if not isinstance(item, dict):
        raise reader.fail(
            f"each plot must be a file or a {{path, kind, x, y, title}} mapping, "
            f"not {type(item).__name__}",
            at,
        )
    for key in item:
        if key not in PLOT_KEYS:
            dvc = _DVC_WORDS.get(str(key))
            hint = f"mlbuild calls it {dvc}:" if dvc else did_you_mean(str(key), PLOT_KEYS)
            raise ConfigError(
                f"unknown key {key!r} in a plot",
                pos=reader.doc.key_at(at + (key,)),
                hint=hint or f"allowed: {', '.join(PLOT_KEYS)}",
            )
    if "path" not in item:
        raise reader.fail("a plot needs 'path': the data file", at)
    text = reader.expect(item["path"], str, path_at, "a plot's path")
    pos = reader.doc.at(path_at)
    rel = normalize_path(root, interpolate(text, scope, pos, shell=False), pos, "plot file")
    if not rel.lower().endswith(PLOT_FORMATS):
        raise ConfigError(
            f"plot file {rel!r} must be {', '.join(PLOT_FORMATS[:-1])} or {PLOT_FORMATS[-1]}",
            pos=pos,
            hint="the format is chosen by the extension",
        )
    if not guard.parent_inside(rel):
        raise ConfigError(f"plot file {text!r} is outside the workspace", pos=pos)
    guard.check_reserved(rel, pos, "plot file")
    kind = item.get("kind", "line")
    if kind not in PLOT_KINDS:
        raise reader.fail(
            f"unknown plot kind {kind!r}",
            at + ("kind",),
            hint=did_you_mean(str(kind), PLOT_KINDS) or f"one of: {', '.join(PLOT_KINDS)}",
        )
    x = item.get("x")
    if x is not None:
        reader.expect(x, str, at + ("x",), "x")
    y = reader.str_list(item["y"], at + ("y",), "y") if "y" in item else []
    if len(y) > 1 and kind not in ("line", "scatter"):
        raise reader.fail(
            f"a {kind} plot takes one y column, not {len(y)}",
            at + ("y",),
            hint="several y columns go with kind line or scatter",
        )
    title = reader.expect(item.get("title", ""), str, at + ("title",), "title")
    title = interpolate(title, scope, reader.doc.at(at + ("title",)), shell=False)
    return PlotSpec(rel, kind, x, tuple(y), title)
