"""Provenance records read back are untrusted: forged restores, corrupt and malformed
manifests, garbage history lines and signature files.

The promises, checked through the CLI:

- an unsigned restore or rollback of a signed build vouches for nothing but who restored it,
  when and where: a careful forger who rewrites any other field of it (and recomputes its id
  and fixes the history index) fails `audit --require-signatures` (exit 6, the field named),
  and `card` / `manifest show` show the signed build's values, never the forged ones;
- a current manifest that is missing, truncated, not an object or edited is a violation of
  `audit` (exit 6, the file named), and `card` / `manifest show` say so in one line (exit 6)
  with a next step, never "never built";
- no manifest, history line or signature file, however malformed, makes any command exit 70;
  no manifest id read from a file becomes a path outside `.mlbuild/manifests/`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlbuild.provenance.records import manifest_id
from mlbuild.provenance.store import ManifestStore
from tests.conftest import Project, Run

PIPELINE = """
version: 1
params: params.yaml
packages: [click]
targets:
  data:raw:
    cmd: python make.py ${params.rows} ${outs[0]}
    deps: [make.py]
    outs: [data/raw.txt]
  model:m:
    cmd: python train.py ${deps[0]} ${params.lr}
    deps: [data:raw, train.py]
    outs: [models/m.txt]
    metrics: [metrics/m.json]
    gate: [{metric: accuracy, min: 0.5}]
"""
FILES = {
    "params.yaml": "rows: 6\nlr: 0.1\n",
    "make.py": (
        "import sys\n"
        "open(sys.argv[2], 'w').write(''.join(f'{i}\\n' for i in range(int(sys.argv[1]))))\n"
    ),
    "train.py": (
        "import json, os, sys\n"
        "data, lr = open(sys.argv[1]).read(), sys.argv[2]\n"
        "os.makedirs('metrics', exist_ok=True)\n"
        "open('models/m.txt', 'w').write(data + 'lr=' + lr + '\\n')\n"
        "json.dump({'accuracy': 0.75}, open('metrics/m.json', 'w'))\n"
    ),
}
SIGNED = {"MLBUILD_SIGNING_KEY": "keys/ci.key"}


def _write(root: Path) -> Project:
    root.mkdir(parents=True)
    for rel, text in {"mlbuild.yaml": PIPELINE, **FILES}.items():
        (root / rel).write_text(text)
    return Project(root)


def _signed(root: Path) -> Project:
    """Everything built and signed by keys/ci; mlbuild.yaml trusts keys/ci.pub."""
    p = _write(root)
    assert p.mlbuild("key", "generate", "keys/ci").code == 0
    p.write("mlbuild.yaml", PIPELINE.replace("packages:", "trusted_keys: [keys/ci.pub]\npackages:"))
    built = p.mlbuild("--json", env=SIGNED)
    assert built.code == 0, built.err
    return p


# Each base project is built once per module and copied for every test that changes it:
# the scenarios stay independent without paying for the same builds again.


@pytest.fixture(scope="module")
def signed_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _signed(tmp_path_factory.mktemp("signed") / "ws").root


@pytest.fixture(scope="module")
def restored_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A signed build of model:m, then an unsigned restore of it (as a clone without the
    key writes one)."""
    p = _signed(tmp_path_factory.mktemp("restored") / "ws")
    build_id, _ = p.manifest("model:m")
    p.path("models/m.txt").unlink()
    assert p.build().restored == ["model:m"]
    restore_id, doc = p.manifest("model:m")
    assert doc["status"] == "restored" and doc["restored_from"] == build_id
    assert not _sig(p, restore_id).exists()
    return p.root


@pytest.fixture(scope="module")
def plain_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = _write(tmp_path_factory.mktemp("plain") / "ws")
    p.build()
    return p.root


def _copy(base: Path, tmp_path: Path) -> Project:
    root = tmp_path / "ws"
    shutil.copytree(base, root, symlinks=True)
    return Project(root)


def _restored(base: Path, tmp_path: Path) -> tuple[Project, str, str]:
    """A copy of ``restored_base``: (project, restore id, build id)."""
    p = _copy(base, tmp_path)
    restore_id, doc = _current(p, "model:m")
    return p, restore_id, doc["restored_from"]


def _sig(p: Project, mid: str) -> Path:
    return _file(p, mid).with_suffix("").with_suffix(".sig.json")


