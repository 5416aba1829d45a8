"""Failed commands, missing outs, python callables: nothing half-done is ever recorded."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import Project


def test_failed_command_stops_the_build_and_shows_its_last_lines(
    project: Callable[[str], Project],
) -> None:
    p = project("faults")
    run = p.mlbuild("-j", "1", "bad:exit", "ok:last", "after:bad")
    assert run.code == 1
    assert "bad:exit: command exited with 3" in run.err
    assert "line 30 of the failing command" in run.err
    assert "line 10 of the failing command" not in run.err  # only the last 20 lines
    assert "line 11 of the failing command" in run.err
    assert ".mlbuild/logs/bad__exit.log" in run.err
    log = p.read(".mlbuild/logs/bad__exit.log")
    assert "line 1 of the failing command" in log
    # Nothing recorded, partial out moved aside for debugging, downstream not run.
    assert not p.path("out/bad.txt").exists()
    assert p.read(".mlbuild/failed/bad__exit/out/bad.txt") == "partial\n"
    assert not p.path("out/after.txt").exists()
    lock = json.loads(p.read("mlbuild.lock")) if p.path("mlbuild.lock").exists() else {}
    assert "bad:exit" not in lock.get("targets", {})


def test_keep_going_builds_everything_not_downstream_of_the_failure(
    project: Callable[[str], Project],
) -> None:
    p = project("faults")
    run = p.mlbuild("--json", "-k", "bad:exit", "after:bad", "ok:last")
    assert run.code == 1
    assert run.ran == ["ok:first", "ok:last"]
    assert run.outcomes("failed") == ["bad:exit"]
    assert run.outcomes("skipped") == ["after:bad"]
    assert p.read("out/last.txt") == "last\n"
    # The next build retries the failed target (still failing) and runs nothing else.
    again = p.mlbuild("--json", "-k", "bad:exit", "after:bad", "ok:last")
    assert again.outcomes("failed") == ["bad:exit"]
    assert again.ran == []


def test_missing_declared_out_fails_the_target(project: Callable[[str], Project]) -> None:
    p = project("faults")
    run = p.mlbuild("bad:missing")
    assert run.code == 1
    assert "did not write declared out(s): out/two.txt" in run.err
    assert p.mlbuild("-q", "bad:missing").code == 1  # still stale: nothing was recorded


def test_python_callable_exception_fails_with_its_message(
    project: Callable[[str], Project],
) -> None:
    p = project("faults")
    run = p.mlbuild("bad:python")
    assert run.code == 1
    assert "steps:explode raised RuntimeError: boom from a python callable" in run.err
    assert "about to fail" in p.read(".mlbuild/logs/bad__python.log")


def test_python_callable_with_directory_out_is_cached_and_restored(
    project: Callable[[str], Project],
) -> None:
    p = project("faults")
    assert p.build("ok:python").ran == ["ok:first", "ok:python"]
    assert p.read("out/py.txt") == "hello first pid=True\n"
    assert p.read("out/pydir/sub/a.txt") == "a\n"
    assert p.build("ok:python").ran == []
    # Delete a file inside the directory out: the whole directory is restored.
    p.path("out/pydir/sub/a.txt").unlink()
    p.write("out/pydir/extra.txt", "not ours\n")
    run = p.build("ok:python")
    assert run.restored == ["ok:python"]
    assert p.read("out/pydir/sub/a.txt") == "a\n"
    assert not p.path("out/pydir/extra.txt").exists()
    # The out that was replaced by the run before is kept aside, never deleted.
    p.replace("params.yaml", "hello", "bonjour")
    assert p.build("ok:python").ran == ["ok:python"]
    assert p.read(".mlbuild/aside/ok__python/out/py.txt") == "hello first pid=True\n"


def test_restore_keeps_a_hand_edited_out_aside(project: Callable[[str], Project]) -> None:
    p = project("faults")
    p.build("ok:first")
    p.write("out/first.txt", "my precious edit\n")
    assert p.build("ok:first").restored == ["ok:first"]
    assert p.read("out/first.txt") == "first\n"
    assert p.read(".mlbuild/aside/ok__first/out/first.txt") == "my precious edit\n"


def test_verbose_streams_python_callable_output(project: Callable[[str], Project]) -> None:
    p = project("faults")
    run = p.mlbuild("-v", "bad:python")
    assert "[bad:python] about to fail" in run.out


def test_missing_out_message_names_the_target_once(project: Callable[[str], Project]) -> None:
    p = project("faults")
    run = p.mlbuild("bad:missing")
    assert "bad:missing: the command did not write declared out(s): out/two.txt" in run.err
    assert "bad:missing: bad:missing" not in run.err
