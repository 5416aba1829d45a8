"""`mlbuild reproduce TARGET`: re-run a recorded build in a scratch copy of its inputs and
compare every out with the recorded digests (issue 10, part 6)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project

Workspace = Callable[..., Project]

PIPELINE = """\
params: params.yaml
targets:
  data:raw:
    cmd: python make.py ${outs[0]}
    deps: [rows.txt]
    outs: [data/raw.csv]
  model:fit:
    cmd: python fit.py
    deps: [data:raw]
    params: [train.scale]
    outs: [model.txt, metrics.json, preds.csv]
    metrics: [metrics.json]
  noise:
    cmd: python noise.py > ${outs[0]}
    outs: [noise.txt]
"""
FILES = {
    "params.yaml": "train:\n  scale: 2\n",
    "rows.txt": "4\n",
    "make.py": (
        "import sys\n"
        "n = int(open('rows.txt').read())\n"
        "open(sys.argv[1], 'w').write('x\\n' + ''.join(f'{i}\\n' for i in range(n)))\n"
    ),
    # Deterministic, unless METRIC_JITTER / CSV_JITTER stand for a nondeterministic step.
    "fit.py": (
        "import json, os, yaml\n"
        "scale = yaml.safe_load(open('params.yaml'))['train']['scale']\n"
        "xs = [int(x) for x in open('data/raw.csv').read().split()[1:]]\n"
        "open('model.txt', 'w').write(f'scale={scale} rows={len(xs)}\\n')\n"
        "acc = round(0.9 + float(os.environ.get('METRIC_JITTER', 0)), 6)\n"
        "json.dump({'accuracy': acc, 'rows': len(xs)}, open('metrics.json', 'w'))\n"
        "jitter = float(os.environ.get('CSV_JITTER', 0))\n"
        "rows = ''.join(f'{x},{x * scale + jitter},{x % 2}\\n' for x in xs)\n"
        "open('preds.csv', 'w').write('id,score,label\\n' + rows)\n"
    ),
    "noise.py": "import random, time\nprint(time.time_ns(), random.random())\n",
}
OUTS = ["data/raw.csv", "model.txt", "metrics.json", "preds.csv", "noise.txt"]


def _records(p: Project, target: str) -> list[tuple[str, dict[str, Any]]]:
    """The target's reproduction records, oldest first, read from the store directly."""
    index = p.path(f".mlbuild/manifests/reproductions/{target.replace(':', '__')}.jsonl")
    found = []
    for mid in index.read_text().split():
        hexd = mid.split(":", 1)[1]
        found.append((mid, json.loads(p.read(f".mlbuild/manifests/{hexd[:2]}/{hexd[2:]}.json"))))
    return found


def test_a_deterministic_build_reproduces_after_the_workspace_moved_on(
    workspace: Workspace, tmp_path: Path
) -> None:
    from mlbuild.digest import canonical_json
    from mlbuild.provenance.signing import TrustedKeys, generate_keypair, load_public_key

    p = workspace(PIPELINE, FILES)
    p.build("model:fit")
    built_id, _ = p.manifest("model:fit")
    # Everything the build read moves on: its params, its script, its upstream's out.
    p.replace("params.yaml", "scale: 2", "scale: 3")
    p.replace("fit.py", "import json", "# tuned\nimport json")
    original_raw = p.read("data/raw.csv")
    p.write("data/raw.csv", "x\n9\n")
    before = {rel: p.path(rel).read_bytes() for rel in ("mlbuild.lock", "model.txt")}
    history = p.read(".mlbuild/manifests/index/model__fit.jsonl")
    key, public, _ = generate_keypair(str(tmp_path / "ci"))

    run = p.mlbuild("reproduce", "model:fit", "--json", env={"MLBUILD_SIGNING_KEY": key})
    assert run.code == 0, run.err
    result = json.loads(run.out)
    assert result["verdict"] == "identical"
    assert result["summary"] == "reproducible: 3 out(s) bit-identical"
    assert [r["path"] for r in result["results"] if r["identical"]] == [
        "model.txt",
        "metrics.json",
        "preds.csv",
    ]
    assert "params.yaml: used the recorded train.scale = 2" in run.err
    # Nothing a build relies on changed; the scratch directory is gone.
    assert {rel: p.path(rel).read_bytes() for rel in before} == before
    assert p.read(".mlbuild/manifests/index/model__fit.jsonl") == history
    assert list(p.path(".mlbuild/tmp").iterdir()) == []
    [(rid, record)] = _records(p, "model:fit")
    assert rid == result["manifest"]
    assert (record["status"], record["reproduces"], record["verdict"]) == (
        "reproduction",
        built_id,
        "identical",
    )
    assert record["differing"] == []
    sig = json.loads(p.read(f".mlbuild/manifests/{rid[7:9]}/{rid[9:]}.sig.json"))
    keyid, pub = load_public_key(public)
    signed = canonical_json(record).encode()
    assert TrustedKeys({keyid: pub}).verify(sig["keyid"], signed, sig["sig"]) is None

    p.write("data/raw.csv", original_raw)  # put the out back: the audit re-reads it
    card = p.mlbuild("card", "model:fit")
    assert card.code == 0, card.err
    assert f"re-ran build `{built_id}`" in card.out
    assert "reproducible: 3 out(s) bit-identical" in card.out
    audit = p.mlbuild("audit", "model:fit", "--format", "json")
    assert audit.code == 0, audit.out
    [shown] = json.loads(audit.out)["reproductions"]
    assert (shown["target"], shown["manifest"], shown["verdict"]) == (
        "model:fit",
        rid,
        "identical",
    )

    # A source dep's recorded bytes are neither in the cache nor in the workspace: the
    # build cannot be re-run, and nothing is recorded.
    p.write("rows.txt", "7\n")
    gone = p.mlbuild("reproduce", "data:raw")
    assert gone.code == 2
    assert "cannot reproduce data:raw: dep rows.txt" in gone.err
    assert "changed since the build" in gone.err
    assert not p.path(".mlbuild/manifests/reproductions/data__raw.jsonl").exists()


