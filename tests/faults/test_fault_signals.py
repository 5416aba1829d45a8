"""Signals during a running command: SIGINT, SIGTERM and SIGHUP (``timeout``, a CI cancel,
a closed terminal) stop the command's whole process group, record nothing, leave no
secret in any file, release the workspace, and exit 128+N; a kill -9 of mlbuild leaves no
secret either. Every case runs the real CLI on a command that prints a secret env value
and then keeps appending to its out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlbuild.jobs import Masker, StreamMasker, process_start_time
from tests.conftest import Project

Workspace = Callable[..., Project]
# Signals, kill -9 and Ctrl-C of mlbuild itself: every CLI call is a process (tests/conftest.py).
pytestmark = pytest.mark.cli_subprocess
CANARY = "canary-5d1e0b7a-signal-do-not-leak"

CONFIG = """\
env:
  TOKEN: {from: FAULT_TOKEN, secret: true}
targets:
  leak:sh:
    cmd: python leak.py ${outs[0]}
    outs: [out/sh.txt]
  leak:py:
    python: leaky:run
    outs: [out/py.txt]
"""

# The secret goes out in two writes (a reader sees it split), on stdout and stderr. A
# helper that ignores SIGTERM shares the command's process group: only SIGKILL stops it.
LEAK_SH = """\
import os, subprocess, sys, time

token = os.environ["TOKEN"]
sys.stdout.write("token=" + token[:9])
sys.stdout.flush()
time.sleep(0.05)
sys.stdout.write(token[9:] + "\\n")
sys.stdout.flush()
sys.stderr.write("again " + token + "\\n")
sys.stderr.flush()
helper = subprocess.Popen(
    [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
     "signal.SIG_IGN); print('ready', flush=True); time.sleep(30)"],
    stdout=subprocess.PIPE,
)
helper.stdout.readline()
with open("started.tmp", "w") as f:
    f.write(f"{os.getpid()} {helper.pid}")
os.replace("started.tmp", "started")
deadline = time.time() + 30
while not os.path.exists("release") and time.time() < deadline:
    with open(sys.argv[1], "a") as f:
        f.write("tick\\n")
    time.sleep(0.05)
helper.kill()
with open(sys.argv[1], "a") as f:
    f.write("done\\n")
"""

LEAKY_PY = """\
import os, sys, time


def run(deps, outs, params):
    token = os.environ["TOKEN"]
    print("token=" + token[:9], end="", flush=True)
    time.sleep(0.05)
    print(token[9:], flush=True)
    os.write(2, ("again " + token + "\\n").encode())
    with open("started.tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace("started.tmp", "started")
    deadline = time.time() + 30
    while not os.path.exists("release") and time.time() < deadline:
        with open(outs[0], "a") as f:
            f.write("tick\\n")
        time.sleep(0.05)
    with open(outs[0], "a") as f:
        f.write("done\\n")
"""


@pytest.fixture
def leaky(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """The project, with the secret in the environment `Project.popen` passes on; any
    process a failed test leaves behind is killed afterwards."""
    monkeypatch.setenv("FAULT_TOKEN", CANARY)
    p = workspace(CONFIG, {"leak.py": LEAK_SH, "leaky.py": LEAKY_PY})
    yield p
    for pid in _pids(p) if p.path("started").exists() else []:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _pids(p: Project) -> list[int]:
    return [int(x) for x in p.read("started").split()]


def _wait_for(path: Path, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while not path.exists():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False


def _children(parent: int) -> list[tuple[int, str | None]]:
    """The processes ``parent`` started, each with its start time (a pid is reused)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent:
            found.append((int(entry), process_start_time(int(entry))))
    return found


def _all_dead(pids: list[int], seconds: float = 5) -> bool:
    deadline = time.time() + seconds
    while any(_alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.02)
    return not any(_alive(pid) for pid in pids)


def _files_containing(root: Path, needle: bytes) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and needle in p.read_bytes()
    )


def _start(p: Project, target: str) -> tuple[subprocess.Popen[str], list[int]]:
    """Start ``target`` and wait until its command has started (and, for leak:sh, written
    its first tick: a signal sent before that finds no partial out to keep, a race a
    loaded machine lost)."""
    proc = p.popen("--json", target)
    _wait_for(p.path("started"))
    if target == "leak:sh":  # writes its out in place (a callable's is staged elsewhere)
        _wait_for(p.path("out/sh.txt"))
    return proc, _pids(p)


def _rebuild_is_sane(p: Project, target: str, out: str) -> None:
    """The next build (not waiting: the workspace lock must be free) runs the target again
    and records it; still no secret anywhere."""
    p.path("started").unlink()
    p.write("release", "")
    run = p.mlbuild("--json", "--no-wait", target)
    assert run.code == 0, run.err
    assert run.ran == [target]
    assert p.read(out).endswith("done\n")
    assert target in p.lock_entries()
    assert _files_containing(p.root, CANARY.encode()) == []


@pytest.mark.parametrize(
    "sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"]
)
def test_signal_stops_the_command_group_records_nothing_and_leaks_no_secret(
    leaky: Project, sig: signal.Signals
) -> None:
    p = leaky
    proc, pids = _start(p, "leak:sh")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig, err
    # The command and the helper that ignores SIGTERM: the whole group is gone.
    assert _all_dead(pids), f"still running after {sig.name}: {pids}"
    assert _files_containing(p.root, CANARY.encode()) == []
    assert CANARY not in out + err
    assert "leak:sh" not in p.lock_entries()
    assert not p.path("out/sh.txt").exists()  # the partial out is moved aside
    assert _files_containing(p.path(".mlbuild/failed"), b"tick")
    assert "token=***" in p.read(".mlbuild/logs/" + os.listdir(p.path(".mlbuild/logs"))[0])
    _rebuild_is_sane(p, "leak:sh", "out/sh.txt")


