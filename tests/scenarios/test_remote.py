"""The shared remote cache: two fresh clones share a remote (file:// and s3:// on a real
S3-compatible server, moto's, started here); every pulled byte is verified."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Project, Run, free_port

Workspace = Callable[..., Project]

PIPELINE = """
targets:
  data:raw:
    cmd: python make.py ${outs[0]}
    deps: [make.py]
    outs: [data/raw.csv]
  features:shards:
    cmd: python shard.py ${deps[0]} ${outs[0]}
    deps: [data:raw, shard.py]
    outs: [data/shards]
  model:m:
    cmd: python train.py ${outs[0]}
    deps: [features:shards, train.py]
    outs: [models/m.txt]
"""
FILES = {
    "make.py": (
        "import sys\nrows = ''.join(f'{i},{i * i}\\n' for i in range(200))\n"
        "open(sys.argv[1], 'w').write('x,y\\n' + rows)\n"
    ),
    "shard.py": (
        "import os, sys\nsrc, out = sys.argv[1:]\nos.makedirs(out + '/part', exist_ok=True)\n"
        "lines = open(src).read().splitlines()[1:]\n"
        "for i in range(4):\n"
        "    open(f'{out}/part/{i}.csv', 'w').write('\\n'.join(lines[i::4]) + '\\n')\n"
    ),
    "train.py": (
        "import glob, sys\n"
        "n = sum(len(open(p).read().splitlines()) for p in glob.glob('data/shards/part/*.csv'))\n"
        "open(sys.argv[1], 'w').write(f'rows={n}\\n')\n"
    ),
}
OUTS = ["data/raw.csv", "data/shards/part/0.csv", "data/shards/part/3.csv", "models/m.txt"]


def _clone(p: Project, dest: Path) -> Project:
    """A fresh clone: sources only, no .mlbuild/, no outs, no lock file."""
    dest.mkdir()
    for rel in ["mlbuild.yaml", *FILES]:
        shutil.copy(p.root / rel, dest / rel)
    return Project(dest)


def _with_remote(workspace: Workspace, tmp_path: Path) -> tuple[Project, Path]:
    """The test pipeline with a file:// remote under ``tmp_path``."""
    remote = tmp_path / "remote"
    return workspace(PIPELINE + f"remote: file://{remote}\n", FILES), remote


def _objects(remote: Path) -> list[Path]:
    return sorted(p for p in (remote / "objects").rglob("*") if p.is_file())


def test_a_fresh_clone_pulls_everything_and_runs_no_command(
    workspace: Workspace, tmp_path: Path
) -> None:
    p, remote = _with_remote(workspace, tmp_path)
    first = p.build("--push")
    assert first.ran == ["data:raw", "features:shards", "model:m"]
    assert len(list((remote / "runs").rglob("*.json"))) == 3
    # Objects are plain bytes under their digest: any tool can check them.
    raw = (p.root / "data/raw.csv").read_bytes()
    assert raw in [o.read_bytes() for o in _objects(remote)]

    q = _clone(p, tmp_path / "second")
    second = q.build("--pull")
    assert second.ran == []
    assert second.restored == ["data:raw", "features:shards", "model:m"]
    assert q.outputs(OUTS) == p.outputs(OUTS)
    assert q.mlbuild("audit").code == 0  # pulled manifests link up and verify
    assert q.build().ran == []


def test_nothing_is_written_to_the_remote_without_push(
    workspace: Workspace, tmp_path: Path
) -> None:
    p, remote = _with_remote(workspace, tmp_path)
    p.build()
    p.build("--pull", "-B", "model:m")
    assert not remote.exists()
    p.replace("mlbuild.yaml", "remote:", "remote_write: true\nremote:")
    p.build("-B", "model:m")
    assert len(list((remote / "runs").rglob("*.json"))) == 3


