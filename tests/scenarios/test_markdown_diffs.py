"""`metrics diff --md`, `params diff --md` (and `metrics show --md`): GitHub Markdown tables for
a pull-request comment, checked by rendering them with a CommonMark + GFM-tables parser
(markdown-it-py, which rich brings); and one number format for every table and `history`."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest

from tests.conftest import Project

Workspace = Callable[..., Project]

PIPELINE = """
params: params.yaml
targets:
  model:a:
    cmd: python train.py ${outs[0]}
    params: [train]
    metrics: [metrics.json]
    outs: [metrics.json]
"""
# A tiny change (3e-07) next to an ordinary one (0.0025), a metric name and a string metric and
# a param value with `|` and backticks, an unrounded float (1/3 + lr), an int.
FILES = {
    "params.yaml": 'train: {lr: 0.1, tag: "x|y"}\n',
    "train.py": (
        "import json, sys, yaml\n"
        "p = yaml.safe_load(open('params.yaml'))['train']\n"
        "lr = p['lr']\n"
        "json.dump({'acc': 0.5 + lr * 0.000003, 'loss': 0.1 + lr * 0.025, 'p|q': 1 / 3 + lr,\n"
        "           'note': '`' + p['tag'] + '`', 'n': int(lr * 10)}, open(sys.argv[1], 'w'))\n"
    ),
}


def _cells(markdown: str) -> list[list[str]]:
    """The table as GitHub would show it: rows of cells' inner HTML (header first)."""
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark").enable("table").render(markdown)
    rows = re.findall(r"<tr>(.*?)</tr>", rendered, re.S)
    return [
        [html.unescape(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in rows
    ]


def test_md_diffs_render_as_one_cell_per_value_with_one_number_format(
    workspace: Workspace,
) -> None:
    p = workspace(PIPELINE, FILES)
    p.build()
    p.write("params.yaml", 'train: {lr: 0.2, tag: "x|z"}\n')
    params = p.mlbuild("params", "diff", "--md")
    assert params.code == 0, params.err
    assert _cells(params.out) == [
        ["param", "last build", "now", "stale"],
        ["<code>train.lr</code>", "<code>0.1</code>", "<code>0.2</code>", "<code>model:a</code>"],
        [
            "<code>train.tag</code>",
            '<code>"x|y"</code>',
            '<code>"x|z"</code>',
            "<code>model:a</code>",
        ],
    ]
    p.build()
    md = p.mlbuild("metrics", "diff", "--md")
    assert md.code == 0, md.err
    assert md.out.splitlines()[1] == (
        "|-----------|--------|---------------:|-------------:|-----------:|---------:|"
    )
    assert _cells(md.out) == [
        ["target", "metric", "previous build", "now", "change", "%"],
        ["<code>model:a</code>", "<code>acc</code>", "0.5", "0.500001", "+0.0000003", "+0.00%"],
        ["<code>model:a</code>", "<code>loss</code>", "0.1025", "0.105", "+0.0025", "+2.44%"],
        ["<code>model:a</code>", "<code>n</code>", "1", "2", "+1", "+100.00%"],
        ["<code>model:a</code>", "<code>note</code>", "<code>`x|y`</code>", "<code>`x|z`</code>"]
        + ["-", "-"],
        ["<code>model:a</code>", "<code>p|q</code>", "0.433333", "0.533333", "+0.1", "+23.08%"],
    ]
    # The text table uses the same numbers; `history` rounds as `metrics show` does.
    text = p.mlbuild("metrics", "diff").out
    assert "+0.0000003" in text and "+0.0025" in text and "e-" not in text
    show = p.mlbuild("metrics", "show").out.splitlines()
    assert show[1].split() == ["model:a", "0.500001", "0.105", "2", "`x|z`", "0.533333"]
    history = p.mlbuild("history", "model:a").out.splitlines()
    assert history[0].endswith("[acc=0.500001, loss=0.105, n=2, note=`x|z`, p|q=0.533333]")
    assert history[1].endswith("[acc=0.5, loss=0.1025, n=1, note=`x|y`, p|q=0.433333]")


def test_md_with_json_is_a_usage_error(workspace: Workspace) -> None:
    p = workspace(PIPELINE, FILES)
    for command in (("metrics", "diff"), ("params", "diff"), ("metrics", "show")):
        run = p.mlbuild(*command, "--md", "--json")
        assert run.code == 2, run.err
        assert run.err == (
            "mlbuild: error: --md and --json cannot be used together "
            "(--md for a pull-request comment, --json for a script: pick one)\n"
        )
        assert run.out == ""


@pytest.mark.parametrize(
    ("value", "signed", "shown"),
    [
        (2.99937e-07, True, "+0.000000299937"),
        (0.0025, True, "+0.0025"),
        (0.93662 - 0.929577, True, "+0.007043"),
        (-0.0, True, "+0"),
        (1234567.891, False, "1234568"),
        (0.9999996, False, "1"),
        (427.0, False, "427"),
        (1e20, False, "1e+20"),
        (True, False, "true"),
        (None, True, "-"),
    ],
)
def test_every_table_number_is_six_significant_digits_without_an_exponent(
    value: object, signed: bool, shown: str
) -> None:
    from mlbuild.render.tables import fmt

    assert fmt(value, signed=signed) == shown


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("a|b", "`a\\|b`"),
        ("a`b", "``a`b``"),
        ("`a``", "``` `a`` ```"),
        ("two\nlines", "`two lines`"),
        (" pad ", "`  pad  `"),
    ],
)
def test_a_markdown_code_cell_shows_its_text_exactly(text: str, cell: str) -> None:
    from mlbuild.render.tables import md_code

    assert md_code(text) == cell
    shown = _cells(f"| h |\n|---|\n| {cell} |\n")[1][0]
    assert shown == f"<code>{html.escape(text.replace(chr(10), ' '), quote=False)}</code>"