def test_sigterm_stops_a_python_callable_and_leaks_no_secret(leaky: Project) -> None:
    p = leaky
    proc, pids = _start(p, "leak:py")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert _all_dead(pids), "the python worker survived SIGTERM"
    assert _files_containing(p.root, CANARY.encode()) == []
    assert CANARY not in out + err
    assert "leak:py" not in p.lock_entries()
    _rebuild_is_sane(p, "leak:py", "out/py.txt")


@pytest.mark.parametrize("target", ["leak:sh", "leak:py"])
def test_kill_9_of_mlbuild_leaves_no_secret_in_any_file(leaky: Project, target: str) -> None:
    p = leaky
    proc, pids = _start(p, target)
    children = _children(proc.pid)  # its idle loky workers outlive it: killed at the end
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    for pipe in (proc.stdout, proc.stderr):  # a loky worker may hold them: do not wait for EOF
        assert pipe is not None
        pipe.close()
    assert _files_containing(p.root, CANARY.encode()) == []
    # The next build stops the orphaned command before it runs the target again.
    p.path("started").unlink()
    second = p.popen("--json", target)
    _wait_for(p.path("started"))
    assert _all_dead(pids), "the orphaned command survived the next build"
    p.write("release", "")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    assert "left running by an mlbuild that was killed" in out
    assert target in p.lock_entries()
    assert _files_containing(p.root, CANARY.encode()) == []
    for pid, started in children:
        if process_start_time(pid) == started:
            os.kill(pid, signal.SIGKILL)


def test_a_build_started_with_sighup_ignored_survives_a_closed_terminal(
    leaky: Project,
) -> None:
    """``nohup mlbuild``: SIGHUP stays ignored, the build carries on and records."""
    p = leaky
    proc = subprocess.Popen(
        ["nohup", sys.executable, "-m", "mlbuild", "--json", "leak:sh"],
        cwd=p.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(p.path("started"))
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    assert proc.poll() is None
    p.write("release", "")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "leak:sh" in p.lock_entries()
    assert _files_containing(p.root, CANARY.encode()) == []


@settings(max_examples=300, deadline=None)
@given(
    secrets=st.lists(st.text("ab", min_size=4, max_size=7), min_size=1, max_size=3),
    text=st.text("abx\n", max_size=80),
    cuts=st.lists(st.integers(0, 80), max_size=8),
)
def test_a_secret_split_across_reads_is_masked_as_in_one_piece(
    secrets: list[str], text: str, cuts: list[int]
) -> None:
    """However a command's output is cut into reads, the log gets exactly the bytes of
    masking it whole (the overlaps of short secrets over "ab" are the hard cases)."""
    data = text.encode()
    masker = StreamMasker(secrets)
    pieces, start = [], 0
    for cut in sorted({min(c, len(data)) for c in cuts}):
        pieces.append(masker.feed(data[start:cut]))
        start = cut
    pieces.append(masker.feed(data[start:]))
    pieces.append(masker.flush())
    assert b"".join(pieces) == Masker(secrets)(text).encode()


LIBRARY_CALLER = """\
import signal, sys
from mlbuild import Workspace
from mlbuild.interrupts import Terminated

ws = Workspace(sys.argv[1])
signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the caller's own choice for SIGHUP
try:
    ws.build(["stop:me"])
except Terminated as exc:
    print("raised", exc.signum)
print("after", signal.getsignal(signal.SIGTERM) is signal.SIG_DFL,
      signal.getsignal(signal.SIGHUP) is signal.SIG_IGN)
"""


def _library_build(
    workspace: Workspace, caller: str
) -> tuple[Project, subprocess.CompletedProcess[str]]:
    """Run ``caller`` (a Python program building ``stop:me`` through the API) on a target
    whose command sends its parent, that program, SIGTERM and then sleeps for 20 s."""
    p = workspace(
        "targets:\n  stop:me:\n    cmd: kill -TERM $PPID; sleep 20\n    outs: [o.txt]\n",
        {"caller.py": caller},
    )
    run = subprocess.run(
        [sys.executable, "caller.py", str(p.root)],
        cwd=p.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return p, run


def test_library_build_stops_on_sigterm_raises_and_puts_the_handlers_back(
    workspace: Workspace,
) -> None:
    """From Python, SIGTERM during `Workspace.build` stops the job and raises `Terminated`
    (a KeyboardInterrupt) after the orderly stop; the caller's handlers are back after."""
    p, run = _library_build(workspace, LIBRARY_CALLER)
    assert run.stdout.split("\n")[:2] == ["raised 15", "after True True"]
    assert "stop:me" not in p.lock_entries()


# Any thread may receive a signal sent to the process. Here only a helper thread can (the
# main thread blocks SIGTERM, and the threads it starts inherit that), which is what load
# makes happen now and then: the build must still stop at once, not when its job ends.
OTHER_THREAD_CALLER = """\
import signal, sys, threading, time
from mlbuild import Workspace
from mlbuild.interrupts import Terminated

threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
started = time.monotonic()
try:
    Workspace(sys.argv[1]).build(["stop:me"])
except Terminated as exc:
    print("raised", exc.signum, round(time.monotonic() - started, 1))
"""


def test_a_signal_delivered_to_another_thread_stops_the_build_at_once(
    workspace: Workspace,
) -> None:
    p, run = _library_build(workspace, OTHER_THREAD_CALLER)
    raised, signum, seconds = run.stdout.split()
    assert (raised, signum) == ("raised", "15")
    assert float(seconds) < 10, f"the build went on for {seconds} s after SIGTERM"
    assert "stop:me" not in p.lock_entries()
