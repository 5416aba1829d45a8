"""What is declared: `list`, `show`, `graph` and `validate` (nothing is decided or run)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import click

from ..errors import UsageError
from ..plural import counted
from .completion import complete_targets
from .context import Invocation, echo_lines, emit_json, pass_invocation
from .main import cli

if TYPE_CHECKING:
    from ..config import TargetSpec


@cli.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@pass_invocation
def list_(invocation: Invocation, as_json: bool) -> None:
    """Every target with its kind, deps and outs."""
    ws = invocation.workspace()
    rows = [ws.pipeline.targets[name] for name in ws.graph.order]
    if as_json:
        emit_json({"targets": [_spec_json(s, full=False) for s in rows]})
        return
    width = max((len(s.name) for s in rows), default=0)
    for s in rows:
        deps = ", ".join(d.value for d in s.deps) or "-"
        outs = ", ".join(s.outs) or "-"
        click.echo(f"{s.name:<{width}}  deps: {deps}  outs: {outs}")


@cli.command()
@click.argument("target", shell_complete=complete_targets)
@click.option("--json", "as_json", is_flag=True, help="One JSON document.")
@pass_invocation
def show(invocation: Invocation, target: str, as_json: bool) -> None:
    """One target, fully resolved (interpolated command, deps, params, env)."""
    ws = invocation.workspace()
    names = ws.graph.select([target])
    if len(names) > 1:
        raise UsageError(
            f"{target!r} matches {len(names)} targets; show takes one",
            hint="use `mlbuild list` for several",
        )
    spec = ws.pipeline.targets[names[0]]
    data = _spec_json(spec, full=True)
    data["code"] = ws.code_deps(spec.name)
    data["undeclared_reads"] = ws.undeclared_reads(spec.name)
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        empty = value in (None, [], {}, "", 0, False) and key != "name"
        if empty or key == "undeclared_reads":
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        click.echo(f"{key:9} {text}")
    if spec.cmd and not data["code"]:
        # Never silently empty: say that no script was seen, so a missing one is listed.
        click.echo(f"{'code':9} none found in this command; list the scripts it runs in deps")
    for path in data["undeclared_reads"]:
        click.echo(f"{'reads':9} {path}, which it does not declare: its key does not cover it")


def _spec_json(spec: TargetSpec, *, full: bool) -> dict[str, Any]:
    """A target as declared (after interpolation); ``full`` adds everything but its name,
    kind, deps and outs (`show`)."""
    data: dict[str, Any] = {
        "name": spec.name,
        "kind": spec.kind,
        "deps": [{"kind": d.kind.value, "value": d.value} for d in spec.deps],
        "outs": list(spec.outs),
    }
    if full:
        data.update(
            cmd=list(spec.cmd) if spec.cmd else None,
            python=spec.python,
            params=dict(spec.params),
            env=dict(spec.env),
            secrets={name: f"${source}" for name, source in spec.secrets.items()},
            packages=list(spec.packages),
            resources=dict(spec.resources),
            always=spec.always,
            retries=spec.retries,
            desc=spec.desc,
            metrics=list(spec.metrics),
            plots=[p.to_json() for p in spec.plots],
            checks=[c.to_json() for c in spec.checks],
            gate=[g.to_json() for g in spec.gates],
            promote=None
            if spec.promote is None
            else {**spec.promote.to_json(), "candidates": list(spec.promote.candidates)},
            defined=str(spec.pos),
        )
    return data


@cli.command()
@click.argument("targets", nargs=-1, shell_complete=complete_targets)
@click.option("--format", "fmt", type=click.Choice(["text", "dot", "mermaid"]), default="text")
@pass_invocation
def graph(invocation: Invocation, targets: tuple[str, ...], fmt: str) -> None:
    """The DAG as a text tree, Graphviz DOT or Mermaid."""
    from ..render import graph as draw

    ws = invocation.workspace()
    names = ws.graph.closure(ws.select(targets))
    render = {"dot": draw.dot, "mermaid": draw.mermaid}.get(fmt, draw.tree)
    echo_lines(render(ws.graph.deps, names))


@cli.command()
@pass_invocation
def validate(invocation: Invocation) -> None:
    """Check mlbuild.yaml (syntax, references, cycles) and exit; for pre-commit hooks."""
    ws = invocation.workspace()
    _ = ws.graph
    n = counted(len(ws.pipeline.targets), "target")
    click.echo(f"{os.path.relpath(ws.config_path)}: ok ({n})")
