"""The vocabularies of kinds.py leave every written byte as it was: manifests (whose ids
hash their JSON), audit output, and the words mlbuild.yaml accepts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mlbuild import __version__
from mlbuild.config.schema import CHECK_KINDS, GATE_BOUNDS, SCHEMA
from mlbuild.digest import FileDigest, canonical_json, hash_tree, tree_object, walk_tree
from mlbuild.kinds import (
    CheckKind,
    DaskMode,
    EntryMode,
    ExecutorType,
    GateBound,
    ManifestStatus,
    OutType,
    PromoteMode,
    Severity,
    Verdict,
    words,
)
from mlbuild.provenance.findings import AuditCheck, AuditReport, Finding
from mlbuild.provenance.parse import parse_manifest
from mlbuild.provenance.records import Identity, Quality, build_manifest, manifest_id
from mlbuild.render.tables import audit_lines

_XXH = "xxh3-128:" + "a" * 32
_SHA = "sha256:" + "b" * 64


def _plain_record() -> dict[str, Any]:
    """A restore's record as mlbuild wrote it before kinds.py: plain strings throughout."""
    components = {"cmd": ["python train.py"], "python": None, "code": {}, "params": {"lr": 1}}
    return {
        "schema": "mlbuild.manifest/v1",
        "target": "model",
        "status": "restored",
        "key": _XXH,
        "components": components,
        "started": "1970-01-01T00:00:00.000000Z",
        "finished": "1970-01-01T00:00:01.500000Z",
        "seconds": 1.5,
        "user": "ann",
        "host": "h",
        "mlbuild": __version__,
        "command": ["python train.py"],
        "python": None,
        "code": {},
        "deps": [],
        "params": {"lr": 1},
        "env": {},
        "environment": {
            "python": "3.11",
            "platform": "linux",
            "packages": {},
            "git": {"commit": None, "dirty": None},
        },
        "outs": [{"path": "m.bin", "type": "file", "size": 3, "xxh3": _XXH, "sha256": _SHA}],
        "metrics": None,
        "checks": [
            {"check": "rows", "out": "t.csv", "severity": "warn", "passed": True, "message": "ok"}
        ],
        "gates": [],
        "profile": {"schema": "mlbuild.profile/v1", "tables": {}},
        "executor": {"type": "local", "host": "h"},
        "exit_code": None,
        "log": None,
        "restored_from": "sha256:" + "c" * 64,
    }


@pytest.mark.parametrize("status", [ManifestStatus.RESTORED, "restored"])
def test_a_manifest_written_with_enums_is_byte_identical_to_one_of_plain_strings(
    status: ManifestStatus | str,
) -> None:
    plain = _plain_record()
    check = {
        "check": CheckKind.ROWS,
        "out": "t.csv",
        "severity": Severity.WARN,
        "passed": True,
        "message": "ok",
    }
    doc = build_manifest(
        target="model",
        status=status,
        key=_XXH,
        components=plain["components"],
        started=0.0,
        finished=1.5,
        identity=Identity("ann", "h", "3.11", "linux", {"commit": None, "dirty": None}),
        deps=[],
        outs=[dict(plain["outs"][0], type=OutType.FILE)],
        log_digest=None,
        env={},
        restored_from=plain["restored_from"],
        quality=Quality(checks=(check,)),
    )
    assert type(doc["status"]) is str  # the hashed JSON keeps a plain string
    assert canonical_json(doc) == canonical_json(plain)
    assert json.dumps(doc, indent=2, sort_keys=True) == json.dumps(plain, indent=2, sort_keys=True)
    mid = manifest_id(doc)
    assert mid == manifest_id(plain)
    parsed = parse_manifest(canonical_json(plain).encode(), mid, "m")
    assert parsed == plain


def test_a_build_records_exit_code_zero_and_a_restore_none() -> None:
    identity = Identity("ann", "h", "3.11", "linux", {"commit": None, "dirty": None})
    codes = {}
    for status in ("built", ManifestStatus.ROLLBACK):
        doc = build_manifest(
            target="t",
            status=status,
            key=_XXH,
            components={},
            started=0.0,
            finished=0.0,
            identity=identity,
            deps=[],
            outs=[],
            log_digest=None,
            env={},
        )
        codes[doc["status"]] = doc["exit_code"]
    assert codes == {"built": 0, "rollback": None}


def test_audit_findings_are_written_as_their_words() -> None:
    report = AuditReport(targets=["model"])
    report.findings.append(Finding("model", AuditCheck.GIT_DIRTY, "sha256:x", "clean", "dirty"))
    assert report.to_json()["findings"][0]["check"] == "git-dirty"
    assert json.dumps(report.to_json()).count('"git-dirty"') == 1
    assert audit_lines(report, "table")[0] == "model  git-dirty  sha256:x  clean  dirty"
    assert "| model | git-dirty |" in "\n".join(audit_lines(report, "md"))


def test_the_vocabularies_are_the_words_the_config_schema_declares() -> None:
    assert words(CheckKind) == tuple(CHECK_KINDS)
    assert words(GateBound) == GATE_BOUNDS
    assert words(Severity) == ("error", "warn")
    assert words(PromoteMode) == ("max", "min")
    assert words(ManifestStatus) == ("built", "restored", "rollback", "commit", "reproduction")
    assert words(Verdict) == ("identical", "within-tolerance", "differs", "failed")
    # A member is the word: a string read back compares equal to it.
    read_back: str = json.loads('"dir"')
    assert read_back == OutType.DIR and OutType(read_back) is OutType.DIR


def test_the_executor_words_are_the_ones_the_config_schema_declares() -> None:
    executor = SCHEMA["properties"]["executor"]["properties"]
    assert words(ExecutorType) == tuple(executor["type"]["enum"]) == ("local", "dask")
    assert words(DaskMode) == tuple(executor["mode"]["enum"]) == ("shared", "remote")


def test_a_tree_object_built_with_entry_modes_is_byte_identical_to_one_of_plain_strings(
    tmp_path: Path,
) -> None:
    def digest(n: int) -> FileDigest:
        return FileDigest(n, "xxh3-128:" + f"{n:x}" * 32, "sha256:" + f"{n:x}" * 64)

    plain = [("a.txt", digest(1), "f"), ("bin/run", digest(2), "x"), ("link", digest(3), "l")]
    members: list[tuple[str, FileDigest, str]] = [
        ("a.txt", digest(1), EntryMode.FILE),
        ("bin/run", digest(2), EntryMode.EXEC),
        ("link", digest(3), EntryMode.LINK),
    ]
    body = tree_object(plain)
    assert body == (
        b'[["a.txt","xxh3-128:' + b"1" * 32 + b'","f"],'
        b'["bin/run","xxh3-128:' + b"2" * 32 + b'","x"],'
        b'["link","xxh3-128:' + b"3" * 32 + b'","l"]]'
    )
    assert tree_object(members) == body
    assert hash_tree(members) == hash_tree(plain)
    # The walk hands out the words themselves, so what is stored never depends on members.
    (tmp_path / "f").write_text("1")
    (tmp_path / "x").write_text("2")
    os.chmod(tmp_path / "x", 0o755)
    os.symlink("f", tmp_path / "l")
    walked = walk_tree(str(tmp_path), confine=str(tmp_path))
    assert [(rel, mode) for rel, _, mode in walked] == [("f", "f"), ("l", "l"), ("x", "x")]
    assert all(type(mode) is str for _, _, mode in walked)
