"""`mlbuild manifest export`: in-toto Statement v1 + SLSA Provenance v1, DSSE-signed when a
key is configured, verified with securesystemslib (a verifier we did not write)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from tests.conftest import Project


def _signed_project(project: Callable[[str], Project]) -> tuple[Project, str, str]:
    p = project("basic")
    assert p.mlbuild("key", "generate", "keys/ci").code == 0
    private, public = str(p.path("keys/ci.key")), str(p.path("keys/ci.pub"))
    assert p.mlbuild(env={"MLBUILD_SIGNING_KEY": private}).code == 0
    return p, private, public


def _sslib_key(public: str) -> SSlibKey:
    key = load_pem_public_key(Path(public).read_bytes())
    return SSlibKey.from_crypto(key)


def _check_statement(statement: dict[str, Any], p: Project) -> None:
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    [subject] = statement["subject"]
    data = p.path("models/lr.txt").read_bytes()
    assert subject == {
        "name": "models/lr.txt",
        "digest": {
            "sha256": hashlib.sha256(data).hexdigest(),
            "xxh3_128": subject["digest"]["xxh3_128"],
        },
    }
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"]["command"] == [
        "(cat data/even.txt; echo lr=0.1) > models/lr.txt"
    ]
    assert build["externalParameters"]["params"] == {"train.lr": 0.1}
    [dep] = build["resolvedDependencies"]
    assert dep["uri"] == "data/even.txt"
    assert dep["annotations"]["target"] == "features:even"
    run = statement["predicate"]["runDetails"]
    assert run["builder"]["id"] == "https://mlbuild.dev/builders/local"
    shown = json.loads(p.mlbuild("manifest", "show", "model:lr", "--json").out)
    assert run["metadata"]["invocationId"] == shown["id"]
    assert run["metadata"]["startedOn"] == shown["manifest"]["started"]


def test_signed_export_verifies_with_securesystemslib(project: Callable[[str], Project]) -> None:
    p, private, public = _signed_project(project)
    out = p.path("prov.json")
    run = p.mlbuild(
        "manifest", "export", "model:lr", "-o", str(out), env={"MLBUILD_SIGNING_KEY": private}
    )
    assert run.code == 0, run.err
    envelope = Envelope.from_dict(json.loads(out.read_text()))
    key = _sslib_key(public)
    verified = envelope.verify([key], 1)
    assert list(verified) == [key.keyid]
    assert envelope.payload_type == "application/vnd.in-toto+json"
    _check_statement(json.loads(envelope.payload), p)


def test_tampered_envelope_does_not_verify(project: Callable[[str], Project]) -> None:
    p, private, public = _signed_project(project)
    run = p.mlbuild("manifest", "export", "model:lr", env={"MLBUILD_SIGNING_KEY": private})
    doc = json.loads(run.out)
    statement = json.loads(base64.b64decode(doc["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    doc["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(VerificationError):
        Envelope.from_dict(doc).verify([_sslib_key(public)], 1)
    other = p.mlbuild("key", "generate", "keys/other")
    assert other.code == 0
    with pytest.raises(VerificationError):
        Envelope.from_dict(json.loads(run.out)).verify(
            [_sslib_key(str(p.path("keys/other.pub")))], 1
        )


def test_unsigned_export_is_the_plain_statement(project: Callable[[str], Project]) -> None:
    p = project("basic")
    p.build()
    run = p.mlbuild("manifest", "export", "model:lr", "--format", "in-toto")
    assert run.code == 0, run.err
    _check_statement(json.loads(run.out), p)


def test_export_of_a_target_never_built_is_a_clear_error(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    run = p.mlbuild("manifest", "export", "model:lr")
    assert run.code == 2
    assert "model:lr has no manifest here" in run.err
    assert "Traceback" not in run.err


def test_export_refuses_a_modified_manifest(project: Callable[[str], Project]) -> None:
    p, private, _ = _signed_project(project)
    shown = json.loads(p.mlbuild("manifest", "show", "model:lr", "--json").out)
    hexd = shown["id"].split(":")[1]
    path = p.path(f".mlbuild/manifests/{hexd[:2]}/{hexd[2:]}.json")
    path.chmod(0o644)
    path.write_text(path.read_text().replace('"train.lr": 0.1', '"train.lr": 0.9'))
    run = p.mlbuild("manifest", "export", "model:lr", env={"MLBUILD_SIGNING_KEY": private})
    assert run.code == 6
    assert "was modified after it was written; refusing to export" in run.err