def test_outs_that_differ_are_named_with_what_moved_and_tolerances_judge_metrics(
    workspace: Workspace,
) -> None:
    p = workspace(PIPELINE, FILES)
    p.build("model:fit", "noise")

    noise = p.mlbuild("reproduce", "noise")
    assert noise.code == 6, noise.err
    assert "  DIFFERS    noise.txt  " in noise.out
    assert "noise: not reproducible: noise.txt (" in noise.out

    both = p.mlbuild(
        "reproduce", "model:fit", env={"METRIC_JITTER": "0.003", "CSV_JITTER": "0.5"}
    )
    assert both.code == 6, both.err
    assert "  identical  model.txt" in both.out
    assert "  DIFFERS    metrics.json  accuracy 0.9 → 0.903 (+0.003)" in both.out
    assert "  DIFFERS    preds.csv  columns changed: score" in both.out

    within = p.mlbuild(
        "reproduce",
        "model:fit",
        "--tolerance",
        "accuracy=0.005",
        "--json",
        env={"METRIC_JITTER": "0.003"},
    )
    assert within.code == 0, within.err
    result = json.loads(within.out)
    assert result["verdict"] == "within-tolerance"
    [metrics] = [r for r in result["results"] if r["path"] == "metrics.json"]
    assert metrics["within_tolerance"] and not metrics["identical"]
    [moved] = metrics["metrics"]
    assert moved["metric"] == "accuracy"
    assert moved["tolerance"] == 0.005
    assert moved["delta"] == pytest.approx(0.003)
    assert [r["path"] for r in result["results"] if not r["identical"]] == ["metrics.json"]

    # The audit reports each target's latest reproduction: a differing one is a violation.
    audit = p.mlbuild("audit", "noise", "model:fit", "--format", "json")
    assert audit.code == 6
    report = json.loads(audit.out)
    [finding] = report["findings"]
    assert (finding["target"], finding["check"]) == ("noise", "reproduction")
    assert finding["found"].startswith("not reproducible: noise.txt (")
    verdicts = {r["target"]: r["verdict"] for r in report["reproductions"]}
    assert verdicts == {"model:fit": "within-tolerance", "noise": "differs"}
    assert [r["verdict"] for _, r in _records(p, "model:fit")] == ["differs", "within-tolerance"]
    assert list(p.path(".mlbuild/tmp").iterdir()) == []


DASK_PIPELINE = """\
targets:
  model:small:
    python: train:fit
    deps: [data.txt]
    outs: [model.txt]
"""
DASK_FILES = {
    "data.txt": "1\n2\n3\n",
    "train.py": (
        "def fit(deps, outs, params):\n"
        "    n = len(open(deps[0]).read().split())\n"
        "    open(outs[0], 'w').write(f'rows={n}\\n')\n"
    ),
}


@pytest.mark.dask
def test_a_callable_reproduces_on_a_dask_cluster(workspace: Workspace, cluster: str) -> None:
    """``cluster``: the session's `dask scheduler` + workers (tests/scenarios/conftest.py)."""
    p = workspace(DASK_PIPELINE, DASK_FILES)
    p.build()
    run = p.mlbuild("reproduce", "model:small", "--dask-address", cluster)
    assert run.code == 0, run.err
    assert "model:small: reproducible: 1 out(s) bit-identical" in run.out
    [(_, record)] = _records(p, "model:small")
    assert record["executor"]["type"] == "dask"
    assert record["executor"]["scheduler"] == cluster


def test_a_reproduction_or_another_targets_manifest_is_refused_as_a_build(
    workspace: Workspace,
) -> None:
    """`rollback --to` and `reproduce --manifest` take a build of the named target only."""
    p = workspace(PIPELINE, FILES)
    p.build("model:fit")
    assert p.mlbuild("reproduce", "model:fit").code == 0
    [(repro, doc)] = _records(p, "model:fit")
    raw_id, _ = p.manifest("data:raw")
    for args, hint in (
        (("rollback", "model:fit", "--to", repro), "roll back to the build it reproduced: --to"),
        (("reproduce", "model:fit", "--manifest", repro), "name the build it reproduced"),
    ):
        run = p.mlbuild(*args)
        assert run.code == 2, run.err
        assert f"manifest {repro} is a reproduction, not a build of model:fit" in run.err
        assert f"{hint}" in run.err and doc["reproduces"] in run.err
    for verb, flag in (("rollback", "--to"), ("reproduce", "--manifest")):
        run = p.mlbuild(verb, "model:fit", flag, raw_id)
        assert run.code == 2
        assert f"manifest {raw_id} is of data:raw, not model:fit" in run.err
