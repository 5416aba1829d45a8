"""`mlbuild lineage`: the recorded upstream tree of a target (`audit.lineage`), drawn once.

One walk and one label per node serve both renderers: `lines` (plain text, for pipes and
CI logs) and `print_tree` (a rich Tree on a terminal, the same words with colour). A node
is a build (``target``, ``manifest``, ``status``, ``who``, ``when``; ``seen`` when shared
upstream was already drawn above), or a link whose manifest is missing or corrupt::

    model:prod  4f1c…  built by ann at 2026-…
        out models/prod.joblib  sha256:…
        source data/raw.csv  xxh3-128:…
      features  9a0b…  built by ann at 2026-…  (see above)
"""

from __future__ import annotations

from typing import Any

__all__ = ["lines", "print_tree"]

Segment = tuple[str, str]  # (text, rich style; "" for none)

_LEAF_STYLES = {"out": "green", "source": "yellow", "code": "magenta"}


def lineage_leaves(node: dict[str, Any]) -> list[tuple[str, str, str]]:
    """A lineage node's files as ``(kind, path, digest)``: outs (sha256), then source
    deps and code files (xxh3): one list for both renderers of a lineage tree."""
    leaves = [("out", o["path"], str(o["sha256"])) for o in node.get("outs", [])]
    leaves += [("source", s["path"], str(s["xxh3"])) for s in node.get("sources", [])]
    leaves += [("code", c["path"], str(c["xxh3"])) for c in node.get("code", [])]
    return leaves


def _label(node: dict[str, Any]) -> list[Segment]:
    if node.get("corrupt"):
        return [("CORRUPT", "bold red"), (f" manifest {node['manifest']} ({node['corrupt']})", "")]
    if node.get("missing"):
        return [("MISSING", "bold red"), (f" manifest {node['manifest']}", "")]
    label = [
        (node["target"], "bold"),
        ("  ", ""),
        (f"{node['manifest'][:19]}…", "cyan"),
        (f"  {node['status']} by {node['who']} at {node['when']}", ""),
    ]
    if node.get("seen"):
        label.append(("  (see above)", "dim"))
    return label


def _leaves(node: dict[str, Any]) -> list[list[Segment]]:
    return [
        [(kind, _LEAF_STYLES[kind]), (f" {path}  ", ""), (digest, "dim")]
        for kind, path, digest in lineage_leaves(node)
    ]


def _text(segments: list[Segment]) -> str:
    return "".join(text for text, _ in segments)


def lines(node: dict[str, Any], indent: str = "") -> list[str]:
    """The tree as plain lines: each node, its files four spaces in, its upstream two."""
    out = [indent + _text(_label(node))]
    out.extend(f"{indent}    {_text(leaf)}" for leaf in _leaves(node))
    for up in node.get("upstream", []):
        out.extend(lines(up, indent + "  "))
    return out


def print_tree(tree: dict[str, Any]) -> None:
    """The tree on a terminal, as a rich Tree (rich is imported only here)."""
    from rich.console import Console
    from rich.text import Text
    from rich.tree import Tree

    def fill(branch: Tree, node: dict[str, Any]) -> None:
        for leaf in _leaves(node):
            branch.add(Text.assemble(*leaf))
        for up in node.get("upstream", []):
            fill(branch.add(Text.assemble(*_label(up))), up)

    root = Tree(Text.assemble(*_label(tree)))
    fill(root, tree)
    Console().print(root)
