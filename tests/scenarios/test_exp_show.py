"""`mlbuild exp show`: the experiments table of `dvc exp show`, one row per recorded build of
each target, newest first, with the params its whole lineage read (the columns that vary)
and its metrics; sorted as DVC sorts; as text, JSON, CSV, Markdown, or a rich table with the
best value of each metric bold."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Project

Workspace = Callable[..., Project]

# prep reads `scale`; each model reads its own train.* only, and links to prep's build, so
# its rows carry `scale` from its lineage (its loss is prep's out). The gate's `max:` says
# lower loss is better.
PIPELINE = """
params: params.yaml
targets:
  prep:
    cmd: echo ${params.scale} > ${outs[0]}
    params: [scale]
    outs: [data.txt]
  model:a:
    cmd: >-
      cat ${deps[0]} > ${outs[0]} &&
      printf '{"acc": %s, "loss": %s}' ${params.train.a.lr} $(cat ${deps[0]}) > ${outs[1]}
    deps: [prep]
    params: [train.a]
    outs: [a.txt]
    metrics: [a.json]
    gate: [{metric: loss, max: 5}]
  model:b:
    cmd: >-
      cat ${deps[0]} > ${outs[0]} &&
      printf '{"acc": %s, "loss": %s, "auc": 0.7}' ${params.train.b.lr} $(cat ${deps[0]})
      > ${outs[1]}
    deps: [prep]
    params: [train.b]
    outs: [b.txt]
    metrics: [b.json]
"""


def _params(scale: int, lr_a: float) -> str:
    return f"scale: {scale}\ntrain:\n  a: {{lr: {lr_a}, epochs: 3}}\n  b: {{lr: 0.5, epochs: 3}}\n"


def _show(p: Project, *args: str) -> str:
    run = p.mlbuild("exp", "show", *args)
    assert run.code == 0, run.err
    return run.out


def _experiments(workspace: Workspace) -> Project:
    """Three builds: scale 1 → 2 (prep, then both models, rebuilt), then model:a's lr."""
    p = workspace(PIPELINE, {"params.yaml": _params(1, 0.1)})
    assert _show(p) == (
        "no builds recorded for these targets: build them first (`mlbuild TARGET`)\n"
    )
    for scale, lr in ((1, 0.1), (2, 0.1), (2, 0.3)):
        p.write("params.yaml", _params(scale, lr))
        assert p.build().code == 0
    return p


def test_exp_show_lists_every_build_with_its_lineage_params_that_vary(
    workspace: Workspace,
) -> None:
    p = _experiments(workspace)
    lines = _show(p).splitlines()
    # Targets that declare metrics (not prep), build order, newest first. `scale` comes from
    # prep's build (the lineage); train.b.lr is 0.5 wherever it is read, and model:a never
    # reads it: hidden, as are the epochs.
    assert [line.split()[0] for line in lines] == ["target", *["model:a"] * 3, *["model:b"] * 2]
    assert lines[0].split()[4:] == ["acc", "auc", "loss", "scale", "train.a.lr"]
    assert [line.split()[3:] for line in lines[1:]] == [
        ["built", "0.3", "-", "2", "2", "0.3"],
        ["built", "0.1", "-", "2", "2", "0.1"],
        ["built", "0.1", "-", "1", "1", "0.1"],
        ["built", "0.5", "0.7", "2", "2", "-"],
        ["built", "0.5", "0.7", "1", "1", "-"],
    ]
    data = json.loads(_show(p, "--json", "--all-params", "model:b"))
    assert data["columns"] == {
        "metrics": ["acc", "auc", "loss"],
        "params": ["scale", "train.b.epochs", "train.b.lr"],
    }
    assert data["best"] == {"acc": "max", "auc": "max", "loss": "min"}  # the gate's max:
    newest = data["experiments"][0]
    assert newest["params"] == {"scale": 2, "train.b.epochs": 3, "train.b.lr": 0.5}
    assert newest["status"] == "built" and newest["manifest"].startswith("sha256:")
    assert newest["metrics"] == {"acc": 0.5, "auc": 0.7, "loss": 2}
    # The short id in the table is a prefix of the manifest id.
    short = _show(p, "model:b").splitlines()[1].split()[2]
    assert len(short) == 12 and newest["manifest"] == f"sha256:{short}" + newest["manifest"][19:]


