"""Benchmark mlbuild against make, ninja, DVC and Snakemake on generated pipelines.

For each tool x shape (chain, wide; see gen.py) x N it measures wall time (median of
repeated runs) of:

``cold``   a fresh copy of the generated workspace, nothing built, empty cache (``-j 2``)
``noop``   the same command again, nothing changed: run 0 right after the cold build (the
           "2nd run", where mlbuild re-hashes its just-written "racy" outs), run 1 after
           a 2.5 s wait, and the median of runs 2+ (the steady state)
``touch``  the mtime of one source set to now, content unchanged (make reruns, hashers don't)
``leaf``   one source edited to new content (``src/s0.txt``: the start of the chain, or one
           leaf of the wide set), then a rebuild; every repeat writes content never seen
           before, so mlbuild cannot restore it from its cache

and, for mlbuild alone, ``status`` at every N (cost per target), start-up (``mlbuild --help``,
a 100-target no-op, with and without .pyc), and the throughput of
`mlbuild.digest.hash_file` on a 1 GiB file from the page cache (deleted afterwards).

mlbuild runs with cached bytecode (``PYC_ENV``), as an installed package would. Scenarios
repeat up to ``--repeats`` times, but stop once they took ``--budget`` seconds (at least one
run), so the large cases run once or twice; the JSON keeps every sample.

Every build is checked: exit code 0, and the number of outs rewritten (``ran``: outs whose
inode or mtime changed) is recorded next to the times, so a tool that did not do the work
shows. A command that exceeds its timeout is killed (its process group) and recorded as
such; a DVC / Snakemake workspace whose cold build timed out is brought to the built state
another way (``prime``: make builds the outs, then ``dvc commit`` / ``snakemake --touch``
records them) so that its no-op, touch and leaf can still be measured (and a chain's
one-leaf change, which reruns every target, is not attempted).

Raw results go to ``benchmarks/results.json``; a Markdown table is printed. Usage::

    .venv/bin/python benchmarks/run.py            # full: N = 100, 1000, 10000 (~20 min)
    .venv/bin/python benchmarks/run.py --quick    # N = 100, 1000; no DVC/Snakemake; < 3 min
    .venv/bin/python benchmarks/run.py --table benchmarks/results.json   # re-print a table

DVC and Snakemake are not project dependencies: install them in a separate venv
(``python3 -m venv /tmp/bench-venv && /tmp/bench-venv/bin/pip install dvc snakemake``) and
pass ``--other-venv /tmp/bench-venv`` (the default; skipped if missing).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gen

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / "_work"
VENV_BIN = Path(sys.prefix) / "bin"
MLBUILD = VENV_BIN / "mlbuild"
GIB = 1 << 30
RACY_WAIT = 2.5  # seconds: mlbuild re-hashes files written less than 2 s before hashing
#: mlbuild runs with cached bytecode, as an installed package does. This sandbox exports
#: PYTHONDONTWRITEBYTECODE=1, and an editable install has no .pyc of its own, so without
#: this every run would compile mlbuild's sources (~25 ms). The cache lives under _work/.
PYC_ENV: dict[str, str | None] = {
    "PYTHONDONTWRITEBYTECODE": None,
    "PYTHONPYCACHEPREFIX": str(WORK / "pycache"),
}
#: The inherited environment with bytecode writing off: what this sandbox does.
NO_PYC_ENV: dict[str, str | None] = {"PYTHONDONTWRITEBYTECODE": "1"}
SCENARIOS = ("cold", "noop", "touch", "leaf")
MAIN_TOOLS = ("mlbuild", "make", "ninja")
OTHER_TOOLS = ("dvc", "snakemake")


# --------------------------------------------------------------------------- tools


@dataclass(frozen=True)
class Tool:
    """How to run one build tool in a workspace."""

    name: str
    build: tuple[str, ...]
    setup: tuple[tuple[str, ...], ...] = ()  # run once after copying (not timed)
    prime: tuple[tuple[str, ...], ...] = ()  # reach the built state without the tool's run
    version_cmd: tuple[str, ...] = ()
    note: str = ""
    env: dict[str, str | None] = field(default_factory=dict)  # None: unset the variable


def make_tools(other_bin: Path) -> dict[str, Tool]:
    dvc = str(other_bin / "dvc")
    snakemake = str(other_bin / "snakemake")
    return {
        "mlbuild": Tool(
            "mlbuild",
            (str(MLBUILD), "-j", "2"),
            version_cmd=(str(MLBUILD), "--version"),
            env=PYC_ENV,
        ),
        "make": Tool("make", ("make", "-j", "2"), version_cmd=("make", "--version")),
        "ninja": Tool("ninja", ("ninja", "-j", "2"), version_cmd=("ninja", "--version")),
        "dvc": Tool(
            "dvc",
            (dvc, "repro", "-q"),
            setup=((dvc, "init", "--no-scm", "-q"),),
            prime=(("make", "-j", "2"), (dvc, "commit", "-f", "-q")),
            version_cmd=(dvc, "--version"),
            note="dvc repro has no -j: stages run one at a time",
            env={"DVC_NO_ANALYTICS": "1"},
        ),
        "snakemake": Tool(
            "snakemake",
            (snakemake, "--cores", "2", "-q"),
            prime=(("make", "-j", "2"), (snakemake, "--cores", "2", "-q", "--touch")),
            version_cmd=(snakemake, "--version"),
        ),
    }


def tool_available(tool: Tool) -> bool:
    exe = tool.build[0]
    return os.path.isfile(exe) if os.sep in exe else shutil.which(exe) is not None


def tool_version(tool: Tool) -> str:
    try:
        proc = subprocess.run(
            tool.version_cmd, capture_output=True, text=True, timeout=60, env=child_env(tool.env)
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0] if text else "?"


# --------------------------------------------------------------------------- running


@dataclass
class Run:
    """One timed command."""

    seconds: float
    rc: int | None  # None: killed after the timeout
    ran: int = 0  # outs rewritten by this run


def run_cmd(
    cmd: Sequence[str],
    cwd: Path,
    log: Path,
    timeout: float,
    env: dict[str, str | None] | None = None,
) -> Run:
    """Run ``cmd`` in ``cwd`` with output to ``log``; kill its process group on timeout."""
    full_env = child_env(env)
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(cmd)}\n".encode())
        out.flush()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
        )
        # Not proc.wait(timeout=...): on Python < 3.12 that polls with sleeps of up to 50 ms,
        # which would round every measurement up to the next poll. A blocking waitpid is
        # exact; a timer thread kills the process group if it runs too long.
        killed = threading.Event()

        def kill() -> None:
            killed.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            code = proc.wait()
        finally:
            timer.cancel()
        seconds = time.perf_counter() - t0
    return Run(seconds, None if killed.is_set() else code)


def child_env(changes: dict[str, str | None] | None) -> dict[str, str]:
    """``os.environ`` with ``changes`` applied (a None value removes the variable)."""
    env = dict(os.environ)
    for key, value in (changes or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def snapshot(ws: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of every out: a rewritten out shows as a change."""
    found: dict[str, tuple[int, int]] = {}
    with os.scandir(ws / "out") as it:
        for entry in it:
            st = entry.stat(follow_symlinks=False)
            found[entry.name] = (st.st_ino, st.st_mtime_ns)
    return found


