"""Issue 12, item 10 and polish: `mlbuild --help` as make users read it (the build flags,
`mlbuild TARGET` is a build, every exit code), ``--quiet``, ``--color`` / NO_COLOR, counted
nouns in messages, the skipped targets named, the holder of a busy workspace lock named."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from mlbuild.store import WorkspaceLock
from tests.conftest import Project

Workspace = Callable[..., Project]

# One target that fails, then six that do not depend on it: with -j 1 and without -k the
# failure keeps all six from starting.
STOPPED = "targets:\n  bad: {cmd: echo oops; exit 3}\n" + "".join(
    f"  s{i}: {{cmd: 'true'}}\n" for i in range(1, 7)
)

ONE = "targets:\n  t:\n    cmd: echo hi > out.txt\n    outs: [out.txt]\n"


def test_top_level_help_lists_the_build_flags_and_every_exit_code(workspace: Workspace) -> None:
    p = workspace(ONE)
    run = p.mlbuild("--help")
    assert run.code == 0, run.err
    text = " ".join(run.out.split())  # click wraps to the terminal width
    assert "Usage: mlbuild [OPTIONS] [TARGETS]... | COMMAND [ARGS]..." in text
    assert "`mlbuild -j4 model:prod` is `mlbuild build -j4 model:prod`" in text
    build_part = run.out.split("Build options")[1].split("Commands:")[0]
    for flag in ("-j, --jobs", "-n, --dry-run", "-k, --keep-going", "-B, --force",
                 "-q, --question", "-s, --silent, --quiet", "--pull", "--push"):  # fmt: skip
        assert flag in build_part, flag
    assert "--color [auto|always|never]" in run.out.split("Build options")[0]
    assert "--color" not in build_part  # listed once, with the global options
    assert "70 internal error" in text and "130 interrupted" in text


def test_quiet_prints_only_the_failure_and_names_the_skipped_targets(
    workspace: Workspace,
) -> None:
    p = workspace(STOPPED)
    run = p.mlbuild("--quiet", "-j", "1")
    assert run.code == 1
    assert run.out == ""  # --quiet is -s: no run/built lines, no successful summary
    lines = [re.sub(r"^\d\d:\d\d:\d\d ", "", line) for line in run.err.splitlines()]
    assert "--- last line of output ---" in lines
    assert "mlbuild: 6 skipped: s1, s2, s3, s4, s5 and 1 more" in lines
    assert lines[-1] == "mlbuild: error: 1 target failed: bad"


def test_color_flag_before_or_after_the_targets_and_plural_counts(
    workspace: Workspace,
) -> None:
    p = workspace(ONE)
    colored = p.mlbuild("--color", "always", "t", env={"NO_COLOR": "1"})  # the flag wins
    assert colored.code == 0, colored.err
    assert "\x1b[32mbuilt\x1b[0m" in colored.out
    plain = p.mlbuild("-B", "t", "--color=never")  # after the targets: build's own flag
    assert plain.code == 0, plain.err
    assert "built   t" in plain.out and "\x1b[" not in plain.out + plain.err
    assert p.mlbuild("validate").out.endswith(": ok (1 target)\n")
    gc = p.mlbuild("gc", "--dry-run")
    assert re.fullmatch(
        r"would remove 0 objects \(0\.0 MiB\) and 0 run-cache entries; "
        r"kept \d+ objects? and 1 entry\n",
        gc.out,
    ), gc.out


def test_busy_workspace_names_the_lock_holder(workspace: Workspace) -> None:
    p = workspace(ONE)
    with WorkspaceLock(str(p.path(".mlbuild/lock")), wait=False):
        busy = p.mlbuild("--no-wait", "t")
    assert busy.code == 5
    assert re.search(
        rf"another mlbuild is running in this workspace: PID {os.getpid()} "
        r"\(since \d\d:\d\d:\d\d\)",
        busy.err,
    ), busy.err