def _file(p: Project, mid: str) -> Path:
    hexd = mid.split(":", 1)[1]
    return p.path(f".mlbuild/manifests/{hexd[:2]}/{hexd[2:]}.json")


def _index(p: Project, target: str) -> Path:
    return p.path(f".mlbuild/manifests/index/{target.replace(':', '__')}.jsonl")


def _current(p: Project, target: str) -> tuple[str, dict[str, Any]]:
    """The id and record the history index ends with, read as a forger would."""
    mid = _index(p, target).read_text().split()[-1]
    return mid, json.loads(_file(p, mid).read_text())


def _forge(p: Project, target: str, mid: str, doc: dict[str, Any]) -> str:
    """Store ``doc`` in place of manifest ``mid`` as a careful forger would: under its
    recomputed id, the history index pointing at it, the old file gone. Returns the id."""
    new = manifest_id(doc)
    path = _file(p, new)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    old = _file(p, mid)
    os.chmod(old, 0o644)
    old.unlink()
    index = _index(p, target)
    index.write_text(index.read_text().replace(mid, new))
    return new


def _audit(p: Project, *args: str) -> tuple[int, list[dict[str, str]]]:
    run = p.mlbuild("audit", "--format", "json", *args)
    assert run.code in (0, 6), run.err
    assert "Traceback" not in run.err
    return run.code, json.loads(run.out)["findings"]


def _no_crash(run: Run) -> None:
    assert run.code != 70 and "Traceback" not in run.err, run.err


# ----------------------------------------------------------------- item 7: forged restores


def test_an_honest_unsigned_restore_of_a_signed_build_is_vouched_for(
    restored_base: Path, tmp_path: Path
) -> None:
    p, _, build_id = _restored(restored_base, tmp_path)
    assert _audit(p, "--require-signatures") == (0, [])
    card = p.mlbuild("card", "model:m")
    assert card.code == 0, card.err
    assert "- `accuracy` = 0.75" in card.out
    assert f"restored from build `{build_id}`" in card.out
    assert "signatures by the trusted keys required" in card.out


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


def _add_check(doc: dict[str, Any]) -> None:
    doc["checks"].append(
        {
            "check": "rows",
            "out": "models/m.txt",
            "severity": "error",
            "passed": True,
            "message": "FORGED-CHECK",
        }
    )


FORGERIES = [
    ("metrics", _set(("metrics", "accuracy"), 0.987654), "0.987654"),
    ("gates", _set(("gates", 0, "message"), "accuracy = 0.987654, FORGED-GATE"), "FORGED-GATE"),
    ("checks", _add_check, "FORGED-CHECK"),
    (
        "promotion",
        _set(
            ("promotion",),
            {
                "from": "model:*",
                "by": "accuracy",
                "mode": "max",
                "winner": "model:forged",
                "scores": {"model:forged": 1.0},
            },
        ),
        "model:forged",
    ),
    ("profile", _set(("profile", "tables"), {"models/m.txt": {"rows": 424242}}), "424242"),
    ("packages", _set(("environment", "packages", "click"), "0.0.FORGED"), "0.0.FORGED"),
    ("params", _set(("params", "lr"), 0.123456), "0.123456"),
    ("command", _set(("command",), ["echo FORGED-CMD"]), "FORGED-CMD"),
    ("code", _set(("code", "train.py"), "xxh3-128:" + "e" * 32), "e" * 32),
    ("deps", _set(("deps", 1, "xxh3"), "xxh3-128:" + "f" * 32), "f" * 32),
]


@pytest.mark.parametrize(("field", "edit", "forged"), FORGERIES, ids=[f[0] for f in FORGERIES])
def test_a_forged_field_of_an_unsigned_restore_is_named_and_never_shown(
    restored_base: Path,
    tmp_path: Path,
    field: str,
    edit: Callable[[dict[str, Any]], None],
    forged: str,
) -> None:
    p, restore_id, build_id = _restored(restored_base, tmp_path)
    _, doc = _current(p, "model:m")
    edit(doc)
    _forge(p, "model:m", restore_id, doc)
    code, findings = _audit(p, "--require-signatures")
    assert code == 6
    restored = [f for f in findings if f["check"] == "restored-from"]
    assert any(f["expected"].startswith(f"{field} as in the build it restores") for f in restored)
    assert build_id in restored[0]["expected"]
    [signature] = [f for f in findings if f["check"] == "signature"]
    assert signature["found"].startswith("unsigned, and its ")
    assert field in signature["found"] and build_id in signature["found"]
    card = p.mlbuild("card", "model:m")
    assert card.code == 0, card.err
    shown, verdict = card.out.split("## Verification")
    assert forged not in shown  # the verdict may quote the forgery it found
    assert "- `accuracy` = 0.75" in shown  # the signed build's
    assert "`mlbuild audit` found" in verdict