def test_exp_show_sorts_like_dvc_and_writes_csv_and_markdown(workspace: Workspace) -> None:
    p = _experiments(workspace)
    # Ascending unless --sort-order desc, all targets together, ties in table order.
    rows = list(csv.reader(io.StringIO(_show(p, "--sort-by", "loss", "--csv"))))
    assert rows[0] == ["target", "finished", "manifest", "status", "acc", "auc", "loss"] + [
        "scale",
        "train.a.lr",
    ]
    assert [(r[0], r[6], r[8]) for r in rows[1:]] == [
        ("model:a", "1", "0.1"),
        ("model:b", "1", ""),
        ("model:a", "2", "0.3"),
        ("model:a", "2", "0.1"),
        ("model:b", "2", ""),
    ]
    assert all(r[2].startswith("sha256:") and len(r[2]) == 71 for r in rows[1:])
    # A metric some rows lack: the rows without it come last, in their order.
    desc = _show(p, "--sort-by", "auc", "--sort-order", "desc").splitlines()
    assert [line.split()[0] for line in desc[1:]] == ["model:b"] * 2 + ["model:a"] * 3
    # A param sorts too.
    by_lr = json.loads(_show(p, "model:a", "--sort-by", "train.a.lr", "--json"))
    assert [e["params"]["train.a.lr"] for e in by_lr["experiments"]] == [0.1, 0.1, 0.3]

    # A rollback is a row of its own, with the params and metrics of the build it restores;
    # Markdown bolds the best of each metric: the highest acc, the lowest loss.
    assert p.mlbuild("rollback", "model:a").code == 0
    md = _show(p, "--md", "model:a").splitlines()
    header, rule, *cells = [[c.strip() for c in line.split("|")[1:-1]] for line in md]
    assert header == [
        "target",
        "when",
        "id",
        "status",
        "`acc`",
        "`loss`",
        "`scale`",
        "`train.a.lr`",
    ]
    assert [c.endswith(":") for c in rule] == [False] * 4 + [True] * 2 + [False] * 2
    assert [(c[3], c[4], c[5], c[7]) for c in cells] == [
        ("`rollback`", "0.1", "2", "`0.1`"),
        ("`built`", "**0.3**", "2", "`0.3`"),
        ("`built`", "0.1", "2", "`0.1`"),
        ("`built`", "0.1", "**1**", "`0.1`"),
    ]


def test_exp_show_refuses_bad_options_with_a_hint(workspace: Workspace) -> None:
    p = _experiments(workspace)
    for args, message in (
        (
            ["--sort-by", "acc_"],
            "--sort-by acc_: no metric or param of that name in these builds (did you mean 'acc'?)",
        ),
        (["--json", "--csv"], "--json and --csv cannot be used together (pick one output format)"),
        (["--sort-order", "desc"], "--sort-order goes with --sort-by (add --sort-by METRIC)"),
    ):
        run = p.mlbuild("exp", "show", *args)
        assert (run.code, run.out) == (2, ""), run.err
        assert run.err == f"mlbuild: error: {message}\n"


def test_exp_show_names_missing_manifests_and_shows_the_rest(workspace: Workspace) -> None:
    p = _experiments(workspace)

    def path(mid: str) -> Path:
        hexd = mid.split(":", 1)[1]
        return p.path(f".mlbuild/manifests/{hexd[:2]}/{hexd[2:]}.json")

    oldest_b = json.loads(_show(p, "--json", "model:b"))["experiments"][-1]
    prep = json.loads(_show(p, "--json", "prep"))["experiments"]
    path(oldest_b["manifest"]).unlink()
    path(prep[-1]["manifest"]).unlink()  # the build behind model:a's oldest row
    run = p.mlbuild("exp", "show", "--json")
    assert run.code == 0, run.err
    rows = json.loads(run.out)["experiments"]
    assert [(r["target"], r["params"].get("scale")) for r in rows] == [
        ("model:a", 2),
        ("model:a", 2),
        ("model:a", None),
        ("model:b", 2),
    ]
    assert run.err.splitlines() == [
        f"mlbuild: warning: model:b: manifest {oldest_b['manifest']} is missing: left out",
        f"mlbuild: warning: upstream manifest {prep[-1]['manifest']} is missing or unusable: "
        "the params of its build are left out (`mlbuild audit` says why)",
    ]


def test_exp_show_on_a_terminal_bolds_the_best_value_of_each_metric() -> None:
    from rich.console import Console

    from mlbuild.experiments import Direction, Experiment, ExperimentTable
    from mlbuild.render.exp import print_table

    def row(n: int, loss: float, tag: str) -> Experiment:
        return Experiment("m[x]", f"sha256:{n:064x}", None, "built", {"p": tag}, {"loss": loss})

    table = ExperimentTable(
        (row(1, 0.25, "[bold]a"), row(2, 0.125, "b"), row(3, 0.125, "c")),
        ("loss",),
        ("p",),
        {"loss": Direction.MIN},
    )
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=120)
    print_table(table, color=True, console=console)
    text = out.getvalue()
    bold_cells = [line for line in text.splitlines() if "\x1b[1m0.125" in line]
    assert len(bold_cells) == 2 and "\x1b[1m0.25" not in text  # both ties, not the worst
    assert '"[bold]a"' in text and "m[x]" in text  # a record's text is never markup