def changed(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> int:
    return sum(1 for name, sig in after.items() if before.get(name) != sig)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --------------------------------------------------------------------------- one cell


@dataclass
class Options:
    repeats: int
    budget: float  # stop repeating a scenario once its runs took this long (>= 1 run)
    other_budget: float  # the same for DVC and Snakemake
    timeout: float
    other_timeout: float
    keep: bool


def _repeat(
    step: Callable[[int], Run], repeats: int, budget: float, min_runs: int = 1
) -> tuple[list[Run], bool]:
    """Call ``step(i)`` up to ``repeats`` times, at least ``min_runs`` times, and no more once
    the runs took ``budget`` seconds; stop on a failure."""
    runs: list[Run] = []
    spent = 0.0
    for i in range(repeats):
        run = step(i)
        runs.append(run)
        spent += run.seconds
        if run.rc != 0:
            return runs, False
        if spent >= budget and len(runs) >= min_runs:
            break
    return runs, True


def _summary(runs: list[Run], timeout: float, *, skip: int = 0) -> dict[str, Any]:
    """Times of a scenario; the median leaves out the first ``skip`` runs (but not all)."""
    ok = [r for r in runs if r.rc == 0]
    counted = ok[min(skip, len(ok) - 1) :] if len(ok) == len(runs) else ok
    result: dict[str, Any] = {
        "runs": len(runs),
        "seconds": [round(r.seconds, 6) for r in runs],
        "median": round(median([r.seconds for r in counted]), 6) if counted else None,
        "ran": [r.ran for r in runs],
        "ok": len(ok) == len(runs),
    }
    if any(r.rc is None for r in runs):
        result["timeout"] = timeout
    elif not result["ok"]:
        result["exit_codes"] = [r.rc for r in runs]
    return result


def bench_cell(tool: Tool, shape: str, n: int, template: Path, options: Options) -> dict[str, Any]:
    """Every scenario of one tool x shape x N, in a copy of the generated ``template``."""
    ws = WORK / "runs" / f"{tool.name}-{shape}-{n}"
    log = WORK / "logs" / f"{tool.name}-{shape}-{n}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"")
    main = tool.name in MAIN_TOOLS
    timeout = options.timeout if main else options.other_timeout
    budget = options.budget if main else options.other_budget
    cell: dict[str, Any] = {"tool": tool.name, "shape": shape, "n": n, "scenarios": {}}
    if tool.note:
        cell["note"] = tool.note

    def fresh() -> None:
        if ws.exists():
            shutil.rmtree(ws)
        shutil.copytree(template, ws, symlinks=True)
        for cmd in tool.setup:
            setup = run_cmd(cmd, ws, log, timeout, tool.env)
            if setup.rc != 0:
                raise RuntimeError(f"{tool.name}: setup {cmd} failed; see {log}")

    def build() -> Run:
        before = snapshot(ws)
        run = run_cmd(tool.build, ws, log, timeout, tool.env)
        run.ran = changed(before, snapshot(ws))
        return run

    def cold(_: int) -> Run:
        fresh()
        return build()

    def noop(i: int) -> Run:
        # Run 0 follows the cold build at once: the "2nd run". mlbuild re-hashes every out
        # there (each was hashed within 2 s of being written: "racy"), and again in every run
        # until one runs 2 s after the outs were written. Run 1 waits for that; the median
        # ("no-op") is taken over runs 2+: the steady state.
        if i == 1:
            time.sleep(RACY_WAIT)
        return build()

    source = ws / gen.sources(shape, n)[0]

    def touch(_: int) -> Run:
        now = time.time_ns()
        os.utime(source, ns=(now, now))
        return build()

    def leaf(i: int) -> Run:
        source.write_text(f"{gen.source_text(gen.sources(shape, n)[0])}edit {i} {time.time_ns()}\n")
        return build()

    steps: dict[str, Callable[[int], Run]] = {
        "cold": cold,
        "noop": noop,
        "touch": touch,
        "leaf": leaf,
    }
    if tool.name == "mlbuild":
        status_cmd = (str(MLBUILD), "status")

        def status(i: int) -> Run:
            if i == 0:
                time.sleep(RACY_WAIT)  # status does not save the memo: measure it steady
            return run_cmd(status_cmd, ws, log, timeout, tool.env)

        steps["status"] = status

    cold_timed_out = False
    for scenario, step in steps.items():
        if scenario == "leaf" and shape == "chain" and cold_timed_out:
            # A one-leaf change of a chain reruns every target: the cold build's work, which
            # just exceeded the timeout. Waiting for the timeout again would teach nothing.
            cell["scenarios"][scenario] = {
                "runs": 0,
                "seconds": [],
                "median": None,
                "ran": [],
                "ok": False,
                "timeout": timeout,
                "skipped": "the cold build timed out; this reruns every target",
            }
            continue
        if scenario == "noop":  # + the 2nd run and the settling run (see noop)
            min_runs = 3 if tool.name == "mlbuild" else 1
            runs, ok = _repeat(step, options.repeats + 2, budget, min_runs)
        else:
            runs, ok = _repeat(step, options.repeats, budget)
        cell["scenarios"][scenario] = _summary(runs, timeout, skip=2 if scenario == "noop" else 0)
        if ok:
            continue
        if scenario == "cold" and runs[-1].rc is None and tool.prime:
            cold_timed_out = True
            # Too slow to build within the timeout: reach the built state another way.
            fresh()
            for cmd in tool.prime:
                if run_cmd(cmd, ws, log, 3600, tool.env).rc != 0:
                    cell["error"] = f"prime {cmd} failed; see {os.path.relpath(log, REPO)}"
                    return cell
            cell["primed"] = "; ".join(" ".join([Path(c[0]).name, *c[1:]]) for c in tool.prime)
            continue
        what = f"timed out after {timeout:.0f} s" if runs[-1].rc is None else "failed"
        cell["error"] = f"{scenario} {what}; see {os.path.relpath(log, REPO)}"
        break
    if not options.keep:
        shutil.rmtree(ws, ignore_errors=True)
    return cell


# --------------------------------------------------------------------------- mlbuild only


def bench_startup(repeats: int) -> dict[str, Any]:
    """Wall time of ``mlbuild --help``, of a no-op on a built 100-target chain, and of a bare
    interpreter start; mlbuild with cached bytecode and, as this sandbox runs it, without.

    The bytecode cache is filled first (a build, status and --help in a scratch workspace).
    """
    ws = gen.generate(WORK / "startup-chain-100", "chain", 100, ("mlbuild",))
    for cmd in ([str(MLBUILD), "-j", "2"], [str(MLBUILD), "status"], [str(MLBUILD), "--help"]):
        subprocess.run(cmd, cwd=ws, check=True, stdout=subprocess.DEVNULL, env=child_env(PYC_ENV))
    time.sleep(RACY_WAIT)
    python = str(VENV_BIN / "python")
    cases: list[tuple[str, list[str], dict[str, str | None]]] = [
        ("mlbuild --help", [str(MLBUILD), "--help"], PYC_ENV),
        ("mlbuild no-op, 100-target chain", [str(MLBUILD), "-j", "2"], PYC_ENV),
        ("python -c pass", [python, "-c", "pass"], PYC_ENV),
        ("python -c 'import mlbuild.cli'", [python, "-c", "import mlbuild.cli"], PYC_ENV),
        ("mlbuild --help, no .pyc for mlbuild", [str(MLBUILD), "--help"], NO_PYC_ENV),
        (
            "mlbuild no-op, 100-target chain, no .pyc for mlbuild",
            [str(MLBUILD), "-j", "2"],
            NO_PYC_ENV,
        ),
    ]
    out: dict[str, Any] = {
        "mlbuild/__pycache__ exists": (REPO / "mlbuild" / "__pycache__").is_dir(),
    }
    for label, cmd, env in cases:
        full_env = child_env(env)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ws, check=True, stdout=subprocess.DEVNULL, env=full_env)
            times.append(time.perf_counter() - t0)
        out[label] = {"seconds": [round(t, 6) for t in times], "median": round(median(times), 6)}
    shutil.rmtree(ws, ignore_errors=True)
    return out