def test_manifest_show_and_history_of_a_forged_restore_show_the_build(
    restored_base: Path, tmp_path: Path
) -> None:
    p, restore_id, _ = _restored(restored_base, tmp_path)
    _, doc = _current(p, "model:m")
    for _, edit, _ in FORGERIES:
        edit(doc)
    _forge(p, "model:m", restore_id, doc)
    shown = p.mlbuild("manifest", "show", "model:m")
    history = p.mlbuild("history", "model:m")
    assert shown.code == 0 and history.code == 0, shown.err + history.err
    for _, _, forged in FORGERIES:
        assert forged not in shown.out and forged not in history.out
    assert "metric    accuracy = 0.75" in shown.out
    assert "[accuracy=0.75]" in history.out.splitlines()[0]


def test_a_restores_own_checkout_and_user_are_never_shown_as_the_builds(
    restored_base: Path, tmp_path: Path
) -> None:
    """A restore records where it ran (its user, host, python, platform and git checkout):
    those legitimately differ from the build's on a CI clone, so they are its own claims,
    never shown or judged as the build's."""
    p, restore_id, _ = _restored(restored_base, tmp_path)
    doc = json.loads(_file(p, restore_id).read_text())
    doc["user"] = "mallory"
    doc["environment"]["git"] = {"commit": "f0e1d2c3" * 5, "dirty": True}
    doc["environment"]["python"] = "9.99.FORGED"
    _forge(p, "model:m", restore_id, doc)
    assert _audit(p, "--require-signatures") == (0, [])  # not a dirty *build*
    card = p.mlbuild("card", "model:m").out
    assert "f0e1d2c3" not in card and "9.99.FORGED" not in card and "uncommitted" not in card
    assert "mallory@" in card  # who restored it: the restore's own (unsigned) claim
    shown = p.mlbuild("manifest", "show", "model:m").out
    assert "f0e1d2c3" not in shown and "who       mallory@" in shown


def test_an_unsigned_restore_of_an_unsigned_build_is_refused(
    plain_base: Path, tmp_path: Path
) -> None:
    p = _copy(plain_base, tmp_path)
    assert p.mlbuild("key", "generate", "keys/ci").code == 0
    p.path("models/m.txt").unlink()
    assert p.build().restored == ["model:m"]
    code, findings = _audit(p, "model:m", "--require-signatures", "--trusted-key", "keys/ci.pub")
    assert code == 6
    found = {(f["target"], f["found"].split(",")[0]) for f in findings}
    assert ("model:m", "unsigned") in found and ("data:raw", "unsigned") in found
    restore = [f["found"] for f in findings if f["target"] == "model:m"][0]
    assert "is unsigned too" in restore


def test_a_forged_unsigned_rollback_is_named(signed_base: Path, tmp_path: Path) -> None:
    p = _copy(signed_base, tmp_path)
    p.replace("params.yaml", "lr: 0.1", "lr: 0.2")
    assert p.mlbuild("--json", env=SIGNED).code == 0
    run = p.mlbuild("rollback", "model:m")  # no key: an unsigned rollback
    assert run.code == 0, run.err
    assert _audit(p, "model:m", "--require-signatures")[0] == 0
    mid, doc = p.manifest("model:m")
    assert doc["status"] == "rollback"
    doc["metrics"] = {"accuracy": 0.987654}
    _forge(p, "model:m", mid, doc)
    code, findings = _audit(p, "model:m", "--require-signatures")
    assert code == 6
    assert {f["check"] for f in findings} == {"restored-from", "signature"}
    assert "0.987654" not in p.mlbuild("card", "model:m").out


