"""The cost of undeclared-read detection (issue 10, section 2: "measure and document the
overhead; target: under 5% of a training step that reads a CSV").

mlbuild puts ``mlbuild/readhook`` first on ``PYTHONPATH`` for every job, so every Python a
target starts imports that ``sitecustomize``, and its audit hook (``sys.addaudithook``) is
called on every audit event of the process; it logs the workspace files opened, and the
parent reads the log afterwards (``reads.collect`` + ``reads.undeclared``). This measures
what that costs, with the env mlbuild sets (``reads.hook_env`` over ``os.environ``, a fresh
``reads.recording()`` log directory per process) against the same run without it:

* ``step``: a realistic training step as a fresh ``python step.py`` process in a
  workspace: ``pandas.read_csv`` of a generated CSV (``--csv-mb`` MB, 20 float columns and
  a 0/1 label), a scikit-learn ``LogisticRegression`` fit (saga, ``--max-iter`` epochs: a
  fixed amount of work), the model written with ``joblib``. Wall and CPU time of the whole
  process (start-up and imports included: the hook sees their events too), and the
  parent's ``collect`` + ``undeclared``. Every hooked run is checked: the log must show the
  CSV read and the model written, and nothing undeclared. Then ``hook_self``: the same
  step once more with the hook function wrapped in a timer (its own cost calibrated and
  subtracted), which counts the events it is called for and the time spent inside it: a
  direct measure that the load of other processes barely disturbs.
* ``files``: the worst case, one process that opens and reads ``--files`` small files:
  distinct files in the workspace (each logged: one ``write`` per new path), files under
  the venv with the venv outside the workspace (rejected by the first prefix test), and
  the same with the venv inside the workspace (rejected by the ``sys.prefix`` test, as for
  a project's ``.venv``). Timed inside the process, start-up left out: the cost per open.
  And the parent's ``collect`` + ``undeclared`` of that many reads.
* ``events``: code that raises an audit event per object, in-process times: a million
  ``id(x)`` calls (the cost of one hook call, whatever the event), ``joblib.dump`` (a
  pure-Python pickler: ``id`` per object) and ``copy.deepcopy`` of a ``--entries`` dict.
* ``startup``: ``python -c pass``: the import of the hook, compiled at every start when
  no ``.pyc`` can be written (this sandbox sets ``PYTHONDONTWRITEBYTECODE=1``), and with
  cached bytecode, as a pip-installed mlbuild has.

The machine's 2 cores are shared with other work, so a slow moment must not land on one
side only: runs alternate without / with the hook, A-B then B-A in turn (with A always
first, an A/A control of the step showed the second process of a pair using ~0.4 s more
CPU than the first: an order effect that had passed for hook overhead), after an
uncounted warm-up run (page cache, the hook's .pyc). The report gives medians with their
spread (min-max), the median of the paired differences, and CPU time (user + sys of the
child, which the load of other processes disturbs far less than wall time). Overhead is
median(with) - median(without). The small files go to ``--files-dir`` (tmpfs by
default: creating 100,000 files on this machine's disk takes ~40 s).

Usage (about 2.5-3 minutes of CPU with the defaults; longer in wall time on a busy
machine)::

    .venv/bin/python benchmarks/read_audit.py --out benchmarks/results-read-audit.json
    .venv/bin/python benchmarks/read_audit.py --table benchmarks/results-read-audit.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlbuild import reads

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
Sample = dict[str, float]

STEP = r"""
import json, sys, time, warnings
clock = time.process_time  # CPU time of each phase: what other processes disturb least
t0 = clock()
import joblib
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
t1 = clock()
frame = pd.read_csv("data/train.csv")
t2 = clock()
x, y = frame.drop(columns="label").to_numpy(), frame["label"].to_numpy()
warnings.simplefilter("ignore", ConvergenceWarning)  # fixed work: every epoch runs
model = LogisticRegression(solver="saga", max_iter=int(sys.argv[1]), tol=0.0).fit(x, y)
t3 = clock()
joblib.dump(model, "models/model.joblib")
t4 = clock()
print(json.dumps({"import": t1 - t0, "read_csv": t2 - t1, "fit": t3 - t2, "dump": t4 - t3}))
"""

# The step run under the hook as start_in_process loads it, its function wrapped in a timer.
HOOK_SELF = r"""
import importlib.util, json, os, runpy, sys, time
hook_file, log_dir, root, iters = sys.argv[1:]
spec = importlib.util.spec_from_file_location("_mlbuild_readhook", hook_file)
hook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hook)
sys.modules["_mlbuild_readhook"] = hook
clock = time.perf_counter
stats = {"events": 0, "opens": 0, "seconds": 0.0}
def timed(event, args):
    t = clock()
    inner(event, args)
    stats["seconds"] += clock() - t
    stats["events"] += 1
    if event == "open":
        stats["opens"] += 1
