"""Remote cache throughput and Dask executor overhead (docs/benchmarks.md, "Remote cache
and Dask").

Two parts, each timing whole ``mlbuild`` processes (wall time, ``time.perf_counter``
around the command, as in run.py), medians of ``--repeats`` runs:

**Transfer.** A workspace with two targets: ``dir`` writes a directory of 200 files of
512 KiB random bytes, ``big`` one file of 100 MiB (200 MiB in all). It is built once, then,
for a ``file://`` remote and for an S3 remote on a moto server started here
(``python -m moto.server``; bucket made with boto3; ``remote_options: {client_kwargs:
{endpoint_url: ...}}``):

``push all``    ``mlbuild --push`` in the built workspace (both targets fresh: a no-op
                build, then the upload of both builds; 2 x CPU = 4 threads, one build each)
``pull all``    ``mlbuild --pull`` in a fresh copy (``mlbuild.yaml`` only): both targets
                restored, every object downloaded, hashed (xxh3 + sha256), fsynced into
                the local cache, then copied into the workspace
``push dir``    ``mlbuild push dir -j 1`` and ``-j 4``: the 200-file build alone
``push big``    ``mlbuild push big``: the 100 MiB build alone
``pull dir``    ``mlbuild pull dir`` / ``mlbuild pull big`` in a fresh copy
``reference``   the same bytes without mlbuild: ``cp -r`` / ``cp`` (file://), and boto3
                ``put_object`` / ``get_object`` one request at a time (S3), in-process

Every remote prefix is new, so every push sends everything; every run is checked (exit
code, the push summary, "0 ran, N restored", and the pulled lock file's digests equal the
built one's). MiB/s = 200 or 100 MiB / the whole command's wall time. ``os.sync()`` runs
(untimed) before each transfer command: otherwise a pull's fsyncs also pay for the
writeback of what the previous command wrote, and the same pull varies 2x between runs.

**Dask.** 40 independent targets ``echo i > out/ti.txt`` ("echo"), the same with ``sleep
0.5`` first ("sleep"), and one echo target (the fixed cost). Cold builds (a fresh copy
each time) with the local executor (``-j 2``), and on a ``dask scheduler`` + 2 ``dask
worker --nthreads 1`` started here: shared mode (``--executor dask --dask-address``,
``-j 2`` and ``-j 4``) and remote mode (``--dask-mode remote``, a fresh ``file://``
remote per build). Per-job overhead = (time - local time) / jobs. Also timed: the first
build after the cluster started, and a no-op build in each mode. Every build is checked:
exit 0, "N ran", N outs, and on Dask the manifest of ``t0`` names a worker of the cluster.

Every process started here (moto, scheduler, workers) is stopped at the end, on errors and
on SIGINT / SIGTERM too (each runs in its own process group). Usage::

    .venv/bin/python benchmarks/remote_dask.py                 # ~4 min
    .venv/bin/python benchmarks/remote_dask.py --only dask --repeats 1
    .venv/bin/python benchmarks/remote_dask.py --table benchmarks/results-remote-dask.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import run as harness  # benchmarks/run.py: run_cmd, child_env, PYC_ENV, machine, ...

HERE = harness.HERE
WORK = harness.WORK / "remote-dask"
MLBUILD = str(harness.MLBUILD)
DASK = str(harness.VENV_BIN / "dask")
MIB = 1 << 20
DIR_FILES = 200
DIR_FILE_BYTES = 512 * 1024
BIG_BYTES = 100 * MIB
TIMEOUT = 180.0  # per command
AWS_ENV: dict[str, str | None] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_SESSION_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_ENDPOINT_URL": None,  # the endpoint comes from remote_options, as the brief asks
}
ENV: dict[str, str | None] = {**harness.PYC_ENV, **AWS_ENV}
BUCKET = "bench"


# --------------------------------------------------------------------------- processes


class Services:
    """Long-running helpers (moto, dask scheduler and workers), each in its own process
    group; `stop` ends them all, newest first: SIGTERM, then SIGKILL after a grace time."""

    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, cmd: Sequence[str]) -> subprocess.Popen[bytes]:
        log = open(WORK / "logs" / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        try:
            proc = subprocess.Popen(
                list(cmd),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=harness.child_env(ENV),
                start_new_session=True,
            )
        finally:
            log.close()
        self.procs.append((name, proc))
        return proc

    def stop(self, grace: float = 15.0) -> None:
        while self.procs:
            name, proc = self.procs.pop()
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    print(f"{name} did not stop on SIGTERM: killing it", file=sys.stderr)
            # The whole group: a worker's nanny child, a job's shell still running.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}; see its log") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not listen on {port} in {limit:.0f} s") from None
            time.sleep(0.1)


def start_moto(services: Services) -> str:
    port = free_port()
    proc = services.start(
        "moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    )
    wait_port(port, proc, "moto server")
    url = f"http://127.0.0.1:{port}"
    s3_client(url).create_bucket(Bucket=BUCKET)
    return url


def s3_client(url: str) -> Any:
    import boto3  # type: ignore[import-untyped]

    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def start_cluster(services: Services, workers: int = 2) -> tuple[str, list[str]]:
    """`dask scheduler` + ``workers`` x `dask worker --nthreads 1`; (address, worker addrs)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    sched = services.start(
        "dask-scheduler",
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
    )
    wait_port(port, sched, "dask scheduler")
    for i in range(workers):
        services.start(
            f"dask-worker-{i + 1}",
            [
                DASK,
                "worker",
                address,
                "--nthreads",
                "1",
                "--nworkers",
                "1",
                "--no-dashboard",
                "--name",
                f"w{i + 1}",
            ],
        )
    from distributed import Client

    connect: Any = Client  # untyped in distributed
    with connect(address, timeout="30s") as client:
        client.wait_for_workers(workers, timeout=120)
        addrs = sorted(client.scheduler_info()["workers"])
    return address, addrs


