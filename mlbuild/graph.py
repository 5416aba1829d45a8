"""BuildGraph: targets and their edges; selection, closure, order, cycle detection.

The hot path (closure + topological order of a few thousand targets) is plain Python so a
no-op build does not pay for importing networkx (~110 ms); networkx is used, lazily, for
the rare questions where its algorithms are worth the import: reporting every target on a
cycle.
"""

from __future__ import annotations

import fnmatch
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .config import Pipeline
from .errors import ConfigError, NoTargetError

__all__ = ["BuildGraph"]


@dataclass(frozen=True)
class BuildGraph:
    """Immutable adjacency of a pipeline: ``deps[t]`` are the targets ``t`` depends on."""

    deps: Mapping[str, tuple[str, ...]]
    order: tuple[str, ...]  # every target, dependencies first, ties broken by name

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline) -> BuildGraph:
        deps = {name: spec.dep_targets for name, spec in pipeline.targets.items()}
        order = _toposort(deps)
        if len(order) < len(deps):
            cycle = _find_cycle(deps)
            first = pipeline.targets[cycle[0]]
            raise ConfigError(
                "dependency cycle: " + " -> ".join([*cycle, cycle[0]]),
                pos=first.pos,
                hint="remove one of these deps",
            )
        return cls(deps=deps, order=tuple(order))

    @property
    def dependents(self) -> dict[str, list[str]]:
        """Reverse edges: ``dependents[t]`` are the targets that depend on ``t`` (sorted)."""
        rev: dict[str, list[str]] = {name: [] for name in self.deps}
        for name in self.order:
            for dep in self.deps[name]:
                rev[dep].append(name)
        return rev

    def select(self, patterns: Iterable[str]) -> list[str]:
        """Targets named by CLI patterns: exact names, globs, or a kind prefix (``data:``)."""
        chosen: set[str] = set()
        for pattern in patterns:
            if pattern in self.deps:
                matched = [pattern]
            elif pattern.endswith(":"):
                matched = [n for n in self.deps if n.startswith(pattern)]
            elif any(ch in pattern for ch in "*?["):
                matched = [n for n in self.deps if fnmatch.fnmatchcase(n, pattern)]
            else:
                matched = []
            if not matched:
                from .suggest import did_you_mean

                raise NoTargetError(
                    f"no target matches {pattern!r}",
                    hint=did_you_mean(pattern, self.deps) or "run `mlbuild list`",
                )
            chosen.update(matched)
        return [n for n in self.order if n in chosen]

    def closure(self, roots: Iterable[str]) -> list[str]:
        """Roots and everything upstream of them, in build order."""
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            stack.extend(self.deps[name])
        return [n for n in self.order if n in seen]

    def downstream(self, roots: Iterable[str]) -> list[str]:
        """Everything that depends (transitively) on any of ``roots``, in build order."""
        rev = self.dependents
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            for child in rev[stack.pop()]:
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return [n for n in self.order if n in seen]


def _toposort(deps: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Kahn's algorithm with a name-ordered heap: the same graph always gives one order."""
    waiting = {name: len(ds) for name, ds in deps.items()}
    rev: dict[str, list[str]] = {name: [] for name in deps}
    for name, ds in deps.items():
        for d in ds:
            rev[d].append(name)
    ready = [name for name, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for child in rev[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, child)
    return order


def _find_cycle(deps: Mapping[str, tuple[str, ...]]) -> list[str]:
    """One cycle, every target on it, starting from its smallest name (deterministic)."""
    import networkx as nx

    g = nx.DiGraph()
    for name in sorted(deps):
        g.add_node(name)
        for d in deps[name]:
            g.add_edge(name, d)
    cycle = [u for u, _ in nx.find_cycle(g)]
    start = cycle.index(min(cycle))
    return cycle[start:] + cycle[:start]
