"""The data-heavy benchmark of issue 13: mlbuild, DVC and the bare commands on one dataset.

The workspace (written under ``benchmarks/_work/datascale/``) has four targets / stages,
the same commands in ``mlbuild.yaml``, ``dvc.yaml`` and two shell scripts:

``images``  ``make_files.py N data/images``: N files of ~1 KiB, distinct contents, in
            100 subdirectories (``data/images/000/img000000.bin`` ...), as an image dataset
``big``     ``make_big.py BYTES data/big.bin``: one large file (default 4 GiB) of
            deterministic bytes (1 MiB blocks, each numbered), so every tool sees the same
``count``   ``count_files.py data/images out/count.txt``: reads every file of the
            directory (count, bytes, crc32): a consumer of the directory
``bigsum``  ``tail -c 1048576 data/big.bin | cksum > out/big.cksum``: a consumer of the big
            file that reads little of it, so that a tool's own handling of the 4 GiB (hash,
            copy into its cache) is not hidden behind a slow consumer

Cases, each timed as whole processes (``time.perf_counter`` around the command, via
``run.run_cmd``: timeout, process-group kill):

``cold``      a fresh workspace (scripts and configs only; empty cache), built. ``bare``:
              ``bare.sh`` (the four commands one after another) and ``bare-j2.sh`` (the two
              producer -> consumer chains in parallel: what ``-j 2`` can do at best), and
              ``bare-j2.sh && sync`` (the same, paying for the writeback of the data, which
              the tools' fsyncs pay for in part). mlbuild ``-j 2``; DVC ``dvc repro`` (no -j:
              stages one at a time) after ``dvc init --no-scm``
``noop 1st``  the same build again right after the cold build (mlbuild re-hashes outs
              written less than 2 s before they were hashed: "racy")
``noop``      then, after a 2.5 s wait, the build again (median of ``--repeats``)
``status``    ``mlbuild status`` / ``dvc status``
``touch``     the mtime of one file of the N set to now (content unchanged), then a rebuild
``change``    one file of the N given new content (different at every repeat), then a
              rebuild: the tool notices the out was modified and restores it (mlbuild,
              from its cache) or reruns the stage (DVC)
``disk``      ``du -sb`` of the cache (``.mlbuild/`` resp. ``.dvc/cache``) and of the data
              (``data/`` + ``out/``), and of both in one ``du`` call, which counts a
              hard-linked file once: extra = both - data. Reflinks are invisible to du
              (both copies are counted); the free space of the filesystem before and after the
              cold build is recorded too, but other processes write the same disk
``hardlink``  the variants ``mlbuild-hardlink`` (``cache: {link: [reflink, hardlink, copy]}``)
              and ``dvc-hardlink`` (``dvc config cache.type reflink,hardlink,copy``): on
              ext4 both hardlink. Cold build, disk, no-op and one changed file (replaced:
              removed and written anew, since a hardlinked out is read-only), one sample
              each; ``--no-links`` skips them
``rss``       peak RSS (``/usr/bin/time -f %M``) of every mlbuild and DVC build and status
``push/pull`` ``mlbuild push`` of the built workspace to a new ``file://`` remote, then
              ``mlbuild pull`` into a fresh clone (the configs, scripts and lock file, as a git
              clone has: no data, no cache); the same with ``dvc push`` / ``dvc pull`` (a
              local-directory remote, ``dvc remote add -d``). Objects/s and MB/s (10^6
              bytes) over the whole command. With ``--s3``: the same against a moto S3 server
              started here from the project venv (``python -m moto.server``; DVC needs the
              ``dvc-s3`` plugin in its venv, else n/a)

After every build the harness records what the tool said it did (mlbuild's ``done:`` line;
DVC's "Running stage" / "didn't change" lines) and, tool-independently, how many files of
``data/`` and ``out/`` were rewritten (inode or mtime changed): "the whole directory was
restored" and "one file was restored" show apart. Every build is checked (exit 0, outs equal
to the bare commands' outs after the cold build).

The page cache is NOT dropped (that needs root on the VM): every number is warm-cache, and
the data written by a cold build is mostly still dirty in memory when the command ends.
``os.sync()`` runs (untimed) before every cold build and transfer, so that one command does
not pay for the writeback of the previous one.

Usage (the project venv's python; DVC from ``--other-venv``, default ``/tmp/bench-venv``,
skipped with a note if missing)::

    .venv/bin/python benchmarks/datascale.py                     # 100,000 files + 4 GiB
    .venv/bin/python benchmarks/datascale.py --files 20000 --big-gib 1
    .venv/bin/python benchmarks/datascale.py --quick   # 2000 files, 32 MiB, 1 repeat, < 60 s
    .venv/bin/python benchmarks/datascale.py --s3                # also push/pull to moto S3
    .venv/bin/python benchmarks/datascale.py --table benchmarks/results-datascale.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import remote_dask  # benchmarks/remote_dask.py: free_port, wait_port, s3_client, AWS_ENV
import run as harness  # benchmarks/run.py: run_cmd, child_env, PYC_ENV, machine, ...

HERE = harness.HERE
WORK = harness.WORK / "datascale"
MLBUILD = str(harness.MLBUILD)
GIB = 1 << 30
MIB = 1 << 20
SUBDIRS = 100
FILE_BYTES = 1024
TIME = "/usr/bin/time"
DVC_ENV: dict[str, str | None] = {"DVC_NO_ANALYTICS": "1", **remote_dask.AWS_ENV}
ML_ENV: dict[str, str | None] = {**harness.PYC_ENV, **remote_dask.AWS_ENV}
BUCKET = remote_dask.BUCKET
TOOLS = ("bare", "mlbuild", "dvc")

# --------------------------------------------------------------------------- workspace

MAKE_FILES = f"""\
import os, sys
n, out = int(sys.argv[1]), sys.argv[2]
dirs = max(1, min({SUBDIRS}, n))
pad = bytes(range(256)) * {FILE_BYTES // 256}
for d in range(dirs):
    os.makedirs(f"{{out}}/{{d:03d}}", exist_ok=True)
for i in range(n):
    with open(f"{{out}}/{{i % dirs:03d}}/img{{i:06d}}.bin", "wb") as f:
        f.write(b"%010d" % i + pad[10:])
"""

MAKE_BIG = """\
import os, sys
size, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
block = bytes(range(256)) * 4096
with open(out, "wb") as f:
    i = 0
    while size > 0:
        chunk = (b"%016d" % i + block[16:])[:size]
        f.write(chunk)
        size -= len(chunk)
        i += 1
"""

COUNT_FILES = """\
import os, sys, zlib
src, out = sys.argv[1], sys.argv[2]
n = total = crc = 0
for root, dirs, files in os.walk(src):
    dirs.sort()
    for name in sorted(files):
        with open(os.path.join(root, name), "rb") as f:
            data = f.read()
        n += 1
        total += len(data)
        crc = zlib.crc32(data, crc)
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out, "w") as f:
    f.write(f"files={n} bytes={total} crc32={crc:08x}\\n")