def test_a_restores_link_to_an_unsigned_upstream_record_is_a_violation(
    restored_base: Path, tmp_path: Path
) -> None:
    """Lineage and cards follow a restore's deps links, which are its own (unsigned) claim:
    a link to a forged upstream record is judged like the record itself."""
    p, restore_id, _ = _restored(restored_base, tmp_path)
    _, raw = p.manifest("data:raw")
    raw["params"] = {"rows": 999999}
    raw["user"] = "forger"
    fake = manifest_id(raw)
    path = _file(p, fake)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(raw))  # not in any history: reachable only by the link
    doc = json.loads(_file(p, restore_id).read_text())
    [link] = [d for d in doc["deps"] if d.get("target") == "data:raw"]
    link["manifest"] = fake
    _forge(p, "model:m", restore_id, doc)
    code, findings = _audit(p, "--require-signatures")
    assert code == 6
    [finding] = findings
    assert (finding["target"], finding["check"], finding["found"]) == (
        "model:m",
        "signature",
        "unsigned",
    )
    assert fake.split(":")[1][2:] in finding["subject"]


# ----------------------------------------------------------------- item 13: corrupt current


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


CORRUPTIONS = [
    ("truncated", _truncate, "manifest", "not JSON"),
    ("not-an-object", lambda path: path.write_text("[1, 2]\n"), "manifest", "not a JSON object"),
    (
        "edited",
        lambda path: path.write_text(path.read_text().replace('"restored"', '"built"')),
        "manifest-id",
        "sha256:",
    ),
    ("deleted", lambda path: path.unlink(), "manifest", "file missing"),
]


@pytest.mark.parametrize(
    ("how", "corrupt", "check", "found"), CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS]
)
def test_a_corrupt_current_restore_manifest_is_a_violation_and_named(
    restored_base: Path,
    tmp_path: Path,
    how: str,
    corrupt: Callable[[Path], None],
    check: str,
    found: str,
) -> None:
    p, restore_id, _ = _restored(restored_base, tmp_path)
    path = _file(p, restore_id)
    os.chmod(path, 0o644)
    corrupt(path)
    rel = os.path.relpath(path, p.root)
    code, findings = _audit(p)
    assert code == 6
    [finding] = findings
    assert (finding["target"], finding["check"], finding["subject"]) == ("model:m", check, rel)
    assert finding["found"].startswith(found)
    for args in (("card", "model:m"), ("manifest", "show", "model:m")):
        run = p.mlbuild(*args)
        assert run.code == 6, (args, run.err)
        [line] = run.err.splitlines()
        assert f"model:m's current manifest {rel} is " in line
        assert "never built" not in line
        assert "mlbuild -B model:m" in line
    if path.exists():  # the next step given: move it aside, then rebuild
        assert "move the file out of .mlbuild/manifests/" in line
        path.rename(p.path("corrupt-manifest.json"))
    assert p.mlbuild("-B", "model:m").code == 0
    assert _audit(p)[0] == 0


# ----------------------------------------------------------------- item 16: malformed records


def test_a_garbage_history_line_is_skipped_and_named(plain_base: Path, tmp_path: Path) -> None:
    p = _copy(plain_base, tmp_path)
    mid, _ = p.manifest("model:m")
    index = _index(p, "model:m")
    with index.open("a") as f:
        f.write("garbage\nsha256:../../../../etc/passwd\n\xff\xfe\n")
    rel = os.path.relpath(index, p.root)
    history = p.mlbuild("history", "model:m")
    assert history.code == 0, history.err
    assert f"history index {rel}: line 2: 'garbage' is not a manifest id" in history.err
    assert mid[:19] in history.out
    assert p.manifest("model:m")[0] == mid  # the last id the index really holds
    code, findings = _audit(p, "model:m")
    assert code == 6
    assert {(f["check"], f["subject"]) for f in findings} == {("history", rel)}
    assert len(findings) == 3
    for args in (("card", "model:m"), ("lineage", "model:m"), ("metrics", "diff"), ("gc", "-n")):
        _no_crash(p.mlbuild(*args))
    assert p.build().ran == []


MALFORMED = [
    ("outs-not-a-list", _set(("outs",), "models/m.txt"), "outs is 'models/m.txt', not a list"),
    ("metrics-a-string", _set(("metrics",), "0.99"), "metrics is '0.99', not null or an object"),
    ("out-path-absolute", _set(("outs", 0, "path"), "/etc/passwd"), "outs[0].path"),
    ("out-path-climbs", _set(("outs", 0, "path"), "../../outside.txt"), "outs[0].path"),
    ("dep-path-climbs", _set(("deps", 0, "path"), "a/../../b"), "deps[0].path"),
    ("short-xxh3", _set(("outs", 0, "xxh3"), "xxh3-128:abc"), "is not an xxh3-128 digest"),
    ("upper-sha256", _set(("outs", 0, "sha256"), "sha256:" + "A" * 64), "not a sha256 digest"),
    ("link-climbs", _set(("deps", 0, "manifest"), "sha256:../../../etc/x"), "deps[0].manifest"),
    ("restored-from-climbs", _set(("restored_from",), "sha256:../../x"), "restored_from"),
    ("checks-not-objects", _set(("checks",), ["passed"]), "checks[0]"),
    ("gates-an-object", _set(("gates",), {"passed": True}), "gates is"),
    ("size-negative", _set(("outs", 0, "size"), -1), "outs[0].size"),
    ("status-unknown", _set(("status",), "signed-off"), "status is 'signed-off'"),
]


