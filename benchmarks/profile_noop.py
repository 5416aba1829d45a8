"""Profile mlbuild's no-op build: where do the milliseconds go when nothing is stale?

Generates a workspace (see gen.py), builds it once, waits until every out is older than
mlbuild's racy-file window (so the profiled run is a steady-state no-op, not the re-hash
that the run right after a build does), then runs ``mlbuild -j 2`` in-process under cProfile
and prints the top functions, plus the share of time spent in the garbage collector.

    .venv/bin/python benchmarks/profile_noop.py --shape chain --n 10000 [--top 30]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gen
from run import PYC_ENV, RACY_WAIT, child_env

HERE = Path(__file__).resolve().parent
MLBUILD = Path(sys.prefix) / "bin" / "mlbuild"


def noop_in_process() -> None:
    """One ``mlbuild -j 2`` in this process (the CLI exits; the exit is swallowed)."""
    from mlbuild.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main(["-j", "2"])


def gc_seconds(fn: Callable[[], None]) -> tuple[float, float]:
    """Wall time of ``fn()`` and the part of it spent in gc callbacks' start..stop."""
    spent = 0.0
    started = 0.0

    def callback(phase: str, info: dict[str, int]) -> None:
        nonlocal spent, started
        if phase == "start":
            started = time.perf_counter()
        else:
            spent += time.perf_counter() - started

    gc.callbacks.append(callback)
    try:
        t0 = time.perf_counter()
        fn()
        total = time.perf_counter() - t0
    finally:
        gc.callbacks.remove(callback)
    return total, spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=gen.SHAPES, default="chain")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)

    ws = gen.generate(HERE / "_work" / "profile" / f"{args.shape}-{args.n}", args.shape, args.n)
    env = child_env(PYC_ENV)
    build = [str(MLBUILD), "-j", "2"]
    subprocess.run(build, cwd=ws, check=True, stdout=subprocess.DEVNULL, env=env)
    time.sleep(RACY_WAIT)  # every out is now older than the racy window
    os.chdir(ws)
    t0 = time.perf_counter()
    subprocess.run(build, check=True, stdout=subprocess.DEVNULL, env=env)
    print(f"first no-op after the build (re-hashes racy outs): {time.perf_counter() - t0:.3f} s")
    t0 = time.perf_counter()
    subprocess.run(build, check=True, stdout=subprocess.DEVNULL, env=env)
    print(f"steady no-op, separate process:                     {time.perf_counter() - t0:.3f} s")

    noop_in_process()  # imports (and, without .pyc, compiling) are not what we profile

    total, in_gc = gc_seconds(noop_in_process)
    print(
        f"in-process no-op (imports already done): {total:.3f} s, "
        f"of which garbage collection {in_gc:.3f} s"
    )
    profiler = cProfile.Profile()
    profiler.runcall(noop_in_process)
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