def test_push_and_pull_commands_with_a_remote_flag(workspace: Workspace, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    p = workspace(PIPELINE, FILES)
    p.build()
    run = p.mlbuild("push", "--remote", str(remote))
    assert run.code == 0, run.err
    assert run.out.startswith("pushed 3 builds, 7 objects")  # 2 files, tree + 4, 1 file
    assert p.mlbuild("push", "--remote", str(remote)).out.startswith("pushed 0 builds")

    q = _clone(p, tmp_path / "second")
    pulled = q.mlbuild("pull", "--json", "--remote", str(remote))
    assert pulled.code == 0, pulled.err
    assert pulled.restored == ["data:raw", "features:shards", "model:m"]
    assert q.outputs(OUTS) == p.outputs(OUTS)
    # What is in neither cache is reported, and nothing runs.
    q.replace("train.py", "rows=", "n=")
    missing = q.mlbuild("pull", "--remote", str(remote))
    assert missing.code == 1
    assert "1 target not available from the caches: model:m" in missing.err
    assert q.read("models/m.txt").startswith("rows=")


def _drop_one_build(remote: Path, built: Project) -> Path:
    """Remove features:shards' run entry and the object of one of its files from a
    file:// remote; returns that object's path."""
    part = built.path("data/shards/part/0.csv").read_bytes()
    obj = next(o for o in _objects(remote) if o.read_bytes() == part)
    obj.unlink()
    entry = next(r for r in (remote / "runs").rglob("*.json") if "features:shards" in r.read_text())
    entry.unlink()
    return obj


@pytest.mark.parametrize("list_from", [1, 10**9], ids=["listed", "asked-one-by-one"])
def test_push_sends_only_the_objects_the_remote_lacks_listed_or_asked(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, list_from: int
) -> None:
    """A big push lists the remote's object directories instead of asking about each
    object (Remote.missing); either way only what is missing is sent, nothing present
    is rewritten."""
    from mlbuild.store import remote as remote_mod

    monkeypatch.setattr(remote_mod, "LIST_FROM", list_from)
    remote = tmp_path / "remote"
    p = workspace(PIPELINE, FILES)
    p.build()
    assert p.mlbuild("push", "--remote", str(remote)).out.startswith("pushed 3 builds, 7 objects")
    lost = _drop_one_build(remote, p)
    inodes = {o: o.stat().st_ino for o in _objects(remote)}
    run = p.mlbuild("push", "--remote", str(remote))
    assert run.code == 0, run.err
    assert run.out.startswith("pushed 1 build, 1 object"), run.out
    assert lost.read_bytes() == p.path("data/shards/part/0.csv").read_bytes()
    assert {o: o.stat().st_ino for o in _objects(remote) if o != lost} == inodes


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_a_damaged_remote_object_is_caught_and_the_target_built_locally(
    workspace: Workspace, tmp_path: Path, damage: str
) -> None:
    p, remote = _with_remote(workspace, tmp_path)
    p.build("--push")
    raw = (p.root / "data/raw.csv").read_bytes()
    [obj] = [o for o in _objects(remote) if o.read_bytes() == raw]
    obj.chmod(0o644)
    if damage == "flip":
        obj.write_bytes(raw[:10] + bytes([raw[10] ^ 1]) + raw[11:])
    elif damage == "truncate":
        obj.write_bytes(raw[: len(raw) // 2])
    else:
        obj.unlink()

    q = _clone(p, tmp_path / "second")
    run = q.mlbuild("--json", "--pull")
    assert run.code == 0, run.err
    assert run.ran == ["data:raw"]  # rebuilt locally; the rest still came from the remote
    assert run.restored == ["features:shards", "model:m"]
    rel = os.path.relpath(obj, remote)
    expected = "is missing" if damage == "delete" else "is corrupt"
    assert f"remote object {rel} (out data/raw.csv) {expected}" in run.out + run.err
    assert q.outputs(OUTS) == p.outputs(OUTS)
    # Nothing unverified reached the local cache.
    local = q.root / ".mlbuild/cache" / rel
    assert local.read_bytes() == raw


def test_a_remote_tree_that_escapes_its_directory_is_refused(
    workspace: Workspace, tmp_path: Path
) -> None:
    p, remote = _with_remote(workspace, tmp_path)
    p.build("--push")
    # A malicious remote: a well-formed tree object (stored under its true digest) with an
    # entry leading out, and the run-cache entry of features:shards pointing to it.
    from mlbuild.digest import canonical_json, hash_bytes

    lock = json.loads(p.read("mlbuild.lock"))
    key = lock["targets"]["features:shards"]["key"]
    some_file = lock["targets"]["data:raw"]["outs"][0]["xxh"]
    body = canonical_json([["../../escaped.csv", some_file, "f"]]).encode()
    evil = hash_bytes(body).split(":", 1)[1]
    (remote / "objects" / evil[:2]).mkdir(exist_ok=True)
    (remote / "objects" / evil[:2] / evil[2:]).write_bytes(body)
    hexk = key.split(":", 1)[1]
    run_file = remote / "runs" / hexk[:2] / (hexk[2:] + ".json")
    entry = json.loads(run_file.read_text())
    entry["outs"][0]["xxh"] = "xxh3-128:" + evil
    run_file.write_text(json.dumps(entry))

    q = _clone(p, tmp_path / "second")
    run = q.mlbuild("--pull")
    assert run.code == 0, run.err
    assert "refused the tree of data/shards" in run.err and "'../../escaped.csv'" in run.err
    assert not (tmp_path / "escaped.csv").exists()
    assert not (q.root / "escaped.csv").exists()
    assert q.outputs(OUTS) == p.outputs(OUTS)


def test_an_unreachable_remote_is_a_warning_and_the_build_goes_on(
    workspace: Workspace, tmp_path: Path
) -> None:
    port = free_port()
    p = workspace(
        PIPELINE
        + "remote: s3://nowhere/cache\n"
        + f"remote_options: {{client_kwargs: {{endpoint_url: 'http://127.0.0.1:{port}'}}}}\n",
        FILES,
    )
    run = p.mlbuild("--pull", env=_aws_env() | {"AWS_MAX_ATTEMPTS": "1"})
    assert run.code == 0, run.err
    # One warning: after the first failure the remote is not asked again in this build.
    assert run.err.count("not asking the remote again in this build") == 1
    assert p.read("models/m.txt") == "rows=200\n"


# --------------------------------------------------------------------------- S3 (moto server)


def _aws_env() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible HTTP server (moto in server mode) with a bucket `mlbuild`."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        import boto3

        boto3.client("s3", endpoint_url=url, **_boto_args()).create_bucket(Bucket="mlbuild")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _boto_args() -> dict[str, str]:
    env = _aws_env()
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env["AWS_DEFAULT_REGION"],
    }


def _pushed_to_s3(workspace: Workspace, endpoint: str, prefix: str) -> tuple[Project, Run]:
    """The test pipeline with an s3://mlbuild/PREFIX remote on the moto server, built
    with --push."""
    config = (
        PIPELINE
        + f"remote: s3://mlbuild/{prefix}\n"
        + f"remote_options: {{client_kwargs: {{endpoint_url: '{endpoint}'}}}}\n"
    )
    p = workspace(config, FILES)
    return p, p.mlbuild("--json", "--push", env=_aws_env())


@pytest.mark.s3
def test_two_clones_share_an_s3_remote(
    workspace: Workspace, tmp_path: Path, s3_endpoint: str
) -> None:
    p, first = _pushed_to_s3(workspace, s3_endpoint, "team-cache")
    assert first.code == 0, first.err
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, **_boto_args())
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="mlbuild")["Contents"]]
    assert sum(k.startswith("team-cache/runs/") for k in keys) == 3
    assert sum(k.startswith("team-cache/manifests/") for k in keys) == 3

    q = _clone(p, tmp_path / "second")
    second = q.mlbuild("--json", "--pull", env=_aws_env())
    assert second.code == 0, second.err
    assert second.ran == []
    assert q.outputs(OUTS) == p.outputs(OUTS)

    # A corrupted object on S3 is caught like on disk.
    raw_key = next(
        k
        for k in keys
        if k.startswith("team-cache/objects/")
        and s3.get_object(Bucket="mlbuild", Key=k)["Body"].read()
        == p.path("data/raw.csv").read_bytes()
    )
    s3.put_object(Bucket="mlbuild", Key=raw_key, Body=b"x,y\n0,1\n")
    r = _clone(p, tmp_path / "third")
    third = r.mlbuild("--json", "--pull", env=_aws_env())
    assert third.code == 0, third.err
    assert third.ran == ["data:raw"]
    assert "is corrupt" in third.out + third.err
    assert r.outputs(OUTS) == p.outputs(OUTS)


