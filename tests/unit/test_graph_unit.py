"""BuildGraph: order, cycles, selection, closure and downstream (mlbuild.graph)."""

from __future__ import annotations

import random
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from mlbuild.config import Pipeline, load_pipeline
from mlbuild.errors import ConfigError, NoTargetError
from mlbuild.graph import BuildGraph

Load = Callable[[str], Pipeline]

DIAMOND = """
version: 1
targets:
  data:raw: {cmd: make, outs: [raw.csv]}
  data:ext: {cmd: make, outs: [ext.csv]}
  features:train: {cmd: f, deps: ["data:raw", "data:ext"], outs: [feat.csv]}
  features:test: {cmd: f, deps: ["data:raw"], outs: [test.csv]}
  model:a: {cmd: t, deps: ["features:train"], outs: [a.joblib]}
  model:b: {cmd: t, deps: ["features:train"], outs: [b.joblib]}
  eval:all: {cmd: e, deps: ["model:a", "model:b", "features:test"]}
  lonely: {cmd: echo}
"""


@pytest.fixture
def graph(load: Load) -> BuildGraph:
    return BuildGraph.from_pipeline(load(DIAMOND))


def _assert_topological(graph: BuildGraph, order: list[str]) -> None:
    index = {name: i for i, name in enumerate(order)}
    for name in order:
        for dep in graph.deps[name]:
            if dep in index:
                assert index[dep] < index[name], f"{dep} must come before {name}"


def test_order_puts_every_dependency_before_its_dependents(graph: BuildGraph) -> None:
    assert sorted(graph.order) == sorted(graph.deps)
    _assert_topological(graph, list(graph.order))


def test_order_is_the_same_whatever_the_declaration_order(tmp_path: Path) -> None:
    lines = textwrap.dedent(DIAMOND).strip().splitlines()
    header, targets = lines[:2], lines[2:]
    orders = set()
    rng = random.Random(1)
    for i in range(5):
        shuffled = targets[:]
        rng.shuffle(shuffled)
        ws = tmp_path / f"w{i}"
        ws.mkdir()
        (ws / "mlbuild.yaml").write_text("\n".join(header + shuffled) + "\n")
        orders.add(BuildGraph.from_pipeline(load_pipeline(str(ws / "mlbuild.yaml"))).order)
    assert len(orders) == 1


def test_independent_targets_are_ordered_by_name(load: Load) -> None:
    pipeline = load(
        """
        version: 1
        targets:
          c: {cmd: echo}
          a: {cmd: echo}
          b: {cmd: echo}
        """
    )
    assert BuildGraph.from_pipeline(pipeline).order == ("a", "b", "c")


def test_cycle_is_a_config_error_naming_every_target_on_it(load: Load) -> None:
    pipeline = load(
        """
        version: 1
        targets:
          start: {cmd: echo}
          a: {cmd: echo, deps: [c, start]}
          b: {cmd: echo, deps: [a]}
          c: {cmd: echo, deps: [b]}
          after: {cmd: echo, deps: [c]}
        """
    )
    with pytest.raises(ConfigError) as info:
        BuildGraph.from_pipeline(pipeline)
    msg = str(info.value)
    line = int(msg.split(":")[1])
    assert line in (4, 5, 6), "the error points at a target on the cycle"
    assert "cycle" in msg
    chain = msg.split("cycle: ", 1)[1].split(" (", 1)[0].split(" -> ")
    assert set(chain) == {"a", "b", "c"}
    assert chain[0] == chain[-1]
    # The chain follows real dependency edges, all in one direction.
    depends_on = {("a", "c"), ("b", "a"), ("c", "b")}
    pairs = set(zip(chain, chain[1:], strict=False))
    assert pairs == depends_on or pairs == {(y, x) for x, y in depends_on}
    assert "start" not in chain and "after" not in chain


def test_two_target_cycle_names_both(load: Load) -> None:
    pipeline = load(
        """
        version: 1
        targets:
          x: {cmd: echo, deps: [y], outs: [x.txt]}
          y: {cmd: echo, deps: [x.txt], outs: [y.txt]}
        """
    )
    with pytest.raises(ConfigError) as info:
        BuildGraph.from_pipeline(pipeline)
    assert "x" in str(info.value) and "y" in str(info.value)


def test_select_exact_name(graph: BuildGraph) -> None:
    assert graph.select(["model:a"]) == ["model:a"]


def test_select_glob_returns_matches_in_build_order(graph: BuildGraph) -> None:
    assert graph.select(["model:*"]) == ["model:a", "model:b"]
    assert graph.select(["*:t*"]) == ["features:test", "features:train"]


def test_select_kind_prefix(graph: BuildGraph) -> None:
    assert graph.select(["data:"]) == ["data:ext", "data:raw"]


def test_select_several_patterns_merges_without_duplicates(graph: BuildGraph) -> None:
    selected = graph.select(["model:*", "model:a", "eval:all"])
    assert selected == ["model:a", "model:b", "eval:all"]


def test_select_unknown_name_raises_no_target_with_suggestion(graph: BuildGraph) -> None:
    with pytest.raises(NoTargetError) as info:
        graph.select(["model:c"])
    assert info.value.exit_code == 4
    assert "model:c" in str(info.value)
    assert "did you mean" in str(info.value)


def test_select_glob_matching_nothing_raises_no_target(graph: BuildGraph) -> None:
    with pytest.raises(NoTargetError):
        graph.select(["report:*"])


def test_select_unknown_kind_prefix_raises_no_target(graph: BuildGraph) -> None:
    with pytest.raises(NoTargetError):
        graph.select(["report:"])


def test_closure_contains_the_roots_and_everything_upstream_in_order(graph: BuildGraph) -> None:
    closure = graph.closure(["model:a"])
    assert set(closure) == {"model:a", "features:train", "data:raw", "data:ext"}
    _assert_topological(graph, closure)
    assert closure[-1] == "model:a"


def test_closure_of_unrelated_target_is_itself(graph: BuildGraph) -> None:
    assert graph.closure(["lonely"]) == ["lonely"]


def test_downstream_lists_transitive_dependents_not_the_root(graph: BuildGraph) -> None:
    down = graph.downstream(["features:train"])
    assert set(down) == {"model:a", "model:b", "eval:all"}
    _assert_topological(graph, down)


def test_downstream_of_a_leaf_is_empty(graph: BuildGraph) -> None:
    assert graph.downstream(["eval:all"]) == []


def test_dependents_are_the_reverse_edges(graph: BuildGraph) -> None:
    rev = graph.dependents
    assert sorted(rev["data:raw"]) == ["features:test", "features:train"]
    assert rev["lonely"] == []