# What the timer itself adds to each call: the same wrapper around a no-op.
inner = lambda event, args: None
for _ in range(200_000):
    timed("calibrate", ())
per_call = stats["seconds"] / stats["events"]
stats.update(events=0, opens=0, seconds=0.0)
inner, hook._hook = hook._hook, timed
t0 = clock()
hook.begin(log_dir, root)
sys.argv = ["step.py", iters]
runpy.run_path("step.py", run_name="__main__")
stats["process_s"] = clock() - t0
stats["timer_s"] = per_call * stats["events"]
print(json.dumps(stats))
"""

# Pure-Python code that raises an audit event per object: builtins.id, called by
# copy.deepcopy and by the pure-Python pickler joblib uses, for every object it memoizes.
EVENTS = r"""
import copy, json, sys, time
import joblib
vocab = {f"term{i}": i for i in range(int(sys.argv[1]))}
clock, x, out = time.perf_counter, object(), {}
t = clock()
for _ in range(1_000_000):
    id(x)
out["id_1M"] = clock() - t
t = clock()
joblib.dump(vocab, "models/vocab.joblib")
out["joblib_dump"] = clock() - t
t = clock()
copy.deepcopy(vocab)
out["deepcopy"] = clock() - t
print(json.dumps(out))
"""

OPENS = r"""
import json, sys, time
with open(sys.argv[1], encoding="utf-8") as fh:
    paths = fh.read().split("\n")
t0, c0 = time.perf_counter(), time.process_time()
for path in paths:
    with open(path, "rb") as fh:
        fh.read()
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}))
"""


# --------------------------------------------------------------------------- running


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_child(cmd: Sequence[str], cwd: Path, env: dict[str, str]) -> tuple[Sample, Any]:
    """Wall and CPU seconds of ``cmd`` (one child at a time: RUSAGE_CHILDREN's delta is
    this child's), and the JSON its last output line holds."""
    c0, t0 = children_cpu(), time.perf_counter()
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True)
    sample = {"wall": time.perf_counter() - t0, "cpu": children_cpu() - c0}
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    lines = proc.stdout.strip().splitlines()
    return sample, (json.loads(lines[-1]) if lines else {})


def hooked(
    cmd: Sequence[str], cwd: Path, base: dict[str, str], root: Path, declared: Sequence[str]
) -> tuple[Sample, Any, dict[str, Any]]:
    """Run ``cmd`` as mlbuild runs a job (hook env, fresh log dir), then collect its reads
    as the parent does: the child's times, its JSON, and what the parent found and what
    that cost (``collect_s``, ``undeclared_s``); ``lines``: the lines the hook wrote."""
    with reads.recording() as log_dir:
        env = {**base, **reads.hook_env(log_dir, str(root), {})}
        sample, out = run_child(cmd, cwd, env)
        t0 = time.perf_counter()
        read, written = reads.collect(log_dir, str(root))
        t1 = time.perf_counter()
        found = reads.undeclared(read, written, declared, str(root))
        t2 = time.perf_counter()
        lines = 0
        for name in os.listdir(log_dir):
            with open(os.path.join(log_dir, name), "rb") as fh:
                lines += fh.read().count(b"\n")
    seen = {
        "read": read,
        "written": written,
        "undeclared": found,
        "collect_s": t1 - t0,
        "undeclared_s": t2 - t1,
        "lines": lines,
    }
    return sample, out, seen