"""


def image_path(i: int, n: int) -> str:
    """The workspace path of file ``i`` of ``n``, as make_files.py names it."""
    return f"data/images/{i % max(1, min(SUBDIRS, n)):03d}/img{i:06d}.bin"


@dataclass(frozen=True)
class Commands:
    """The four commands, identical in every configuration."""

    images: str
    big: str
    count: str
    bigsum: str


def commands(files: int, big_bytes: int) -> Commands:
    py = sys.executable  # the same interpreter for every tool
    return Commands(
        images=f"{py} make_files.py {files} data/images",
        big=f"{py} make_big.py {big_bytes} data/big.bin",
        count=f"{py} count_files.py data/images out/count.txt",
        bigsum="mkdir -p out && tail -c 1048576 data/big.bin | cksum > out/big.cksum",
    )


def _q(cmd: str) -> str:
    return json.dumps(cmd)  # a JSON string is a valid YAML double-quoted scalar


def write_template(dest: Path, cmds: Commands) -> None:
    """Scripts, mlbuild.yaml, dvc.yaml, bare.sh and bare-j2.sh: no data, no cache."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    (dest / "make_files.py").write_text(MAKE_FILES)
    (dest / "make_big.py").write_text(MAKE_BIG)
    (dest / "count_files.py").write_text(COUNT_FILES)
    # The same four steps for both tools: mlbuild's targets and DVC's stages share the
    # keys cmd, deps and outs.
    steps = (
        f"  images:\n    cmd: {_q(cmds.images)}\n    deps: [make_files.py]\n"
        "    outs: [data/images]\n"
        f"  big:\n    cmd: {_q(cmds.big)}\n    deps: [make_big.py]\n    outs: [data/big.bin]\n"
        f"  count:\n    cmd: {_q(cmds.count)}\n    deps: [data/images, count_files.py]\n"
        "    outs: [out/count.txt]\n"
        f"  bigsum:\n    cmd: {_q(cmds.bigsum)}\n    deps: [data/big.bin]\n"
        "    outs: [out/big.cksum]\n"
    )
    head = "# generated by benchmarks/datascale.py\n"
    (dest / "mlbuild.yaml").write_text(head + "version: 1\ntargets:\n" + steps)
    (dest / "dvc.yaml").write_text(head + "stages:\n" + steps)
    (dest / "bare.sh").write_text(
        f"set -e\n{cmds.images}\n{cmds.big}\n{cmds.count}\n{cmds.bigsum}\n"
    )
    (dest / "bare-j2.sh").write_text(
        "set -e\n"
        f"( {cmds.images} && {cmds.count} ) & a=$!\n"
        f"( {cmds.big} && {cmds.bigsum} ) & b=$!\n"
        "wait $a\nwait $b\n"
    )