@pytest.mark.parametrize(("how", "edit", "problem"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_self_consistent_but_malformed_manifest_is_named(
    plain_base: Path,
    tmp_path: Path,
    how: str,
    edit: Callable[[dict[str, Any]], None],
    problem: str,
) -> None:
    p = _copy(plain_base, tmp_path)
    mid, doc = _current(p, "model:m")
    edit(doc)
    new = _forge(p, "model:m", mid, doc)  # a consistent id: only the shape is wrong
    rel = os.path.relpath(_file(p, new), p.root)
    code, findings = _audit(p, "model:m")
    assert code == 6
    assert [(f["check"], f["subject"]) for f in findings] == [("manifest", rel)]
    assert problem in findings[0]["found"]
    card = p.mlbuild("card", "model:m")
    assert card.code == 6, card.err
    [line] = card.err.splitlines()
    assert rel in line and problem in line and "mlbuild -B model:m" in line


def test_no_reader_of_a_malformed_manifest_crashes_or_leaves_the_workspace(
    plain_base: Path, tmp_path: Path
) -> None:
    p = _copy(plain_base, tmp_path)
    mid, doc = _current(p, "model:m")
    doc["metrics"] = "0.99"
    doc["outs"][0]["path"] = "../outside.txt"
    new = _forge(p, "model:m", mid, doc)
    rel = os.path.relpath(_file(p, new), p.root)
    for args in (("manifest", "show", "model:m"), ("lineage", "model:m")):
        run = p.mlbuild(*args)
        assert run.code == 6 and rel in run.err, (args, run.err)
    for args in (
        ("history", "model:m"),
        ("diff", mid.split(":")[1][:12], new.split(":")[1][:12]),
        ("rollback", "model:m"),
        ("metrics", "diff"),
        ("report", "-o", "report.html"),
        ("gc", "-n"),
        ("manifest", "export", "model:m"),
        ("-B", "model:m"),
    ):
        _no_crash(p.mlbuild(*args))
    assert not (p.root.parent / "outside.txt").exists()


def test_a_garbage_signature_file_is_a_named_violation(signed_base: Path, tmp_path: Path) -> None:
    p = _copy(signed_base, tmp_path)
    mid, _ = p.manifest("model:m")
    sig = _sig(p, mid)
    os.chmod(sig, 0o644)
    for garbage, found in (
        ("{not json", "signature file is not JSON"),
        ("[]", "signature file is not a JSON object"),
        ('{"keyid": "../../x", "sig": "AAAA"}', "not 64 hex digits"),
        ('{"keyid": "' + "a" * 64 + '", "sig": 7}', "not base64 text"),
    ):
        sig.write_text(garbage)
        code, findings = _audit(p, "model:m", "--require-signatures")
        assert code == 6
        [finding] = findings
        assert finding["check"] == "signature" and found in finding["found"]
        assert finding["subject"] == os.path.relpath(sig, p.root)
    card = p.mlbuild("card", "model:m")
    assert card.code == 0 and "found 1 violation" in card.out, card.err


@pytest.mark.parametrize(
    "mid",
    [
        "sha256:../../../../tmp/x",
        "sha256:" + "a" * 63,
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 64 + "/../x",
        "xxh3-128:" + "a" * 32,
        "",
        "sha256",
    ],
)
def test_a_manifest_path_is_derived_only_from_a_well_formed_id(tmp_path: Path, mid: str) -> None:
    from mlbuild.provenance.records import ManifestError

    store = ManifestStore(str(tmp_path / ".mlbuild" / "manifests"))
    with pytest.raises(ManifestError, match="is not a manifest id"):
        store.path(mid)
    with pytest.raises(ManifestError):
        store.get(mid)
    good = "sha256:" + "0123456789abcdef" * 4
    assert store.path(good).startswith(store.dir + os.sep)