def interleave(
    n: int,
    a: Callable[[], Sample],
    b: Callable[[], Sample],
    warm_a: bool = True,
    warm_b: bool = False,
) -> tuple[list[Sample], list[Sample]]:
    """``n`` pairs, A-B then B-A in turn (so that neither side is always the one that starts
    right after the other's exit), after one uncounted run of A if ``warm_a`` (page cache)
    and of B if ``warm_b`` (a .pyc of the hook to write)."""
    if warm_a:
        a()
    if warm_b:
        b()
    xs: list[Sample] = []
    ys: list[Sample] = []
    for i in range(n):
        if i % 2:
            ys.append(b())
            xs.append(a())
        else:
            xs.append(a())
            ys.append(b())
    return xs, ys


def summary(values: Sequence[float], scale: float, digits: int) -> dict[str, Any]:
    """Median and spread of ``values`` (times ``scale``), every sample kept."""
    scaled = [v * scale for v in values]
    return {
        "median": round(statistics.median(scaled), digits),
        "min": round(min(scaled), digits),
        "max": round(max(scaled), digits),
        "samples": [round(v, digits) for v in scaled],
    }


def compare(
    xs: Sequence[Sample], ys: Sequence[Sample], scale: float, digits: int
) -> dict[str, Any]:
    """Without vs with the hook, for each time (wall, CPU...): both summaries (× ``scale``),
    the difference of the medians (and in %), and the median of the A/B differences."""
    out: dict[str, Any] = {}
    for kind in xs[0]:
        a, b = [x[kind] for x in xs], [y[kind] for y in ys]
        ma, mb = statistics.median(a), statistics.median(b)
        out[kind] = {
            "without": summary(a, scale, digits),
            "with": summary(b, scale, digits),
            "overhead": round((mb - ma) * scale, digits + 1),
            "overhead_pct": round((mb / ma - 1) * 100, 2),
            "paired_overhead": round(
                statistics.median(y - x for x, y in zip(a, b, strict=True)) * scale, digits + 1
            ),
        }
    return out


# --------------------------------------------------------------------------- workspaces


