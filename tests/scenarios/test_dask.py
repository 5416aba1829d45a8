"""Building on a real Dask cluster (`dask scheduler` + three `dask worker` processes, started
once per session by tests/scenarios/conftest.py), shared-filesystem mode: same outs as a
local build, workers in the manifests, and a worker killed mid-job is survived."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Project, free_port, processes_in

Workspace = Callable[..., Project]

pytestmark = pytest.mark.dask  # the process boundary too (see tests/conftest.py)

PIPELINE = """
params: {rows: 50}
targets:
  data:raw:
    cmd: python make.py ${params.rows} ${outs[0]}
    outs: [data/raw.txt]
  model:{algo}:
    matrix: {algo: [small, big]}
    python: train:fit
    deps: [data:raw]
    outs: ["models/${algo}.txt"]
    metrics: ["metrics/${algo}.json"]
  model:prod:
    promote: {from: "model:*", by: score}
    outs: [models/prod.txt]
"""
FILES = {
    "make.py": (
        "import sys\n"
        "open(sys.argv[2], 'w').write(''.join(f'{i}\\n' for i in range(int(sys.argv[1]))))\n"
    ),
    # notes.txt is read but not declared (absent where the remote mode stages inputs)
    "notes.txt": "n\n",
    "train.py": (
        "import json, os\n"
        "def fit(deps, outs, params, algo):\n"
        "    os.path.exists('notes.txt') and open('notes.txt').read()\n"
        "    n = len(open(deps[0]).read().splitlines())\n"
        "    open(outs[0], 'w').write(f'{algo} {n}\\n')\n"
        "    json.dump({'score': n * (2 if algo == 'big' else 1)}, open(outs[1], 'w'))\n"
    ),
}
OUTS = ["data/raw.txt", "models/small.txt", "models/big.txt", "models/prod.txt"]
# `cluster`: the session's `dask scheduler` + three `dask worker`s, one declaring gpu=1
# (tests/scenarios/conftest.py).


def _workers(address: str) -> set[str]:
    from distributed import Client

    with Client(address, timeout="30s") as client:
        return set(client.scheduler_info()["workers"])


def test_the_pipeline_builds_on_the_cluster_like_it_does_locally(
    workspace: Workspace, tmp_path: Path, cluster: str
) -> None:
    local = workspace(PIPELINE, FILES, dest="local")
    local.build()
    p = workspace(PIPELINE, FILES, dest="on-dask")
    run = p.build("--executor", "dask", "--dask-address", cluster, "-j", "2")
    assert run.ran == ["data:raw", "model:big", "model:prod", "model:small"]
    assert p.outputs(OUTS) == local.outputs(OUTS)
    workers = _workers(cluster)
    for target in ("data:raw", "model:small", "model:big"):
        _, doc = p.manifest(target)
        assert doc["executor"]["type"] == "dask"
        assert doc["executor"]["scheduler"] == cluster
        assert doc["executor"]["worker"] in workers
    # A callable on a worker records its reads as it does locally (issue 10, part 2).
    assert "model:small read notes.txt, which it does not declare" in run.out
    for entries in (p.lock_entries(), local.lock_entries()):
        assert list(entries["model:big"]["undeclared"]) == ["notes.txt"]
    _, prod = p.manifest("model:prod")
    assert prod["executor"]["type"] == "local"  # a promotion copies on the client
    assert p.build("--dask-address", cluster).ran == []
    assert p.mlbuild("audit").code == 0


def test_executor_in_the_config_and_a_failing_job(workspace: Workspace, cluster: str) -> None:
    p = workspace(
        f"executor: {{type: dask, address: '{cluster}'}}\n"
        "targets:\n"
        "  ok:x:\n    cmd: echo fine > ${outs[0]}\n    outs: [ok.txt]\n"
        "  bad:x:\n    cmd: echo broken; exit 3\n    outs: [bad.txt]\n"
    )
    run = p.mlbuild("--json", "-k")
    assert run.code == 1
    assert run.ran == ["ok:x"]
    [failed] = [e for e in run.events if e.get("outcome") == "failed"]
    assert "command exited with 3" in failed["error"]
    assert p.read(".mlbuild/logs/bad__x.log") == "broken\n"  # the worker wrote the log


# executor.connect_timeout: how long a build waits for a scheduler that is not there
IMPATIENT = "executor: {type: dask, connect_timeout: 0.5}\n"


def test_an_unreachable_scheduler_is_a_usage_error(workspace: Workspace) -> None:
    p = workspace(IMPATIENT + PIPELINE, FILES)
    started = time.monotonic()
    run = p.mlbuild("--dask-address", f"tcp://127.0.0.1:{free_port()}")
    assert run.code == 2
    assert "cannot reach the Dask scheduler" in run.err
    assert time.monotonic() - started < 10  # the default wait; 0.5 s was asked for
    assert not p.path("data").exists()


SLOW = """\
import os, sys, time

