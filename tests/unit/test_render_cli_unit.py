"""The exit-code table and the renderers split out of the CLI (issue 11): pure functions,
no subprocess."""

from __future__ import annotations

import signal

import pytest

from mlbuild import errors, interrupts
from mlbuild.errors import ExitCode
from mlbuild.render import graph, lineage
from mlbuild.results import BuildResult, Outcome, TargetResult


def test_exit_codes_keep_their_documented_numbers() -> None:
    assert {c.name: int(c) for c in ExitCode} == {
        "OK": 0,
        "BUILD_FAILED": 1,
        "USAGE": 2,
        "CHECK_FAILED": 3,
        "NO_TARGET": 4,
        "LOCKED": 5,
        "VERIFICATION": 6,
        "BUG": 70,
        "INTERRUPTED": 130,
    }
    assert [e.exit_code for e in (errors.ConfigError("x"), errors.UsageError("x"))] == [2, 2]
    assert errors.NoTargetError("x").exit_code == 4
    assert errors.LockHeldError("x").exit_code == 5
    assert errors.CheckFailed("x").exit_code == 3
    assert errors.VerificationError("x").exit_code == 6


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (KeyboardInterrupt(), 130),
        (interrupts.Terminated(signal.SIGTERM), 143),
        (interrupts.Terminated(signal.SIGHUP), 129),
    ],
)
def test_an_interrupt_exits_128_plus_its_signal(exc: BaseException, code: int) -> None:
    assert interrupts.exit_code(exc) == code


def test_a_build_rejected_only_by_checks_exits_3_and_a_failed_command_1() -> None:
    rejected = TargetResult("m", Outcome.FAILED, checks_failed=True)
    failed = TargetResult("n", Outcome.FAILED)
    assert BuildResult((rejected,), 0.0).exit_code is ExitCode.CHECK_FAILED
    assert BuildResult((rejected, failed), 0.0).exit_code is ExitCode.BUILD_FAILED
    assert BuildResult((), 0.0, interrupted=True).exit_code == 130


def test_graph_tree_marks_shared_upstream_once() -> None:
    deps = {"raw": (), "feat": ("raw",), "a": ("feat",), "b": ("feat",)}
    assert graph.tree(deps, ["raw", "feat", "a", "b"]) == [
        "a",
        "└── feat",
        "    └── raw",
        "b",
        "└── feat (see above)",
    ]


def test_graph_tree_marks_a_repeated_leaf_too() -> None:
    deps = {"raw": (), "test": ("raw",), "train": ("raw",), "m": ("test", "train")}
    assert graph.tree(deps, ["raw", "test", "train", "m"])[-1] == "    └── raw (see above)"


def test_lineage_terminal_tree_says_what_the_plain_lines_say(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One drawing: a corrupt manifest reads CORRUPT on a terminal as in a pipe."""
    tree = {
        "target": "model",
        "manifest": "sha256:" + "a" * 64,
        "status": "built",
        "who": "ann@host",
        "when": "2026-01-01T00:00:00Z",
        "outs": [{"path": "m.bin", "sha256": "sha256:" + "b" * 64}],
        "upstream": [
            {"manifest": "sha256:" + "c" * 64, "missing": True, "corrupt": "m.json: not JSON"}
        ],
    }
    plain = lineage.lines(tree)
    assert plain[2] == f"  CORRUPT manifest sha256:{'c' * 64} (m.json: not JSON)"
    lineage.print_tree(tree)
    drawn = capsys.readouterr().out
    assert "CORRUPT manifest" in drawn and "out m.bin" in drawn