def write_csv(path: Path, size_mb: int) -> int:
    """About ``size_mb`` MB: 20 float columns and a label a logistic model can learn."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = int(size_mb * 1_000_000 / 190)  # ~190 bytes a row
    x = rng.normal(size=(rows, 20))
    y = (x @ rng.normal(size=20) + 2 * rng.logistic(size=rows) > 0).astype(int)
    frame = pd.DataFrame(x.round(6), columns=[f"x{i}" for i in range(20)])
    frame["label"] = y
    frame.to_csv(path, index=False)
    return rows


def small_files(root: Path, n: int) -> list[str]:
    """``n`` files of a few bytes in 1000-file directories (an image-folder layout)."""
    paths = []
    for i in range(n):
        d = root / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            d.mkdir(parents=True)
        p = str(d / f"f{i:06d}.txt")
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, b"%d\n" % i)
        os.close(fd)
        paths.append(p)
    return paths


def venv_files(n: int) -> list[str]:
    """``n`` opens of the venv's files under 16 KiB (cycled): the interpreter's own tree."""
    found = []
    for dirpath, dirnames, filenames in os.walk(sys.prefix):
        dirnames.sort()
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) < 16384:
                found.append(p)
    return [found[i % len(found)] for i in range(n)]


# --------------------------------------------------------------------------- benchmarks


def bench_step(python: str, ws: Path, base: dict[str, str], n: int, iters: int) -> dict[str, Any]:
    cmd = [python, "step.py", str(iters)]
    declared = ["step.py", "data/train.csv", "models/model.joblib"]
    phases: dict[str, list[dict[str, float]]] = {"without": [], "with": []}
    parent: list[float] = []

    def without() -> Sample:
        sample, out = run_child(cmd, ws, base)
        phases["without"].append(out)
        return sample

    def with_hook() -> Sample:
        sample, out, seen = hooked(cmd, ws, base, ws, declared)
        if "data/train.csv" not in seen["read"] or seen["written"] != ("models/model.joblib",):
            sys.exit(f"the hook did not record the step's reads and writes: {seen}")
        if seen["undeclared"]:
            sys.exit(f"undeclared reads in the step: {seen['undeclared']}")
        phases["with"].append(out)
        parent.append(seen["collect_s"] + seen["undeclared_s"])
        return sample

    xs, ys = interleave(n, without, with_hook)
    with reads.recording() as log_dir:
        hook_file = os.path.join(reads.HOOK_DIR, "sitecustomize.py")
        _, self_time = run_child(
            [python, "-c", HOOK_SELF, hook_file, log_dir, str(ws), str(iters)], ws, base
        )
    own = self_time["seconds"] - self_time["timer_s"]
    return {
        **compare(xs, ys, 1.0, 3),
        "parent_collect_ms": summary(parent, 1000, 2),
        "phases_cpu_median_s": {  # [0] of "without": the warm-up
            arm: {k: round(statistics.median(r[k] for r in runs[-n:]), 3) for k in runs[0]}
            for arm, runs in phases.items()
        },
        "hook_self": {
            "events": self_time["events"],
            "opens": self_time["opens"],
            "ms": round(own * 1000, 1),
            "timer_ms_subtracted": round(self_time["timer_s"] * 1000, 1),
            "pct_of_process": round(own / self_time["process_s"] * 100, 2),
        },
    }


def bench_files(
    python: str, ws: Path, files_ws: Path, base: dict[str, str], n_files: int, repeats: int
) -> dict[str, Any]:
    """Per-open cost. The small files are a workspace of their own, ``files_ws``; the script
    and file lists live next to ``ws``, outside every root given to the hook."""
    script = ws.parent / "opens.py"
    script.write_text(OPENS, encoding="utf-8")
    t0 = time.perf_counter()
    inside = small_files(files_ws / "files", n_files)
    made = time.perf_counter() - t0
    venv = os.path.realpath(sys.prefix)
    outside = venv_files(n_files)
    sets = {
        # name: (paths, the workspace root given to the hook, declared)
        "workspace": (inside, files_ws, ["files"]),
        "venv_outside_root": (outside, ws, []),
        "venv_inside_root": (outside, Path(os.path.dirname(venv)), []),
    }
    results: dict[str, Any] = {"created_s": round(made, 1)}
    for name, (paths, root, declared) in sets.items():
        listing = ws.parent / f"{name}.txt"
        listing.write_text("\n".join(paths), encoding="utf-8")
        cmd = [python, str(script), str(listing)]
        seen: list[dict[str, Any]] = []

        def without(cmd: list[str] = cmd) -> Sample:
            return dict(run_child(cmd, ws, base)[1])

        def with_hook(
            cmd: list[str] = cmd,
            root: Path = root,
            declared: list[str] = declared,
            seen: list[dict[str, Any]] = seen,
        ) -> Sample:
            _, out, found = hooked(cmd, ws, base, root, declared)
            seen.append(found)
            return dict(out)

        # New files are in memory already; the venv's, once the first venv set has run.
        xs, ys = interleave(repeats, without, with_hook, warm_a=name == "venv_outside_root")
        per_open = [{k: v / len(paths) for k, v in x.items()} for x in xs]
        per_open_b = [{k: v / len(paths) for k, v in y.items()} for y in ys]
        entry: dict[str, Any] = {
            "opens": len(paths),
            "us_per_open": compare(per_open, per_open_b, 1e6, 2),
            "log_lines": seen[-1]["lines"],
            "parent_collect_ms": summary([s["collect_s"] for s in seen], 1000, 1),
            "parent_undeclared_ms": summary([s["undeclared_s"] for s in seen], 1000, 1),
        }
        if name == "workspace":
            if len(seen[-1]["read"]) != len(paths) or seen[-1]["undeclared"]:
                sys.exit(f"the hook logged {len(seen[-1]['read'])} of {len(paths)} reads")
            # The same reads with nothing declared: each one is looked up on disk.
            t0 = time.perf_counter()
            found = reads.undeclared(seen[-1]["read"], seen[-1]["written"], [], str(root))
            entry["parent_undeclared_none_declared_ms"] = round(
                (time.perf_counter() - t0) * 1000, 1
            )
            assert len(found) == len(paths)
        results[name] = entry
        listing.unlink()
    return results


def bench_events(
    python: str, ws: Path, base: dict[str, str], n: int, repeats: int
) -> dict[str, Any]:
    """Code that raises many audit events: each one calls the hook."""
    cmd = [python, "-c", EVENTS, str(n)]
    xs, ys = interleave(
        repeats,
        lambda: dict(run_child(cmd, ws, base)[1]),
        lambda: dict(hooked(cmd, ws, base, ws, [])[1]),
    )
    return {"entries": n, **compare(xs, ys, 1000, 1)}


def bench_startup(python: str, ws: Path, base: dict[str, str], n: int) -> dict[str, Any]:
    cmd = [python, "-c", "pass"]
    modes = {
        # No .pyc can be written: the hook is compiled at every start (this sandbox).
        "no_pyc": {**base, "PYTHONDONTWRITEBYTECODE": "1"},
        # Bytecode cached (as a pip-installed mlbuild has), as benchmarks/run.py does.
        "cached_pyc": {
            **{k: v for k, v in base.items() if k != "PYTHONDONTWRITEBYTECODE"},
            "PYTHONPYCACHEPREFIX": str(WORK / "pycache"),
        },
    }
    results: dict[str, Any] = {}
    for name, env in modes.items():

        def without(env: dict[str, str] = env) -> Sample:
            return run_child(cmd, ws, env)[0]

        def with_hook(env: dict[str, str] = env) -> Sample:
            return hooked(cmd, ws, env, ws, [])[0]

        results[name] = compare(*interleave(n, without, with_hook, warm_b=True), 1000, 1)
    return results


# --------------------------------------------------------------------------- report


def table(report: dict[str, Any]) -> str:
    """The Markdown table of docs/benchmarks.md."""

    def cell(s: dict[str, Any], unit: str) -> str:
        return f"{s['median']} {unit} ({s['min']}–{s['max']})"

    def row(label: str, c: dict[str, Any], unit: str, kind: str) -> str:
        k = c[kind]
        return (
            f"| {label} | {cell(k['without'], unit)} | {cell(k['with'], unit)} | "
            f"{k['overhead']:+} {unit} ({k['overhead_pct']:+.1f}%) | "
            f"{k['paired_overhead']:+} {unit} |"
        )

    cfg, step, files, start = report["config"], report["step"], report["files"], report["startup"]
    n = cfg["files"]
    rows = [
        "| case | without hook | with hook | overhead (medians) | paired |",
        "|---|---:|---:|---:|---:|",
        row(f"training step, wall (n = {cfg['runs']})", step, "s", "wall"),
        row(f"training step, CPU (n = {cfg['runs']})", step, "s", "cpu"),
    ]
    for name, label in (
        ("workspace", f"{n:,} distinct workspace files (each logged)"),
        ("venv_outside_root", f"{n:,} venv files, venv outside the workspace"),
        ("venv_inside_root", f"{n:,} venv files, venv inside the workspace"),
    ):
        for kind in ("wall", "cpu"):
            rows.append(row(f"{label}, {kind} per open", files[name]["us_per_open"], "µs", kind))
    for name, label in (("no_pyc", "no .pyc for the hook"), ("cached_pyc", "cached .pyc")):
        for kind in ("wall", "cpu"):
            rows.append(row(f"`python -c pass`, {label}, {kind}", start[name], "ms", kind))
    ev = report["events"]
    for key, label in (
        ("id_1M", "1,000,000 × `id(x)` (ms = ns per call)"),
        ("joblib_dump", f"`joblib.dump` of a {ev['entries']:,}-entry dict"),
        ("deepcopy", "`copy.deepcopy` of the same dict"),
    ):
        rows.append(row(label, ev, "ms", key))
    w, h = files["workspace"], step["hook_self"]
    ph = step["phases_cpu_median_s"]
    phases = ", ".join(
        f"{k} {ph['without'][k]} → {ph['with'][k]} s" for k in ("import", "read_csv", "fit")
    )
    rows += [
        "",
        f"- CPU time of the step's phases (medians, without → with hook): {phases}",
        f"- time inside the hook function in one step: {h['ms']} ms for {h['events']:,} "
        f"events ({h['opens']:,} opens), {h['pct_of_process']}% of the process "
        "(CPython's cost of calling it comes on top: the `id(x)` row)",
        f"- parent, collect + undeclared: {step['parent_collect_ms']['median']} ms after "
        f"the step; for {n:,} reads, collect {w['parent_collect_ms']['median']} ms + "
        f"undeclared {w['parent_undeclared_ms']['median']} ms (directory declared) or "
        f"{w['parent_undeclared_none_declared_ms']} ms (nothing declared)",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="training steps per arm")
    parser.add_argument("--csv-mb", type=int, default=50)
    parser.add_argument("--max-iter", type=int, default=5, help="saga epochs of the fit")
    parser.add_argument("--files", type=int, default=100_000, help="opens in the worst case")
    parser.add_argument("--file-repeats", type=int, default=3)
    parser.add_argument(
        "--files-dir",
        default="/dev/shm" if os.access("/dev/shm", os.W_OK) else None,
        help="where the small files go (default /dev/shm: creating 100,000 files on a "
        "disk can take longer than the whole benchmark)",
    )
    parser.add_argument("--startup-runs", type=int, default=20)
    parser.add_argument("--entries", type=int, default=100_000, help="dict for joblib/deepcopy")
    parser.add_argument("--event-repeats", type=int, default=3)
    parser.add_argument("--python", default=sys.executable, help="the targets' Python")
    parser.add_argument("--out", default=None, help="results JSON")
    parser.add_argument("--table", default=None, metavar="JSON", help="print a result's table")
    args = parser.parse_args()
    if args.table:
        with open(args.table, encoding="utf-8") as f:
            print(table(json.load(f)))
        return

    WORK.mkdir(exist_ok=True)
    base = dict(os.environ)
    started = time.perf_counter()
    load_before = os.getloadavg()
    # In /tmp, not under the repository: the venv-inside-the-workspace case gives the
    # hook the venv's parent (here the repository) as the workspace root.
    with tempfile.TemporaryDirectory(prefix="read-audit-") as tmp:
        ws = Path(tmp) / "ws"
        (ws / "data").mkdir(parents=True)
        (ws / "models").mkdir()
        (ws / "step.py").write_text(STEP, encoding="utf-8")
        t0 = time.perf_counter()
        rows = write_csv(ws / "data" / "train.csv", args.csv_mb)
        csv_bytes = (ws / "data" / "train.csv").stat().st_size
        print(f"wrote {csv_bytes / 1e6:.0f} MB CSV in {time.perf_counter() - t0:.0f} s", flush=True)
        step = bench_step(args.python, ws, base, args.runs, args.max_iter)
        print(f"step done at {time.perf_counter() - started:.0f} s", flush=True)
        with tempfile.TemporaryDirectory(prefix="read-audit-", dir=args.files_dir) as ftmp:
            files = bench_files(args.python, ws, Path(ftmp), base, args.files, args.file_repeats)
        print(f"files done at {time.perf_counter() - started:.0f} s", flush=True)
        events = bench_events(args.python, ws, base, args.entries, args.event_repeats)
        print(f"events done at {time.perf_counter() - started:.0f} s", flush=True)
        startup = bench_startup(args.python, ws, base, args.startup_runs)

    report = {
        "machine": {
            "cpu": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE"),
        },
        "config": {
            "runs": args.runs,
            "csv_mb": round(csv_bytes / 1e6),
            "csv_rows": rows,
            "max_iter": args.max_iter,
            "files": args.files,
            "file_repeats": args.file_repeats,
            "startup_runs": args.startup_runs,
            "entries": args.entries,
            "event_repeats": args.event_repeats,
        },
        "step": step,
        "files": files,
        "events": events,
        "startup": startup,
        "total_s": round(time.perf_counter() - started),
    }
    print(table(report))
    print(f"total {report['total_s']} s")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, sort_keys=True, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main()