def parent(pid):
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])

def cmdline(pid):
    return open(f"/proc/{pid}/cmdline", "rb").read()

pid = os.getpid()
while b"mlbuild.executors.supervise" not in cmdline(pid):
    pid = parent(pid)
worker = parent(pid)  # the Dask worker process that runs the supervisor
retry = os.path.exists("pids")  # the first attempt is killed in its sleep; a retry is quick
open("pids.tmp", "w").write(f"{worker} {os.getpid()}")
os.replace("pids.tmp", "pids")
out = sys.argv[1]
open(out, "w").write("partial\\n")
time.sleep(0.2 if retry else 4)
open(out, "a").write("done\\n")
"""


def test_a_worker_killed_mid_job_is_retried_and_nothing_half_done_is_recorded(
    workspace: Workspace, cluster: str
) -> None:
    p = workspace(
        "targets:\n"
        "  slow:x:\n"
        "    cmd: python slow.py ${outs[0]} && echo finished\n"
        "    deps: [slow.py]\n"
        "    outs: [out.txt]\n",
        {"slow.py": SLOW},
    )
    build = p.popen("--json", "--dask-address", cluster)
    deadline = time.monotonic() + 60
    while not p.path("pids").exists():
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    worker_pid, job_pid = map(int, p.read("pids").split())
    os.kill(worker_pid, signal.SIGKILL)  # the worker process, mid-job
    out, err = build.communicate(timeout=120)
    assert build.returncode == 0, err
    # The killed attempt's command, a grandchild of the worker, died with it: it is gone
    # (had it lived, it would have appended its "done" 4 s after it started, before going).
    deadline = time.monotonic() + 6
    with pytest.raises(ProcessLookupError):
        while time.monotonic() < deadline:
            os.kill(job_pid, 0)
            time.sleep(0.05)
    assert p.read("out.txt") == "partial\ndone\n"
    retry_worker, _ = map(int, p.read("pids").split())
    assert retry_worker != worker_pid
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    finished = [e for e in events if e["event"] == "target_finished"]
    assert [(e["target"], e["outcome"]) for e in finished] == [("slow:x", "ran")]
    _, doc = p.manifest("slow:x")
    assert doc["executor"]["worker"] in _workers(cluster)
    assert p.build().ran == []  # what was recorded is what is on disk


def test_without_a_shared_filesystem_data_moves_through_the_remote_cache(
    workspace: Workspace, tmp_path: Path, cluster: str
) -> None:
    local = workspace(PIPELINE, FILES, dest="local")
    local.build()
    remote = tmp_path / "remote"
    p = workspace(
        PIPELINE
        + "  where:x:\n    cmd: pwd > ${outs[0]}\n    outs: [where.txt]\n"
        + f"remote: file://{remote}\n"
        + f"executor: {{type: dask, address: '{cluster}', mode: remote}}\n",
        FILES,
        dest="staged",
    )
    run = p.build()
    assert run.ran == ["data:raw", "model:big", "model:prod", "model:small", "where:x"]
    assert p.outputs(OUTS) == local.outputs(OUTS)
    assert p.read("where.txt").strip() != str(p.root)  # it ran in a worker's scratch dir
    # Inputs and outs went through the remote as plain objects.
    objects = {o.read_bytes() for o in (remote / "objects").rglob("*") if o.is_file()}
    assert p.path("make.py").read_bytes() in objects
    assert p.path("models/big.txt").read_bytes() in objects
    _, doc = p.manifest("model:big")
    assert doc["executor"]["type"] == "dask"
    assert doc["executor"]["worker"] in _workers(cluster)
    assert p.mlbuild("audit").code == 0
    # A command sees only what it declares: an undeclared file is not shipped.
    p.write("extra.txt", "side input\n")
    p.replace("mlbuild.yaml", "cmd: pwd > ${outs[0]}", "cmd: cat extra.txt > ${outs[0]}")
    failed = p.mlbuild("where:x")
    assert failed.code == 1
    assert "No such file" in failed.out + failed.err


@pytest.mark.demo
@pytest.mark.slow  # 50 s of scikit-learn; the default suite covers both modes on a small pipeline
@pytest.mark.parametrize("mode", ["shared", "remote"])
def test_the_demo_builds_on_the_cluster(tmp_path: Path, cluster: str, mode: str) -> None:
    """Issue 5's "done when": the README demo on a local Dask cluster, both modes."""
    import shutil

    repo = Path(__file__).resolve().parents[2]
    root = tmp_path / "demo"
    root.mkdir()
    for name in ("mlbuild.yaml", "params.yaml"):
        shutil.copy(repo / name, root / name)
    shutil.copytree(repo / "examples", root / "examples")
    p = Project(root)
    args = ["--dask-address", cluster, "--dask-mode", mode, "--remote", str(tmp_path / "rc")]
    run = p.build(*args)
    assert run.ran == [
        "data:raw",
        "features:test",
        "features:train",
        "model:forest",
        "model:logreg",
        "model:prod",
    ]
    _, doc = p.manifest("model:logreg")
    assert doc["executor"]["type"] == "dask"
    assert doc["metrics"]["accuracy"] >= 0.9
    assert p.build(*args).ran == []


