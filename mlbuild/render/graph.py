"""`mlbuild graph`: the DAG of some targets as a text tree, Graphviz DOT or Mermaid.

Each renderer takes ``deps`` (`BuildGraph.deps`: a target's dep targets) and ``names``, a
closed set of targets in build order, and returns lines. The output is a pure function of
those two, so two runs on one config print the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["dot", "mermaid", "tree"]

Deps = Mapping[str, Sequence[str]]


def dot(deps: Deps, names: Sequence[str]) -> list[str]:
    """A ``digraph`` with one node per target and an edge from each dep to its dependent."""
    lines = ["digraph mlbuild {", "  rankdir=LR;"]
    lines.extend(f'  "{n}";' for n in names)
    lines.extend(f'  "{d}" -> "{n}";' for n in names for d in deps[n])
    return [*lines, "}"]


def mermaid(deps: Deps, names: Sequence[str]) -> list[str]:
    """A Mermaid ``graph LR``; nodes get ids ``t0``, ``t1``… since names hold ``:``."""
    ids = {n: f"t{i}" for i, n in enumerate(names)}
    lines = ["graph LR"]
    lines.extend(f'  {ids[n]}["{n}"]' for n in names)
    lines.extend(f"  {ids[d]} --> {ids[n]}" for n in names for d in deps[n])
    return lines


def tree(deps: Deps, names: Sequence[str]) -> list[str]:
    """Each target nothing else in ``names`` depends on, with its upstream drawn below it;
    a target drawn once already is marked ``(see above)`` rather than drawn again, a leaf
    too (as `lineage` does, and `npm ls` with "deduped"), so a shared dep reads as one."""
    wanted = set(names)
    roots = [n for n in names if not any(n in deps[m] for m in wanted)]
    lines: list[str] = []
    seen: set[str] = set()

    def walk(n: str, prefix: str) -> None:
        for i, d in enumerate(deps[n]):
            last = i == len(deps[n]) - 1
            again = " (see above)" if d in seen else ""
            lines.append(f"{prefix}{'└── ' if last else '├── '}{d}{again}")
            if not again:
                seen.add(d)
                walk(d, prefix + ("    " if last else "│   "))

    for r in roots:
        lines.append(r)
        walk(r, "")
    return lines