def _timed(fn: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def bench_hash(repeats: int) -> dict[str, Any]:
    """GiB/s of hash_file on a 1 GiB file already in the page cache (deleted afterwards).

    Also measured, to locate a bottleneck: the same hashes fed by ``readinto`` into one reused
    1 MiB buffer (no mmap), and a plain read of the file.
    """
    import hashlib

    import xxhash

    from mlbuild.digest import hash_file

    path = WORK / "hash-1GiB.bin"
    WORK.mkdir(parents=True, exist_ok=True)
    block = os.urandom(64 << 20)
    try:
        with open(path, "wb") as f:
            for _ in range(GIB // len(block)):
                f.write(block)
        del block
        buf = bytearray(1 << 20)
        view = memoryview(buf)

        def stream(*hashers: Any) -> None:
            with open(path, "rb", buffering=0) as f:
                while True:
                    got = f.readinto(buf)
                    if not got:
                        break
                    for h in hashers:
                        h.update(view[:got])

        stream()  # warm the page cache
        cases: dict[str, Callable[[], object]] = {
            "hash_file xxh3 (want_sha256=False)": lambda: hash_file(path, want_sha256=False),
            "hash_file xxh3+sha256 (want_sha256=True)": lambda: hash_file(path, want_sha256=True),
            "reference: read only (readinto 1 MiB)": lambda: stream(),
            "reference: xxh3 via readinto 1 MiB": lambda: stream(xxhash.xxh3_128()),
            "reference: sha256 via readinto 1 MiB": lambda: stream(hashlib.sha256()),
        }
        out: dict[str, Any] = {"file_bytes": GIB}
        for label, fn in cases.items():
            times = _timed(fn, repeats)
            out[label] = {
                "seconds": [round(t, 6) for t in times],
                "gib_per_s": round(1 / median(times), 3),
            }
        # The fast path must hash every byte: compare with the plain streaming digests.
        xh, sh = xxhash.xxh3_128(), hashlib.sha256()
        stream(xh, sh)
        got = hash_file(path, want_sha256=True)
        out["digests_match"] = (got.xxh, got.sha256) == (
            "xxh3-128:" + xh.hexdigest(),
            "sha256:" + sh.hexdigest(),
        )
        return out
    finally:
        path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    fs = "?"
    try:
        best = ""
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mnt, kind = line.split()[:3]
            if str(WORK).startswith(mnt) and len(mnt) >= len(best):
                best, fs = mnt, f"{kind} ({dev} on {mnt})"
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "filesystem": fs,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1),
    }