# --------------------------------------------------------------------------- running


class Failed(RuntimeError):
    pass


@dataclass
class Sample:
    """One timed command: its time, peak RSS (KiB, if measured) and what it did."""

    seconds: float
    rss_kib: int | None
    output: str
    rewritten: int | None = None  # files of data/ and out/ whose inode or mtime changed

    def record(self, tool: str) -> dict[str, Any]:
        out: dict[str, Any] = {"seconds": round(self.seconds, 6)}
        if self.rss_kib is not None:
            out["rss_mib"] = round(self.rss_kib / 1024, 1)
        if self.rewritten is not None:
            out["rewritten_files"] = self.rewritten
        did = what_it_did(tool, self.output)
        if did:
            out["did"] = did
        return out


class Runner:
    """Runs commands with a log per workspace, a timeout, and optional RSS measurement."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.logs = WORK / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def run(
        self,
        cmd: Sequence[str],
        cwd: Path,
        log_name: str,
        env: dict[str, str | None] | None = None,
        *,
        rss: bool = False,
        sync: bool = False,
        check: bool = True,
    ) -> Sample:
        log = self.logs / f"{log_name}.log"
        start = log.stat().st_size if log.exists() else 0
        rss_file = self.logs / "rss.txt"
        full = list(cmd)
        if rss and os.path.exists(TIME):
            rss_file.unlink(missing_ok=True)
            full = [TIME, "-f", "%M", "-o", str(rss_file), *full]
        if sync:
            os.sync()
        before = _children_maxrss()
        result = harness.run_cmd(full, cwd, log, self.timeout, env)
        with open(log, "rb") as f:
            f.seek(start)
            output = f.read().decode(errors="replace")
        if check and result.rc != 0:
            what = "timed out" if result.rc is None else f"exited with {result.rc}"
            raise Failed(f"{' '.join(cmd)} in {cwd} {what}; see {log}\n{output[-2000:]}")
        kib: int | None = None
        if rss:
            if rss_file.exists():
                with contextlib.suppress(ValueError, IndexError):
                    kib = int(rss_file.read_text().split()[-1])
            else:  # no /usr/bin/time: the children's maximum, if this run raised it
                after = _children_maxrss()
                kib = after if after > before else None
        return Sample(result.seconds, kib, output)


def _children_maxrss() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)


def what_it_did(tool: str, output: str) -> str:
    """The tool's own account of a build: mlbuild's summary line, DVC's stage lines."""
    tool = tool.split("-")[0]  # a variant reports as its tool
    if tool == "mlbuild":
        found = re.findall(r"done: ([^\n]*)", output)
        # "4 ran, 0 restored, 0 fresh, 0 failed in 5.88s": the counts, not the time
        return re.sub(r",? 0 failed| in [\d.]+s$", "", found[-1].strip()) if found else ""
    if tool == "dvc":
        ran = re.findall(r"Running stage '([^']+)'", output)
        cached = re.findall(r"Stage '([^']+)' is cached", output)
        same = re.findall(r"Stage '([^']+)' didn't change", output)
        parts = []
        if ran:
            parts.append("ran " + ",".join(ran))
        if cached:
            parts.append("restored " + ",".join(cached))
        if same:
            parts.append(f"{len(same)} unchanged")
        return "; ".join(parts)
    return ""