@pytest.mark.s3
def test_a_big_push_to_s3_lists_the_bucket_and_sends_only_what_is_missing(
    workspace: Workspace, tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlbuild.store import remote as remote_mod

    monkeypatch.setattr(remote_mod, "LIST_FROM", 1)  # every object directory is listed
    p, first = _pushed_to_s3(workspace, s3_endpoint, "listed")
    assert first.code == 0, first.err
    import boto3

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, **_boto_args())

    def keys(prefix: str) -> list[str]:
        found = s3.list_objects_v2(Bucket="mlbuild", Prefix=prefix).get("Contents", [])
        return sorted(o["Key"] for o in found)

    objects = keys("listed/objects/")
    assert len(objects) == 7
    part = p.path("data/shards/part/0.csv").read_bytes()
    lost = next(k for k in objects if s3.get_object(Bucket="mlbuild", Key=k)["Body"].read() == part)
    s3.delete_object(Bucket="mlbuild", Key=lost)
    entry = next(
        k
        for k in keys("listed/runs/")
        if b"features:shards" in s3.get_object(Bucket="mlbuild", Key=k)["Body"].read()
    )
    s3.delete_object(Bucket="mlbuild", Key=entry)
    run = p.mlbuild("push", env=_aws_env())
    assert run.code == 0, run.err
    assert run.out.startswith("pushed 1 build, 1 object"), run.out
    assert keys("listed/objects/") == objects