def git_revision() -> str:
    """HEAD of the repository, with ``-dirty`` when mlbuild/ has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "mlbuild"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "?"
    return (head or "?") + ("-dirty" if dirty else "")


# --------------------------------------------------------------------------- report


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _cell_text(s: dict[str, Any] | None, *, first: bool = False) -> str:
    if s is None:
        return "-"
    if "skipped" in s:
        return f"> {s['timeout']:.0f} s (not run)"
    if "timeout" in s:
        return f"> {s['timeout']:.0f} s (killed)"
    if not s["ok"]:
        return "failed"
    return fmt_seconds(s["seconds"][0] if first else s["median"])


def _ran_text(sc: dict[str, Any]) -> str:
    return "/".join(str(sc[s]["ran"][-1]) if s in sc and sc[s]["ran"] else "-" for s in SCENARIOS)


def table(results: dict[str, Any]) -> str:
    lines = [
        "| tool | shape | N | cold | 2nd run | no-op | touch-only | one-leaf change "
        "| outs rewritten c/n/t/l | runs c/n/t/l |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for cell in results["cells"]:
        sc = cell["scenarios"]
        runs = "/".join(str(sc[s]["runs"]) if s in sc else "0" for s in SCENARIOS)
        primed = " (primed)" if cell.get("primed") else ""
        lines.append(
            f"| {cell['tool']} | {cell['shape']} | {cell['n']} | {_cell_text(sc.get('cold'))} | "
            f"{_cell_text(sc.get('noop'), first=True)}{primed} | {_cell_text(sc.get('noop'))} | "
            f"{_cell_text(sc.get('touch'))} | {_cell_text(sc.get('leaf'))} | {_ran_text(sc)} | "
            f"{runs} |"
        )
    status = [c for c in results["cells"] if "status" in c["scenarios"]]
    if status:
        lines += [
            "",
            "| mlbuild status | N | targets | median | per target |",
            "|---|---:|---:|---:|---:|",
        ]
        for c in status:
            s = c["scenarios"]["status"]
            if s["median"] is None:
                continue
            count = c["targets"]
            lines.append(
                f"| {c['shape']} | {c['n']} | {count} | {fmt_seconds(s['median'])} | "
                f"{s['median'] / count * 1000:.3f} ms |"
            )
    if results.get("startup"):
        lines += ["", "| startup | median |", "|---|---:|"]
        for label, v in results["startup"].items():
            if isinstance(v, dict):
                lines.append(f"| {label} | {fmt_seconds(v['median'])} |")
    if results.get("hash"):
        lines += ["", "| hashing 1 GiB from page cache | GiB/s |", "|---|---:|"]
        for label, v in results["hash"].items():
            if isinstance(v, dict):
                lines.append(f"| {label} | {v['gib_per_s']:.2f} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def write_results(
    results: dict[str, Any], out: Path, started: float, render: Callable[[dict[str, Any]], str]
) -> int:
    """Stamp the run's length and the load at its end, write ``out`` and print the table
    (every benchmark script ends this way, so their JSON files have the same fields)."""
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    results["loadavg_end"] = os.getloadavg()
    out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(render(results))
    print(f"\nwrote {os.path.relpath(out)} in {results['total_seconds']} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 100, 1000; 3 repeats")
    parser.add_argument("--sizes", help="comma-separated N (default 100,1000,10000)")
    parser.add_argument("--other-sizes", default="100,1000", help="N for DVC and Snakemake")
    parser.add_argument("--shapes", default="chain,wide")
    parser.add_argument(
        "--tools", help=f"comma-separated subset of {','.join(gen.TOOLS)} (default: all found)"
    )
    parser.add_argument("--repeats", type=int, help="max runs per scenario (default 5; quick 3)")
    parser.add_argument(
        "--budget", type=float, help="seconds per scenario after which repeats stop (default 15)"
    )
    parser.add_argument(
        "--other-budget", type=float, help="--budget for DVC and Snakemake (default 10)"
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="per command: mlbuild/make/ninja"
    )
    parser.add_argument(
        "--other-timeout", type=float, default=45, help="per command: DVC and Snakemake"
    )
    parser.add_argument("--other-venv", type=Path, default=Path("/tmp/bench-venv"))
    parser.add_argument("--no-hash", action="store_true", help="skip the 1 GiB hashing test")
    parser.add_argument("--keep", action="store_true", help="keep workspaces in _work/runs")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument("--table", type=Path, metavar="JSON", help="print the table of a result")
    args = parser.parse_args(argv)

    if args.table:
        print(table(json.loads(args.table.read_text())))
        return 0
    if not MLBUILD.exists():
        parser.error(f"{MLBUILD} not found: run with the project venv's python")

    sizes = [
        int(x) for x in (args.sizes or ("100,1000" if args.quick else "100,1000,10000")).split(",")
    ]
    other_sizes = {int(x) for x in args.other_sizes.split(",") if x}
    shapes = [s for s in args.shapes.split(",") if s]
    repeats = args.repeats or (3 if args.quick else 5)
    budget = args.budget if args.budget is not None else (6.0 if args.quick else 15.0)
    other_budget = args.other_budget if args.other_budget is not None else min(budget, 10.0)
    options = Options(repeats, budget, other_budget, args.timeout, args.other_timeout, args.keep)
    tools = make_tools(args.other_venv / "bin")
    if args.tools:
        wanted = [t for t in args.tools.split(",") if t]
    else:
        wanted = list(MAIN_TOOLS) if args.quick else list(gen.TOOLS)
    missing = [t for t in wanted if t not in tools or not tool_available(tools[t])]
    if missing:
        print(f"skipping (not installed): {', '.join(missing)}", file=sys.stderr)
    chosen = [tools[t] for t in wanted if t not in missing]

    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else argv,
        "machine": machine(),
        "mlbuild_git": git_revision(),
        "loadavg_start": os.getloadavg(),
        "versions": {t.name: tool_version(t) for t in chosen},
        "settings": asdict(options) | {"sizes": sizes, "other_sizes": sorted(other_sizes)},
        "skipped_tools": missing,
        "cells": [],
    }
    if os.getloadavg()[0] > 0.5:
        print(
            f"warning: load average {os.getloadavg()[0]:.2f} at start: something else is "
            "running; the numbers will be noisy",
            file=sys.stderr,
        )
    WORK.mkdir(parents=True, exist_ok=True)
    results["startup"] = bench_startup(5 if args.quick else 10)
    for label, v in results["startup"].items():
        if isinstance(v, dict):
            print(f"{label}: {fmt_seconds(v['median'])}", flush=True)
    for n in sizes:
        for shape in shapes:
            template = gen.generate(WORK / "templates" / f"{shape}-{n}", shape, n)
            for tool in chosen:
                if tool.name in OTHER_TOOLS and n not in other_sizes:
                    continue
                t0 = time.perf_counter()
                cell = bench_cell(tool, shape, n, template, options)
                cell["wall_seconds"] = round(time.perf_counter() - t0, 1)
                cell["targets"] = n + (1 if shape == "wide" else 0)
                cell["loadavg_end"] = os.getloadavg()[0]
                results["cells"].append(cell)
                sc = cell["scenarios"]
                print(
                    f"{tool.name:9} {shape:5} {n:>6}: "
                    + ", ".join(
                        f"{s} {_cell_text(sc.get(s))}" for s in (*SCENARIOS, "status") if s in sc
                    )
                    + f"; 2nd run {_cell_text(sc.get('noop'), first=True)}"
                    + f"; outs rewritten {_ran_text(sc)}"
                    + (f"; primed: {cell['primed']}" if "primed" in cell else "")
                    + (f"  [{cell['error']}]" if "error" in cell else "")
                    + f"  ({cell['wall_seconds']} s)",
                    flush=True,
                )
    if not args.no_hash:
        results["hash"] = bench_hash(3)
        for label, v in results["hash"].items():
            if isinstance(v, dict):
                print(f"{label}: {v['gib_per_s']:.2f} GiB/s", flush=True)
        print(f"digests match the streaming reference: {results['hash']['digests_match']}")
    return write_results(results, args.out, started, table)


if __name__ == "__main__":
    raise SystemExit(main())