def test_ctrl_c_stops_the_jobs_running_on_the_cluster(workspace: Workspace, cluster: str) -> None:
    p = workspace(
        "targets:\n"
        "  slow:x:\n"
        "    cmd: touch started && sleep 5 && echo late > ${outs[0]}\n"
        "    outs: [out.txt]\n"
    )
    build = p.popen("--dask-address", cluster)
    deadline = time.monotonic() + 60
    while not p.path("started").exists():
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    build.send_signal(signal.SIGINT)
    build.communicate(timeout=60)
    assert build.returncode == 130
    # The command is gone (had it lived, it would have written its out before going).
    deadline = time.monotonic() + 8
    while processes_in(p.root) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_in(p.root) == []
    assert not p.path("out.txt").exists()


def test_a_no_op_needs_no_cluster_and_dask_mode_needs_dask(workspace: Workspace) -> None:
    p = workspace(IMPATIENT + PIPELINE, FILES)
    p.build("--executor", "local")
    down = f"tcp://127.0.0.1:{free_port()}"
    run = p.mlbuild("--dask-address", down)
    assert run.code == 0, run.err  # everything fresh: the scheduler is never contacted
    p.replace("mlbuild.yaml", "rows: 50", "rows: 60")
    assert p.mlbuild("--dask-address", down).code == 2  # now something must run
    wrong = p.mlbuild("--executor", "local", "--dask-mode", "remote")
    assert wrong.code == 2 and "--dask-mode goes with the dask executor" in wrong.err


def test_a_resource_pool_maps_to_the_worker_that_declares_it(
    workspace: Workspace, cluster: str
) -> None:
    from distributed import Client

    with Client(cluster, timeout="30s") as client:
        workers = client.scheduler_info()["workers"]
    [gpu_worker] = [a for a, w in workers.items() if w.get("resources", {}).get("gpu")]
    p = workspace(
        "targets:\n"
        + "".join(
            f"  train:{i}:\n    cmd: echo {i} > ${{outs[0]}}\n    outs: [m{i}.txt]\n"
            f"    resources: {{gpu: 1}}\n"
            for i in range(3)
        )
        + "  plain:x:\n    cmd: echo x > ${outs[0]}\n    outs: [x.txt]\n"
        + "    resources: {disk: 1}\n"  # no worker declares it: mlbuild-side only
    )
    run = p.build("--dask-address", cluster, "-j", "4")
    assert run.ran == ["plain:x", "train:0", "train:1", "train:2"]
    for i in range(3):
        _, doc = p.manifest(f"train:{i}")
        assert doc["executor"]["worker"] == gpu_worker
