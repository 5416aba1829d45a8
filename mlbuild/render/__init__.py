"""How mlbuild shows things: every renderer, none of the commands.

::

    reporters.py   a build as it happens: Rich (terminal), Plain (CI logs), Json (--json);
                   the transfer progress bar
    explain.py     why targets are stale: -n, status, explain/why
    graph.py       the DAG as a text tree, Graphviz DOT, Mermaid
    lineage.py     the recorded upstream of a target (plain lines or a rich Tree)
    manifest.py    manifest show, history, diff
    tables.py      aligned tables: metrics, metrics/params diffs, audit
    exp.py         `exp show`: the experiments table (text, Markdown, CSV, rich)
    html.py        `mlbuild report`: one self-contained HTML page

Renderers return lines (or a page) from plain data and print nothing, except those that
draw on a terminal with rich (`reporters.RichReporter`, `lineage.print_tree`,
`exp.print_table`). Nothing is imported here: rich is loaded only when a terminal display
is drawn.
"""
