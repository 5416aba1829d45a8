"""Memory and time of data checks on a large CSV (issue 4: "checks on a 1 GB CSV must not
load more than one copy of it in memory").

Writes a CSV of about ``--size-mb`` megabytes (6 numeric and 2 categorical columns), then,
each in a fresh process, measures peak RSS (VmHWM) and wall time of:

* ``baseline``: importing pandas and numpy only;
* ``read_csv``: ``pandas.read_csv`` of the whole file (what a naive check would do);
* ``checks``: ``mlbuild.checks.inspect_outs`` with a profile and six checks, drift
  included (against a previous profile of the same file).

Usage::

    .venv/bin/python benchmarks/checks_memory.py --size-mb 1024 --out benchmarks/results-checks.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time
mode, path, prev = sys.argv[1], sys.argv[2], sys.argv[3]
import numpy, pandas
t0 = time.perf_counter()
if mode == "read_csv":
    frame = pandas.read_csv(path)
    rows = len(frame)
elif mode == "checks":
    from mlbuild.checks import inspect_outs
    from mlbuild.config import parse_checks
    rel = "data.csv"
    checks = parse_checks([
        {"check": "columns", "columns": {"a": "float", "b": "float", "n": "int", "city": "str"}},
        {"check": "not_null", "columns": ["a", "b"]},
        {"check": "range", "column": "n", "min": 0, "max": 1000},
        {"check": "allowed", "column": "city", "values": ["oslo", "rome", "lima", "kyiv"]},
        {"check": "rows", "min": 1},
        {"check": "drift", "columns": ["a", "city"], "max_psi": 0.2},
    ], [rel])
    previous = json.load(open(prev)) if prev != "-" else {}
    import os
    results, profiles = inspect_outs(os.path.dirname(path), [rel], checks, previous)
    rows = profiles[rel]["rows"]
    assert all(r.passed for r in results), [r.message for r in results if not r.passed]
    json.dump(profiles, open(path + ".profile.json", "w"))
else:
    rows = 0
seconds = time.perf_counter() - t0
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec.
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"mode": mode, "rows": rows, "seconds": round(seconds, 2),
                  "peak_rss_mb": round(hwm / 1024)}))
"""


def write_csv(path: str, size_mb: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    cities = np.array(["oslo", "rome", "lima", "kyiv"])
    target = size_mb * 1024 * 1024
    with open(path, "w", encoding="ascii") as f:
        f.write("a,b,c,d,e,n,city,tag\n")
        while f.tell() < target:
            n = 200_000
            cols = [rng.normal(size=n).round(6) for _ in range(5)]
            ints = rng.integers(0, 1000, size=n)
            city = cities[rng.integers(0, 4, size=n)]
            tag = np.char.add("t", rng.integers(0, 50, size=n).astype(str))
            lines = [
                f"{a},{b},{c},{d},{e},{i},{ct},{tg}"
                for a, b, c, d, e, i, ct, tg in zip(*cols, ints, city, tag, strict=True)
            ]
            f.write("\n".join(lines) + "\n")


def child(mode: str, path: str, prev: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, mode, path, prev], capture_output=True, text=True, check=True
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.csv")
        t0 = time.perf_counter()
        write_csv(path, args.size_mb)
        size = os.path.getsize(path)
        print(f"wrote {size / 2**20:.0f} MiB in {time.perf_counter() - t0:.0f} s", flush=True)
        results = [child("baseline", path, "-"), child("read_csv", path, "-")]
        first = child("checks", path, "-")  # profile only: no previous build to drift from
        with open(path + ".profile.json") as f:
            profile = json.load(f)
        prev = os.path.join(tmp, "prev.json")
        with open(prev, "w") as f:
            json.dump(profile, f)
        results += [first, child("checks", path, prev)]
        results[-1]["mode"] = "checks+drift"
        for r in results:
            print(json.dumps(r), flush=True)
        report = {
            "file_mb": round(size / 2**20),
            "cpu": os.cpu_count(),
            "runs": results,
        }
        if args.out:
            with open(args.out, "w") as f:
                json.dump(report, f, indent=2, sort_keys=True)
                f.write("\n")


if __name__ == "__main__":
    main()