def snapshot(ws: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of every file under data/ and out/: a rewritten file shows."""
    found: dict[str, tuple[int, int]] = {}
    for top in ("data", "out"):
        stack = [ws / top]
        while stack:
            try:
                it = os.scandir(stack.pop())
            except FileNotFoundError:
                continue
            with it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    else:
                        st = entry.stat(follow_symlinks=False)
                        found[entry.path] = (st.st_ino, st.st_mtime_ns)
    return found


def rewritten(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> int:
    return sum(1 for path, sig in after.items() if before.get(path) != sig) + sum(
        1 for path in before if path not in after
    )


def du_bytes(*paths: Path) -> int:
    """Apparent bytes of ``paths`` in one ``du`` call (a hard-linked file counts once)."""
    existing = [str(p) for p in paths if p.exists()]
    if not existing:
        return 0
    proc = subprocess.run(
        ["du", "-sbc", *existing], capture_output=True, text=True, check=True, timeout=600
    )
    return int(proc.stdout.strip().splitlines()[-1].split()[0])


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fresh_copy(template: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(template, dest, symlinks=True)
    return dest


def med(values: Sequence[float]) -> float | None:
    return round(harness.median(values), 6) if values else None


def summary(samples: list[Sample], tool: str) -> dict[str, Any]:
    return {
        "median": med([s.seconds for s in samples]),
        "samples": [s.record(tool) for s in samples],
    }


# --------------------------------------------------------------------------- tools


@dataclass(frozen=True)
class ToolSpec:
    name: str
    build: tuple[str, ...]
    status: tuple[str, ...]
    env: dict[str, str | None]
    setup: tuple[tuple[str, ...], ...] = ()
    light: bool = False  # a variant: cold, disk, no-op and change, one sample each

    @property
    def family(self) -> str:
        """``mlbuild`` or ``dvc``: a variant (``mlbuild-hardlink``) runs as its tool."""
        return self.name.split("-")[0]


LINKS = "reflink,hardlink,copy"  # the link variants: the first kind that works


def tool_specs(dvc: str, *, links: bool) -> dict[str, ToolSpec]:
    """mlbuild and DVC with their defaults (copy on ext4), and with ``links`` their
    hardlink variants (`cache: {link: [...]}`, `dvc config cache.type`)."""
    dvc_setup = (
        (dvc, "init", "--no-scm", "-q"),
        # DVC 3 keeps its state/index under /var/tmp/dvc by default: keep it in the
        # workspace, so it is deleted with it.
        (dvc, "config", "--local", "core.site_cache_dir", ".dvc/site"),
    )
    ml_build, ml_status = (MLBUILD, "-j", "2"), (MLBUILD, "status")
    specs = {
        "mlbuild": ToolSpec("mlbuild", ml_build, ml_status, ML_ENV),
        "dvc": ToolSpec("dvc", (dvc, "repro"), (dvc, "status"), DVC_ENV, setup=dvc_setup),
    }
    if links:
        kinds = ", ".join(LINKS.split(","))
        append = f"open('mlbuild.yaml', 'a').write('cache:\\n  link: [{kinds}]\\n')"
        specs["mlbuild-hardlink"] = ToolSpec(
            "mlbuild-hardlink",
            ml_build,
            ml_status,
            ML_ENV,
            setup=((sys.executable, "-c", append),),
            light=True,
        )
        specs["dvc-hardlink"] = ToolSpec(
            "dvc-hardlink",
            (dvc, "repro"),
            (dvc, "status"),
            DVC_ENV,
            setup=(*dvc_setup, (dvc, "config", "--local", "cache.type", LINKS)),
            light=True,
        )
    return specs


def cache_dir(tool: str, ws: Path) -> Path:
    return ws / (".mlbuild" if tool.startswith("mlbuild") else ".dvc/cache")


# --------------------------------------------------------------------------- cases


@dataclass
class Options:
    files: int
    big_bytes: int
    repeats: int
    cold_repeats: int
    s3: bool
    keep: bool


def bench_bare(template: Path, runner: Runner, opts: Options) -> dict[str, Any]:
    ws = WORK / "ws-bare"
    out: dict[str, Any] = {}
    for label, cmd in (
        ("serial", ["sh", "bare.sh"]),
        ("j2", ["sh", "bare-j2.sh"]),
        ("j2+sync", ["sh", "-c", "sh bare-j2.sh && sync"]),
    ):
        samples = []
        for _ in range(opts.cold_repeats):
            fresh_copy(template, ws)
            samples.append(runner.run(cmd, ws, "bare", sync=True))
        out[label] = summary(samples, "bare")
        print(f"  bare {label}: {fmt(out[label]['median'])}", flush=True)
    out["data_bytes"] = du_bytes(ws / "data", ws / "out")
    out["expected"] = {
        "count": (ws / "out/count.txt").read_text(),
        "bigsum": (ws / "out/big.cksum").read_text(),
    }
    if not opts.keep:
        shutil.rmtree(ws)
    return out


def check_outs(ws: Path, expected: dict[str, str], what: str) -> None:
    for name, rel in (("count", "out/count.txt"), ("bigsum", "out/big.cksum")):
        got = (ws / rel).read_text() if (ws / rel).exists() else "<missing>"
        if got != expected[name]:
            raise Failed(f"{what}: {rel} is {got!r}, the bare commands wrote {expected[name]!r}")


def bench_tool(
    spec: ToolSpec,
    template: Path,
    runner: Runner,
    opts: Options,
    expected: dict[str, str],
    remotes: dict[str, str],
    endpoint: str | None,
) -> dict[str, Any]:
    """Every case of one tool, in one workspace (a fresh one per cold build)."""
    name = spec.name
    ws = WORK / f"ws-{name}"
    res: dict[str, Any] = {}

    def fresh() -> None:
        fresh_copy(template, ws)
        for cmd in spec.setup:
            runner.run(cmd, ws, name, spec.env)

    def build(label: str, *, sync: bool = False, snap: bool = True) -> Sample:
        before = snapshot(ws) if snap else {}
        sample = runner.run(spec.build, ws, name, spec.env, rss=True, sync=sync)
        if snap:
            sample.rewritten = rewritten(before, snapshot(ws))
        print(
            f"  {name} {label}: {sample.seconds:.2f} s  {what_it_did(name, sample.output)}",
            flush=True,
        )
        return sample

    cold: list[Sample] = []
    disk: dict[str, Any] = {}
    noop_first: Sample | None = None
    for _ in range(opts.cold_repeats):
        fresh()
        os.sync()
        free_before = free_bytes(WORK)
        cold.append(build("cold", sync=True, snap=False))
        free_after = free_bytes(WORK)
        check_outs(ws, expected, f"{name} cold build")
        # Right after the build (no walk or du first): outs written < 2 s ago are "racy".
        noop_first = build("no-op (right after the cold build)", snap=False)
        data = du_bytes(ws / "data", ws / "out")
        cache = du_bytes(cache_dir(name, ws))
        both = du_bytes(ws / "data", ws / "out", cache_dir(name, ws))
        disk = {
            "data_bytes": data,
            "cache_bytes": cache,
            "data_and_cache_bytes": both,
            "extra_bytes": both - data,
            # all of .mlbuild/ resp. .dvc/ (DVC's cache plus its state and index)
            "tool_dir_bytes": du_bytes(ws / (".mlbuild" if spec.family == "mlbuild" else ".dvc")),
            "filesystem_free_drop_bytes": free_before - free_after,
        }
    res["cold"] = summary(cold, name)
    res["disk"] = disk
    res["noop_first"] = summary([noop_first] if noop_first else [], name)
    time.sleep(harness.RACY_WAIT)
    repeats = 1 if spec.light else opts.repeats
    res["noop"] = summary([build("no-op") for _ in range(repeats)], name)
    changed = ws / image_path(0, opts.files)
    if spec.light:
        # A new file, not a write in place: with hardlinks the out is read-only, and as
        # root (this harness) a write in place would go through to the cache object.
        changed.unlink()
        changed.write_bytes(f"changed {time.time_ns()}\n".encode())
        res["change"] = summary([build("change one file")], name)
        check_outs(ws, expected, f"{name} rebuild after a changed file")
        if not opts.keep:
            shutil.rmtree(ws)
        return res
    res["status"] = summary(
        [runner.run(spec.status, ws, name, spec.env, rss=True) for _ in range(opts.repeats)],
        name,
    )
    print(f"  {name} status: {fmt(res['status']['median'])}", flush=True)

    touched = ws / image_path(opts.files // 2, opts.files)
    samples = []
    for _ in range(opts.repeats):
        os.utime(touched)
        samples.append(build("touch one file"))
    res["touch"] = summary(samples, name)

    samples = []
    for i in range(opts.repeats):
        changed.write_bytes(f"changed {time.time_ns()} {i}\n".encode())
        samples.append(build("change one file"))
        check_outs(ws, expected, f"{name} rebuild after a changed file")
    res["change"] = summary(samples, name)

    res["transfers"] = {}
    for kind, url in remotes.items():
        res["transfers"][kind] = bench_transfer(
            spec, ws, template, runner, kind, url, expected, endpoint
        )
    if not opts.keep:
        shutil.rmtree(ws)
    return res


def count_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def bench_transfer(
    spec: ToolSpec,
    ws: Path,
    template: Path,
    runner: Runner,
    kind: str,
    url: str,
    expected: dict[str, str],
    endpoint: str | None,
) -> dict[str, Any]:
    """Push the built workspace to ``url``, pull it into a fresh clone; objects/s, MB/s."""
    name = spec.name
    clone = WORK / f"clone-{name}"
    fresh_copy(template, clone)
    data_bytes = du_bytes(ws / "data", ws / "out")
    tool = spec.build[0]
    out: dict[str, Any] = {"url": url}
    if spec.family == "mlbuild":
        shutil.copy2(ws / "mlbuild.lock", clone / "mlbuild.lock")
        push = runner.run(
            [tool, "push", "--remote", url], ws, f"{name}-{kind}", spec.env, sync=True
        )
        m = re.search(r"(\d+) objects?\b", push.output)
        objects = int(m.group(1)) if m else None
        pull = runner.run(
            [tool, "pull", "--remote", url], clone, f"{name}-{kind}", spec.env, sync=True
        )
    else:
        remote_name = f"bench{kind}"
        runner.run([tool, "remote", "add", "-f", remote_name, url], ws, name, spec.env)
        if kind == "s3":
            runner.run(
                [tool, "remote", "modify", remote_name, "endpointurl", endpoint or ""],
                ws,
                name,
                spec.env,
            )
        push = runner.run(
            [tool, "push", "-r", remote_name], ws, f"{name}-{kind}", spec.env, sync=True
        )
        objects = _dvc_count(push.output)
        if objects is None and kind == "file":
            objects = count_files(Path(url))
        shutil.copy2(ws / "dvc.lock", clone / "dvc.lock")
        (clone / ".dvc").mkdir()
        shutil.copy2(ws / ".dvc/config", clone / ".dvc/config")
        if (ws / ".dvc/config.local").exists():
            shutil.copy2(ws / ".dvc/config.local", clone / ".dvc/config.local")
        pull = runner.run(
            [tool, "pull", "-r", remote_name], clone, f"{name}-{kind}", spec.env, sync=True
        )
    check_outs(clone, expected, f"{name} pull from {kind}")
    # The build right after the pull: does the pulled directory have to be read again?
    after = runner.run(spec.build, clone, f"{name}-{kind}", spec.env)
    out["build_after_pull"] = {"seconds": round(after.seconds, 6)}
    print(f"  {name} build after pull {kind}: {after.seconds:.2f} s", flush=True)
    for label, sample in (("push", push), ("pull", pull)):
        out[label] = {
            "seconds": round(sample.seconds, 6),
            "objects": objects,
            "bytes": data_bytes,
            "objects_per_s": round(objects / sample.seconds, 1) if objects else None,
            "mb_per_s": round(data_bytes / 1e6 / sample.seconds, 1),
            "output_tail": sample.output.strip().splitlines()[-3:],
        }
        print(f"  {name} {label} {kind}: {sample.seconds:.2f} s, {objects} objects", flush=True)
    shutil.rmtree(clone)
    return out


def _dvc_count(output: str) -> int | None:
    m = re.search(r"(\d+) files? pushed", output)
    return int(m.group(1)) if m else None


# --------------------------------------------------------------------------- moto


@contextlib.contextmanager
def moto_server(runner: Runner) -> Iterator[str]:
    """A moto S3 server on a free port (its own process group), with bucket ``bench``."""
    port = remote_dask.free_port()
    log = open(runner.logs / "moto.log", "wb")  # noqa: SIM115 - closed right after the start
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=harness.child_env(ML_ENV),
            start_new_session=True,
        )
    finally:
        log.close()
    try:
        remote_dask.wait_port(port, proc, "moto server")
        url = f"http://127.0.0.1:{port}"
        remote_dask.s3_client(url).create_bucket(Bucket=BUCKET)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --------------------------------------------------------------------------- report


def fmt(value: float | None) -> str:
    return "n/a" if value is None else harness.fmt_seconds(value)


def fmt_bytes(value: int | None) -> str:
    if value is None:
        return "n/a"
    return f"{value / 1e9:.2f} GB" if value >= 1e8 else f"{value / 1e6:.1f} MB"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "n/a"


def _get(results: dict[str, Any], tool: str, *keys: str) -> Any:
    node: Any = results.get("tools", {}).get(tool)
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _did(results: dict[str, Any], tool: str, case: str) -> str:
    samples = _get(results, tool, case, "samples") or []
    if not samples:
        return ""
    last = samples[-1]
    bits = [str(last.get("did", ""))] if last.get("did") else []
    if "rewritten_files" in last:
        bits.append(f"{last['rewritten_files']} files rewritten")
    return " (" + "; ".join(bits) + ")" if bits else ""


def table(results: dict[str, Any]) -> str:
    """Rows = cases; columns = bare, mlbuild, DVC and the two ratios."""
    bare = results.get("tools", {}).get("bare") or {}
    head = "| case | bare | mlbuild -j 2 | DVC | mlbuild/bare | mlbuild/DVC |"
    rows = [head, "|---|---|---|---|---|---|"]

    def secs(case: str) -> tuple[float | None, float | None]:
        return _get(results, "mlbuild", case, "median"), _get(results, "dvc", case, "median")

    ml, dv = secs("cold")
    b_serial = _get(results, "bare", "serial", "median")
    b_j2 = _get(results, "bare", "j2", "median")
    b_sync = _get(results, "bare", "j2+sync", "median")
    bare_text = (
        f"{fmt(b_serial)} serial, {fmt(b_j2)} with 2 jobs ({fmt(b_sync)} + sync)" if bare else "n/a"
    )
    rows.append(
        f"| cold build | {bare_text} | {fmt(ml)} | {fmt(dv)} | {ratio(ml, b_j2)} "
        f"| {ratio(ml, dv)} |"
    )
    for case, label in (
        ("noop_first", "no-op right after the cold build"),
        ("noop", "no-op"),
        ("status", "`status`"),
        ("touch", "one file of the N touched, content same"),
        ("change", "one file of the N changed, rebuild"),
    ):
        ml, dv = secs(case)
        rows.append(
            f"| {label} | — | {fmt(ml)}{_did(results, 'mlbuild', case)} "
            f"| {fmt(dv)}{_did(results, 'dvc', case)} | — | {ratio(ml, dv)} |"
        )
    data = bare.get("data_bytes")
    ml_extra = _get(results, "mlbuild", "disk", "extra_bytes")
    dv_extra = _get(results, "dvc", "disk", "extra_bytes")
    rows.append(
        f"| disk besides the data ({fmt_bytes(data)}; `du -sb`, hard links once) | — "
        f"| {fmt_bytes(ml_extra)} | {fmt_bytes(dv_extra)} | — "
        f"| {ratio(ml_extra, dv_extra) if dv_extra else 'n/a'} |"
    )
    variants = results.get("tools", {})
    if "mlbuild-hardlink" in variants or "dvc-hardlink" in variants:
        rows += _link_rows(results, b_j2)
    for case, label in (("noop", "peak RSS, no-op"), ("cold", "peak RSS, cold build")):
        vals = []
        for tool in ("mlbuild", "dvc"):
            rss = [s.get("rss_mib") for s in _get(results, tool, case, "samples") or []]
            rss = [r for r in rss if r is not None]
            vals.append(max(rss) if rss else None)
        cells = [f"{v:.0f} MiB" if v is not None else "n/a" for v in vals]
        rows.append(f"| {label} | — | {cells[0]} | {cells[1]} | — | {ratio(vals[0], vals[1])} |")
    kinds = sorted({k for t in ("mlbuild", "dvc") for k in (_get(results, t, "transfers") or {})})
    for kind in kinds:
        for op in ("push", "pull"):
            cells = []
            times: list[float | None] = []
            for tool in ("mlbuild", "dvc"):
                x = _get(results, tool, "transfers", kind, op)
                if not x:
                    cells.append("n/a")
                    times.append(None)
                    continue
                times.append(x["seconds"])
                rate = f"{x['objects_per_s']:.0f} obj/s, " if x.get("objects_per_s") else ""
                cells.append(f"{fmt(x['seconds'])} ({rate}{x['mb_per_s']:.1f} MB/s)")
            rows.append(
                f"| `{op}` ({kind}) | — | {cells[0]} | {cells[1]} | — "
                f"| {ratio(times[0], times[1])} |"
            )
        after = [
            _get(results, t, "transfers", kind, "build_after_pull", "seconds")
            for t in ("mlbuild", "dvc")
        ]
        if any(a is not None for a in after):
            rows.append(
                f"| build right after the `pull` ({kind}) | — | {fmt(after[0])} "
                f"| {fmt(after[1])} | — | {ratio(after[0], after[1])} |"
            )
    meta = results.get("sizes", {})
    notes = [
        f"{meta.get('files', '?')} files of ~1 KiB + one file of "
        f"{meta.get('big_bytes', 0) / MIB:.0f} MiB; warm page cache (not dropped); "
        f"mlbuild at {results.get('mlbuild_git', '?')}; {results.get('note', '')}".rstrip("; ")
    ]
    notes += [f"note: {n}" for n in results.get("notes", [])]
    return "\n".join(rows + [""] + notes)


def _link_rows(results: dict[str, Any], bare_j2: float | None) -> list[str]:
    """The hardlink variants (mlbuild ``cache.link``, DVC ``cache.type``: reflink,
    hardlink, copy; on ext4 that is hardlink): cold build, disk, no-op, one change."""
    ml, dv = "mlbuild-hardlink", "dvc-hardlink"
    rows = []
    for case, label in (
        ("cold", "cold build"),
        ("noop", "no-op"),
        ("change", "one file of the N changed, rebuild"),
    ):
        a, b = _get(results, ml, case, "median"), _get(results, dv, case, "median")
        vs_bare = ratio(a, bare_j2) if case == "cold" else "—"
        rows.append(
            f"| {label}, with hardlinks | — | {fmt(a)}{_did(results, ml, case)} "
            f"| {fmt(b)}{_did(results, dv, case)} | {vs_bare} | {ratio(a, b)} |"
        )
    a = _get(results, ml, "disk", "extra_bytes")
    b = _get(results, dv, "disk", "extra_bytes")
    rows.append(
        f"| disk besides the data, with hardlinks | — | {fmt_bytes(a)} | {fmt_bytes(b)} | — "
        f"| {ratio(a, b) if b else 'n/a'} |"
    )
    return rows


# --------------------------------------------------------------------------- main


def tool_version(cmd: Sequence[str], env: dict[str, str | None]) -> str:
    try:
        proc = subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=60, env=harness.child_env(env)
        )
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0] if text else "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000, help="files in the directory")
    parser.add_argument("--big-gib", type=float, default=4.0, help="size of the big file")
    parser.add_argument("--quick", action="store_true", help="2000 files, 32 MiB, no S3")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the cheap cases")
    parser.add_argument("--cold-repeats", type=int, default=1, help="cold builds per tool")
    parser.add_argument("--no-dvc", action="store_true", help="skip DVC")
    parser.add_argument(
        "--no-links", action="store_true", help="skip the hardlink variants (cache.link)"
    )
    parser.add_argument("--s3", action="store_true", help="also push/pull to a moto server")
    parser.add_argument("--other-venv", type=Path, default=Path("/tmp/bench-venv"))
    parser.add_argument("--timeout", type=float, default=3600.0, help="per command")
    parser.add_argument("--keep", action="store_true", help="keep the workspaces")
    parser.add_argument("--note", default="", help="a remark stored with the results")
    parser.add_argument(
        "--out",
        type=Path,
        help="default: benchmarks/results-datascale.json"
        " (--quick: benchmarks/_work/results-datascale-quick.json)",
    )
    parser.add_argument("--table", type=Path, metavar="JSON", help="print the table of a result")
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return 0
    if args.quick:
        args.files, args.big_gib, args.s3, args.repeats = 2000, 1 / 32, False, 1
        args.timeout = min(args.timeout, 300.0)
    out_path = args.out or (
        WORK.parent / "results-datascale-quick.json"
        if args.quick
        else HERE / "results-datascale.json"
    )
    if not Path(MLBUILD).exists():
        parser.error(f"{MLBUILD} not found: run with the project venv's python")
    opts = Options(
        files=args.files,
        big_bytes=int(args.big_gib * GIB),
        repeats=args.repeats,
        cold_repeats=args.cold_repeats,
        s3=args.s3,
        keep=args.keep,
    )
    if WORK.exists():
        shutil.rmtree(WORK)
    runner = Runner(args.timeout)
    started = time.perf_counter()
    dvc = str(args.other_venv / "bin" / "dvc")
    specs = tool_specs(dvc, links=not args.no_links)
    notes: list[str] = []
    if args.no_dvc or not os.path.isfile(dvc):
        if not args.no_dvc:
            notes.append(f"DVC not found at {dvc}: its column is n/a")
            print(f"note: {notes[-1]}", file=sys.stderr)
        for name in [n for n in specs if n.startswith("dvc")]:
            del specs[name]
    if not os.path.exists(TIME):
        notes.append(f"{TIME} missing: peak RSS from getrusage(RUSAGE_CHILDREN)")
    notes.append("dvc repro has no -j: its stages run one at a time")
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else argv,
        "machine": harness.machine(),
        "mlbuild_git": harness.git_revision(),
        "versions": {
            "mlbuild": tool_version([MLBUILD, "--version"], ML_ENV),
            "dvc": tool_version([dvc, "--version"], DVC_ENV) if "dvc" in specs else "-",
        },
        "loadavg_start": os.getloadavg(),
        "page_cache": "warm: not dropped (needs root); os.sync() before cold builds/transfers",
        "sizes": {
            "files": opts.files,
            "file_bytes": FILE_BYTES,
            "subdirs": max(1, min(SUBDIRS, opts.files)),
            "big_bytes": opts.big_bytes,
        },
        "repeats": opts.repeats,
        "cold_repeats": opts.cold_repeats,
        "note": args.note,
        "notes": notes,
        "commands": commands(opts.files, opts.big_bytes).__dict__,
        "tools": {},
    }
    if os.getloadavg()[0] > 0.5:
        print(
            f"warning: load average {os.getloadavg()[0]:.2f}: the numbers will be noisy",
            file=sys.stderr,
        )
    template = WORK / "template"
    write_template(template, commands(opts.files, opts.big_bytes))
    with remote_dask.stop_on_signals(), contextlib.ExitStack() as stack:
        try:
            print("bare commands", flush=True)
            bare = bench_bare(template, runner, opts)
            results["tools"]["bare"] = bare
            endpoint = stack.enter_context(moto_server(runner)) if opts.s3 else None
            if endpoint:
                results["s3_endpoint"] = endpoint
            for name, spec in specs.items():
                print(name, flush=True)
                remotes = {"file": f"file://{WORK / ('remote-' + name)}"}
                if name == "dvc":
                    remotes["file"] = str(WORK / "remote-dvc")
                    if args.quick:  # keep --quick under a minute; mlbuild's still run
                        remotes = {}
                        notes.append("--quick: no DVC push/pull")
                if endpoint:
                    if name == "dvc" and not _has_dvc_s3(args.other_venv):
                        notes.append("dvc-s3 not installed in the DVC venv: DVC's S3 is n/a")
                    else:
                        remotes["s3"] = f"s3://{BUCKET}/{name}"
                if name == "mlbuild" and endpoint:
                    _add_remote_options(template, endpoint)
                results["tools"][name] = bench_tool(
                    spec, template, runner, opts, bare["expected"], remotes, endpoint
                )
                for remote in WORK.glob("remote-*"):
                    shutil.rmtree(remote)
        finally:
            if not args.keep:
                for path in WORK.glob("*"):
                    if path.name != "logs" and path.is_dir():
                        shutil.rmtree(path)
    return harness.write_results(results, out_path, started, table)


def _has_dvc_s3(venv: Path) -> bool:
    return (
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import dvc_s3"], capture_output=True
        ).returncode
        == 0
    )


def _add_remote_options(template: Path, endpoint: str) -> None:
    """mlbuild reads the S3 endpoint from ``remote_options`` (not part of any build key)."""
    cfg = template / "mlbuild.yaml"
    text = cfg.read_text().replace(
        "version: 1\n",
        f'version: 1\nremote_options: {{client_kwargs: {{endpoint_url: "{endpoint}"}}}}\n',
    )
    cfg.write_text(text)


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except Failed as e:
        print(f"datascale: {e}", file=sys.stderr)
        raise SystemExit(1) from None