# --------------------------------------------------------------------------- running


class Failed(RuntimeError):
    pass


def timed(cmd: Sequence[str], cwd: Path, log_name: str, *, sync: bool = False) -> tuple[float, str]:
    """Run ``cmd`` in ``cwd`` (output to a log), check exit 0; (seconds, its output).

    ``sync``: flush every dirty page first (not timed), so that a command's fsyncs do not
    also pay for the writeback of what the previous command wrote."""
    log = WORK / "logs" / f"{log_name}.log"
    if sync:
        os.sync()
    start = log.stat().st_size if log.exists() else 0
    result = harness.run_cmd(cmd, cwd, log, TIMEOUT, ENV)
    with open(log, "rb") as f:
        f.seek(start)
        output = f.read().decode(errors="replace")
    if result.rc != 0:
        what = "timed out" if result.rc is None else f"exited with {result.rc}"
        raise Failed(f"{' '.join(cmd)} in {cwd} {what}; see {log}\n{output[-2000:]}")
    return result.seconds, output


def expect(output: str, text: str, what: str) -> None:
    if text not in output:
        raise Failed(f"{what}: expected {text!r} in the output:\n{output[-2000:]}")


def med(values: Sequence[float]) -> float:
    return round(harness.median(values), 6)


def fresh_copy(template: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(template, dest, symlinks=True)
    return dest


def lock_outs(ws: Path, targets: Sequence[str]) -> dict[str, Any]:
    doc = json.loads((ws / "mlbuild.lock").read_text())
    return {t: [o["xxh"] for o in doc["targets"][t]["outs"]] for t in targets}


# --------------------------------------------------------------------------- transfer


def transfer_yaml(endpoint: str | None) -> str:
    lines = ["# generated by benchmarks/remote_dask.py", "version: 1"]
    if endpoint:
        lines.append(f'remote_options: {{client_kwargs: {{endpoint_url: "{endpoint}"}}}}')
    lines += [
        "targets:",
        "  dir:",
        '    cmd: "mkdir -p ${outs[0]} && i=0; while [ $i -lt '
        + str(DIR_FILES)
        + " ]; do head -c "
        + str(DIR_FILE_BYTES)
        + ' /dev/urandom > ${outs[0]}/f$i.bin; i=$((i + 1)); done"',
        "    outs: [out/dir]",
        "  big:",
        f'    cmd: "head -c {BIG_BYTES} /dev/urandom > ${{outs[0]}}"',
        "    outs: [out/big.bin]",
    ]
    return "\n".join(lines) + "\n"


def mib_s(nbytes: int, seconds: float) -> float:
    return round(nbytes / MIB / seconds, 1)


def bench_transfer(repeats: int, services: Services) -> dict[str, Any]:
    root = WORK / "transfer"
    if root.exists():
        shutil.rmtree(root)
    template = root / "template"
    (template / "out").mkdir(parents=True)
    (template / "mlbuild.yaml").write_text(transfer_yaml(None))
    built = fresh_copy(template, root / "built")
    build_s, out = timed([MLBUILD, "-j", "2"], built, "transfer-build")
    expect(out, "done: 2 ran", "build")
    dir_bytes = sum(p.stat().st_size for p in (built / "out/dir").iterdir())
    big_bytes = (built / "out/big.bin").stat().st_size
    assert dir_bytes == DIR_FILES * DIR_FILE_BYTES and big_bytes == BIG_BYTES
    want = lock_outs(built, ["dir", "big"])
    time.sleep(harness.RACY_WAIT)  # let the no-op settle: no re-hashing of racy outs
    noop = [timed([MLBUILD], built, "transfer-noop")[0] for _ in range(3)]
    result: dict[str, Any] = {
        "dir_files": DIR_FILES,
        "dir_bytes": dir_bytes,
        "big_bytes": big_bytes,
        "build_seconds": round(build_s, 6),
        "noop_seconds": [round(t, 6) for t in noop],
        "noop_median": med(noop),
        "remotes": {},
    }
    print(f"built 2 x 100 MiB in {build_s:.2f} s; no-op {med(noop) * 1000:.0f} ms", flush=True)

    endpoint = start_moto(services)
    s3 = s3_client(endpoint)
    remote_dir = root / "remote"
    kinds = {"file": f"file://{remote_dir}", "s3": f"s3://{BUCKET}"}
    for kind, base in kinds.items():
        yaml = transfer_yaml(endpoint if kind == "s3" else None)
        (template / "mlbuild.yaml").write_text(yaml)
        (built / "mlbuild.yaml").write_text(yaml)  # remote_options are not in any build key
        samples: dict[str, list[float]] = {}

        def add(name: str, seconds: float, samples: dict[str, list[float]] = samples) -> None:
            samples.setdefault(name, []).append(seconds)

        for i in range(repeats):
            url = f"{base}/all-{i}"
            t, out = timed([MLBUILD, "--push", "--remote", url], built, f"{kind}-push", sync=True)
            expect(out, "2 fresh", f"{kind} push all")
            expect(out, "pushed 2 build(s), 202 object(s) (200.0 MiB), 2 manifest(s)", kind)
            add("push all", t)
            for label, args, restored, targets in (
                ("pull all", ["--pull"], 2, ["dir", "big"]),
                ("pull dir", ["pull", "dir"], 1, ["dir"]),
                ("pull big", ["pull", "big"], 1, ["big"]),
            ):
                ws = fresh_copy(template, root / "pulled")
                t, out = timed([MLBUILD, *args, "--remote", url], ws, f"{kind}-pull", sync=True)
                expect(out, f"done: 0 ran, {restored} restored", f"{kind} {label}")
                if lock_outs(ws, targets) != {k: want[k] for k in targets}:
                    raise Failed(f"{kind} {label}: pulled digests differ from the built ones")
                add(label, t)
                shutil.rmtree(ws)
            for label, args, summary in (
                ("push dir -j 1", ["dir", "-j", "1"], "1 build(s), 201 object(s) (100.0 MiB)"),
                ("push dir -j 4", ["dir", "-j", "4"], "1 build(s), 201 object(s) (100.0 MiB)"),
                ("push big", ["big"], "1 build(s), 1 object(s) (100.0 MiB)"),
            ):
                dest = f"{base}/{label.replace(' ', '').replace('-', '')}-{i}"
                t, out = timed(
                    [MLBUILD, "push", *args, "--remote", dest], built, f"{kind}-push", sync=True
                )
                expect(out, f"pushed {summary}", f"{kind} {label}")
                add(label, t)
            for label, t in reference(kind, built, remote_dir, s3, i).items():
                add(label, t)
            # Empty the remote between repeats (moto keeps everything in memory).
            if kind == "file":
                shutil.rmtree(remote_dir, ignore_errors=True)
            else:
                empty_bucket(s3)
            print(
                f"{kind} #{i + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in samples.items()),
                flush=True,
            )
        cases: dict[str, Any] = {}
        for name, times in samples.items():
            nbytes = dir_bytes + big_bytes if name.endswith(" all") else BIG_BYTES
            cases[name] = {
                "seconds": [round(t, 6) for t in times],
                "median": med(times),
                "bytes": nbytes,
                "mib_per_s": mib_s(nbytes, harness.median(times)),
            }
        result["remotes"][kind] = {"url": base, "cases": cases}
    shutil.rmtree(root, ignore_errors=True)
    return result


def reference(kind: str, built: Path, remote_dir: Path, s3: Any, i: int) -> dict[str, float]:
    """The same bytes moved without mlbuild: the floor under its transfer times."""
    files = sorted((built / "out/dir").iterdir())
    big = built / "out/big.bin"
    times: dict[str, float] = {}
    if kind == "file":
        dest = remote_dir / f"ref-{i}"
        dest.mkdir(parents=True)
        times["ref dir (cp -r)"] = timed(
            ["cp", "-r", "out/dir", str(dest / "dir")], built, "ref-cp", sync=True
        )[0]
        times["ref big (cp)"] = timed(
            ["cp", "out/big.bin", str(dest / "big")], built, "ref-cp", sync=True
        )[0]
        return times
    os.sync()
    t0 = time.perf_counter()
    for p in files:
        with open(p, "rb") as f:
            s3.put_object(Bucket=BUCKET, Key=f"ref-{i}/dir/{p.name}", Body=f)
    times["ref dir up (boto3)"] = time.perf_counter() - t0
    os.sync()
    t0 = time.perf_counter()
    with open(big, "rb") as f:
        s3.put_object(Bucket=BUCKET, Key=f"ref-{i}/big", Body=f)
    times["ref big up (boto3)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in files:
        body = s3.get_object(Bucket=BUCKET, Key=f"ref-{i}/dir/{p.name}")["Body"].read()
        assert len(body) == DIR_FILE_BYTES
    times["ref dir down (boto3)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    body = s3.get_object(Bucket=BUCKET, Key=f"ref-{i}/big")["Body"].read()
    times["ref big down (boto3)"] = time.perf_counter() - t0
    assert len(body) == BIG_BYTES
    return times


def empty_bucket(s3: Any) -> None:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    for page in pages:
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})


# --------------------------------------------------------------------------- dask


def dask_yaml(n: int, sleep: float) -> str:
    pre = f"sleep {sleep} && " if sleep else ""
    lines = ["# generated by benchmarks/remote_dask.py", "version: 1", "targets:"]
    for i in range(n):
        lines += [
            f"  t{i}:",
            f'    cmd: "{pre}echo {i} > ${{outs[0]}}"',
            f"    outs: [out/t{i}.txt]",
        ]
    return "\n".join(lines) + "\n"


WORKLOADS = {"echo": (40, 0.0), "sleep": (40, 0.5), "echo-1": (1, 0.0)}
MODES = ("local", "dask shared", "dask shared -j 4", "dask remote")


def mode_cmd(mode: str, address: str, remote: Path) -> list[str]:
    dask = ["--executor", "dask", "--dask-address", address]
    return {
        "local": [MLBUILD, "-j", "2"],
        "dask shared": [MLBUILD, "-j", "2", *dask],
        "dask shared -j 4": [MLBUILD, "-j", "4", *dask],
        "dask remote": [
            MLBUILD,
            "-j",
            "2",
            *dask,
            "--dask-mode",
            "remote",
            "--remote",
            f"file://{remote}",
        ],
    }[mode]


def bench_dask(repeats: int, services: Services) -> dict[str, Any]:
    root = WORK / "dask"
    if root.exists():
        shutil.rmtree(root)
    templates = {}
    for name, (n, sleep) in WORKLOADS.items():
        templates[name] = root / "templates" / name
        (templates[name] / "out").mkdir(parents=True)
        (templates[name] / "mlbuild.yaml").write_text(dask_yaml(n, sleep))
    t0 = time.perf_counter()
    address, workers = start_cluster(services)
    result: dict[str, Any] = {
        "cluster": {
            "workers": len(workers),
            "nthreads": 1,
            "start_seconds": round(time.perf_counter() - t0, 3),
        },
        "workloads": {k: {"jobs": n, "sleep": s} for k, (n, s) in WORKLOADS.items()},
    }
    count = 0

    def build(workload: str, mode: str, tag: str) -> tuple[float, Path]:
        nonlocal count
        count += 1
        n = WORKLOADS[workload][0]
        ws = fresh_copy(templates[workload], root / "runs" / f"{workload}-{mode}".replace(" ", "_"))
        remote = root / "remotes" / f"r{count}"
        seconds, out = timed(mode_cmd(mode, address, remote), ws, f"dask-{tag}")
        expect(out, f"done: {n} ran", f"{workload} {mode}")
        got = sorted(p.name for p in (ws / "out").iterdir())
        if got != sorted(f"t{i}.txt" for i in range(n)) or (ws / "out/t0.txt").read_text() != "0\n":
            raise Failed(f"{workload} {mode}: wrong outs in {ws}/out")
        if mode != "local":
            show = subprocess.run(
                [MLBUILD, "manifest", "show", "t0", "--json"],
                cwd=ws,
                capture_output=True,
                text=True,
                env=harness.child_env(ENV),
            )
            doc = json.loads(show.stdout)["manifest"]["executor"]
            if doc.get("type") != "dask" or doc.get("worker") not in workers:
                raise Failed(f"{workload} {mode}: t0's manifest says executor {doc}")
        shutil.rmtree(remote, ignore_errors=True)
        return seconds, ws

    # The first builds on the fresh cluster: workers import mlbuild on their first job.
    result["first_build"] = {mode: round(build("echo", mode, "first")[0], 6) for mode in MODES}
    print(
        "first build after the cluster started (echo x 40): "
        + ", ".join(f"{m} {t:.2f} s" for m, t in result["first_build"].items()),
        flush=True,
    )
    samples: dict[str, dict[str, list[float]]] = {w: {m: [] for m in MODES} for w in WORKLOADS}
    noop: dict[str, list[float]] = {m: [] for m in MODES}
    for workload in WORKLOADS:
        for i in range(repeats):
            for mode in MODES:  # interleaved, so that a slow moment hits every mode alike
                seconds, ws = build(workload, mode, workload)
                samples[workload][mode].append(seconds)
                if workload == "echo" and i == repeats - 1:
                    n = WORKLOADS[workload][0]
                    cmd = mode_cmd(mode, address, root / "remotes" / "noop")
                    for _ in range(3):
                        t, out = timed(cmd, ws, "dask-noop")
                        expect(out, f"done: 0 ran, 0 restored, {n} fresh", f"no-op {mode}")
                        noop[mode].append(t)
            print(
                f"{workload} #{i + 1}: "
                + ", ".join(f"{m} {samples[workload][m][-1]:.2f} s" for m in MODES),
                flush=True,
            )
    cases: dict[str, Any] = {}
    for workload, by_mode in samples.items():
        n = WORKLOADS[workload][0]
        local = harness.median(by_mode["local"])
        cases[workload] = {
            mode: {
                "seconds": [round(t, 6) for t in times],
                "median": med(times),
                "overhead_per_job_ms": round((harness.median(times) - local) / n * 1000, 1),
            }
            for mode, times in by_mode.items()
        }
    result["cases"] = cases
    result["noop"] = {
        m: {"seconds": [round(t, 6) for t in v], "median": med(v)} for m, v in noop.items()
    }
    # Marginal cost of a job: the 40-job build minus the 1-job build (fixed costs cancel).
    n = WORKLOADS["echo"][0]
    marginal = {
        m: (cases["echo"][m]["median"] - cases["echo-1"][m]["median"]) / (n - 1) for m in MODES
    }
    result["echo_marginal_ms_per_job"] = {m: round(v * 1000, 1) for m, v in marginal.items()}
    result["echo_marginal_overhead_ms_per_job"] = {
        m: round((v - marginal["local"]) * 1000, 1) for m, v in marginal.items()
    }
    shutil.rmtree(root, ignore_errors=True)
    return result


# --------------------------------------------------------------------------- report


def fmt(seconds: float) -> str:
    return harness.fmt_seconds(seconds)


def table(results: dict[str, Any]) -> str:
    lines: list[str] = []
    tr = results.get("transfer")
    if tr:
        lines += [
            f"build of the workspace: {fmt(tr['build_seconds'])}; no-op: {fmt(tr['noop_median'])}",
            "",
            "| command | MiB | " + " | ".join(tr["remotes"]) + " |",
            "|---|---:|" + "---:|" * len(tr["remotes"]),
        ]
        names: list[str] = []
        for r in tr["remotes"].values():
            names += [k for k in r["cases"] if k not in names]
        for name in names:
            cells = []
            mib = None
            for r in tr["remotes"].values():
                c = r["cases"].get(name)
                if c is None:
                    cells.append("-")
                    continue
                mib = c["bytes"] // MIB
                cells.append(f"{fmt(c['median'])} ({c['mib_per_s']:.0f} MiB/s)")
            lines.append(f"| {name} | {mib} | " + " | ".join(cells) + " |")
    dk = results.get("dask")
    if dk:
        modes = list(next(iter(dk["cases"].values())))
        lines += [
            "",
            "| workload | " + " | ".join(modes) + " |",
            "|---|" + "---:|" * len(modes),
        ]
        for workload, by_mode in dk["cases"].items():
            cells = []
            for m in modes:
                c = by_mode[m]
                per = "" if dk["workloads"][workload]["jobs"] == 1 else "/job"
                extra = "" if m == "local" else f" (+{c['overhead_per_job_ms']:.0f} ms{per})"
                cells.append(fmt(c["median"]) + extra)
            lines.append(f"| {workload} | " + " | ".join(cells) + " |")
        lines.append(
            "| no-op (echo, built) | "
            + " | ".join(fmt(dk["noop"][m]["median"]) for m in modes)
            + " |"
        )
        lines.append(
            "| first build, echo | " + " | ".join(fmt(dk["first_build"][m]) for m in modes) + " |"
        )
        lines.append(
            "| echo: marginal ms/job (40 vs 1 job) | "
            + " | ".join(f"{dk['echo_marginal_ms_per_job'][m]:.1f}" for m in modes)
            + " |"
        )
    return "\n".join(lines)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("mlbuild", "fsspec", "s3fs", "boto3", "moto", "dask", "distributed"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM / SIGHUP raise SystemExit, so that `finally` blocks stop the services."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=("transfer", "dask"), help="run one part only")
    parser.add_argument("--out", type=Path, default=HERE / "results-remote-dask.json")
    parser.add_argument("--table", type=Path, metavar="JSON", help="print the tables of a result")
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return 0
    if not Path(MLBUILD).exists() or not Path(DASK).exists():
        parser.error(f"{MLBUILD} or {DASK} not found: run with the project venv's python")
    (WORK / "logs").mkdir(parents=True, exist_ok=True)
    for log in (WORK / "logs").iterdir():
        log.unlink()
    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else argv,
        "machine": harness.machine(),
        "mlbuild_git": harness.git_revision(),
        "versions": versions(),
        "loadavg_start": os.getloadavg(),
        "repeats": args.repeats,
    }
    if os.getloadavg()[0] > 0.5:
        print(
            f"warning: load average {os.getloadavg()[0]:.2f} at start: the numbers will be noisy",
            file=sys.stderr,
        )
    services = Services()
    with stop_on_signals():
        try:
            if args.only in (None, "transfer"):
                results["transfer"] = bench_transfer(args.repeats, services)
                services.stop()
            if args.only in (None, "dask"):
                results["dask"] = bench_dask(args.repeats, services)
        finally:
            services.stop()
    return harness.write_results(results, args.out, started, table)


if __name__ == "__main__":
    raise SystemExit(main())