def test_remote_write_pushes_builds_but_never_from_pull_and_counts_only_pushes(
    workspace: Workspace, tmp_path: Path
) -> None:
    p, remote = _with_remote(workspace, tmp_path)
    p.build("--push")
    q = _clone(p, tmp_path / "second")
    q.replace("mlbuild.yaml", "remote:", "remote_write: true\nremote:")
    q.replace("train.py", "rows=", "n=")
    assert q.mlbuild("pull").code == 1  # model:m is in neither cache
    assert len(_runs_of(remote)) == 3  # pull wrote nothing, remote_write or not
    run = q.mlbuild("--pull")
    assert run.code == 0, run.err
    # 2 builds restored, 1 built and pushed: the summary counts only what was sent.
    assert "mlbuild: pushed 1 build, 1 object" in run.err
    assert len(_runs_of(remote)) == 4


def _runs_of(remote: Path) -> list[Path]:
    return sorted((remote / "runs").rglob("*.json"))


def test_push_on_a_terminal_draws_a_progress_bar_and_ci_gets_one_line(
    workspace: Workspace, tmp_path: Path
) -> None:
    script = shutil.which("script")
    if script is None:
        pytest.skip("no `script` command to give mlbuild a terminal (util-linux)")
    p, remote = _with_remote(workspace, tmp_path)
    p.build()
    plain = p.mlbuild("push")
    assert plain.out == "pushed 3 builds, 7 objects (0.0 MiB), 3 manifests\n"
    assert plain.err == ""  # no bar without a terminal
    shutil.rmtree(remote)
    cmd = f"{sys.executable} -m mlbuild push"
    tty = subprocess.run(
        [script, "-qc", cmd, "/dev/null"], cwd=p.root, capture_output=True, text=True, timeout=60
    )
    assert tty.returncode == 0
    assert "pushing builds" in tty.stdout and "3/3" in tty.stdout
    assert "pushed 3 builds" in tty.stdout


def test_a_dry_run_with_pull_says_what_the_remote_would_restore(
    workspace: Workspace, tmp_path: Path
) -> None:
    p, remote = _with_remote(workspace, tmp_path)
    p.build("--push")
    q = _clone(p, tmp_path / "second")
    run = q.mlbuild("-n", "--pull")
    assert run.code == 0, run.err
    assert [line.split()[:3] for line in run.out.splitlines()] == [
        ["would", "restore", "data:raw"],
        ["would", "restore", "features:shards"],
        ["would", "restore", "model:m"],
    ]
    assert not q.path("data").exists() and not q.path(".mlbuild/cache/objects").exists()


def test_a_clone_without_the_key_audits_pulled_signed_builds(
    workspace: Workspace, tmp_path: Path
) -> None:
    """CI clones pull signed builds but hold no signing key: their restore manifests are
    unsigned, and vouched for by the signed originals they restore (same key, same outs)."""
    p, remote = _with_remote(workspace, tmp_path)
    assert p.mlbuild("key", "generate", "ci").code == 0
    signed = p.mlbuild("--push", env={"MLBUILD_SIGNING_KEY": str(p.root / "ci.key")})
    assert signed.code == 0, signed.err
    q = _clone(p, tmp_path / "second")
    shutil.copy(p.root / "ci.pub", q.root / "ci.pub")
    assert q.build("--pull").restored == ["data:raw", "features:shards", "model:m"]
    ok = q.mlbuild("audit", "--require-signatures", "--trusted-key", "ci.pub")
    assert ok.code == 0, ok.out + ok.err
    # A build made in the clone itself, unsigned, is still refused.
    q.replace("train.py", "rows=", "n=")
    q.build()
    bad = q.mlbuild("audit", "--require-signatures", "--trusted-key", "ci.pub")
    assert bad.code == 6
    assert "model:m  signature" in bad.out
