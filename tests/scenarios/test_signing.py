"""Signed manifests: Ed25519 keys, signatures beside manifests, verified by the audit."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Project


def _keys(p: Project, name: str) -> tuple[str, str]:
    run = p.mlbuild("key", "generate", f"keys/{name}")
    assert run.code == 0, run.err
    return str(p.path(f"keys/{name}.key")), str(p.path(f"keys/{name}.pub"))


def test_key_generate_writes_a_private_key_only_its_owner_can_read(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    private, public = _keys(p, "ci")
    assert stat.S_IMODE(os.stat(private).st_mode) == 0o600
    assert Path(private).read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert Path(public).read_text().startswith("-----BEGIN PUBLIC KEY-----")
    again = p.mlbuild("key", "generate", "keys/ci")
    assert again.code == 2 and "already exists" in again.err


def test_signed_build_audits_with_the_trusted_key_only(project: Callable[[str], Project]) -> None:
    p = project("basic")
    private, public = _keys(p, "ci")
    _, other = _keys(p, "other")
    assert p.mlbuild("--json", env={"MLBUILD_SIGNING_KEY": private}).code == 0
    sigs = sorted(p.path(".mlbuild/manifests").glob("*/*.sig.json"))
    assert len(sigs) == 4
    ok = p.mlbuild("audit", "--require-signatures", "--trusted-key", public)
    assert ok.code == 0, ok.out
    untrusted = p.mlbuild("audit", "--format", "json", "--trusted-key", other)
    assert untrusted.code == 6
    findings = json.loads(untrusted.out)["findings"]
    assert {f["check"] for f in findings} == {"signature"}
    assert all("signed by an untrusted key" in f["found"] for f in findings)


def test_trusted_keys_and_signing_key_from_mlbuild_yaml(project: Callable[[str], Project]) -> None:
    p = project("basic")
    _keys(p, "ci")
    text = p.read("mlbuild.yaml")
    p.write(
        "mlbuild.yaml",
        text.replace(
            "params: params.yaml\n",
            "params: params.yaml\nsigning: {key: keys/ci.key}\ntrusted_keys: [keys/ci.pub]\n",
        ),
    )
    p.build()
    assert p.mlbuild("audit", "--require-signatures").code == 0


def test_unsigned_manifests_fail_only_when_signatures_are_required(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    _, public = _keys(p, "ci")
    p.build("data:raw")
    assert p.mlbuild("audit", "data:raw", "--trusted-key", public).code == 0
    run = p.mlbuild(
        "audit", "data:raw", "--require-signatures", "--trusted-key", public, "--format", "json"
    )
    assert run.code == 6
    [finding] = json.loads(run.out)["findings"]
    assert finding["found"] == "unsigned"


def test_tampered_signature_does_not_verify(project: Callable[[str], Project]) -> None:
    p = project("basic")
    private, public = _keys(p, "ci")
    p.mlbuild("data:raw", env={"MLBUILD_SIGNING_KEY": private})
    [sig_path] = p.path(".mlbuild/manifests").glob("*/*.sig.json")
    sig = json.loads(sig_path.read_text())
    raw = bytearray(base64.b64decode(sig["sig"]))
    raw[0] ^= 1
    sig["sig"] = base64.b64encode(bytes(raw)).decode()
    os.chmod(sig_path, 0o644)
    sig_path.write_text(json.dumps(sig))
    run = p.mlbuild("audit", "data:raw", "--trusted-key", public, "--format", "json")
    assert run.code == 6
    assert "does not verify" in json.loads(run.out)["findings"][0]["found"]


def test_truncated_signing_key_fails_before_anything_runs(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    private, _ = _keys(p, "ci")
    Path(private).write_bytes(Path(private).read_bytes()[:60])
    run = p.mlbuild(env={"MLBUILD_SIGNING_KEY": private})
    assert run.code == 2
    assert "is not a valid unencrypted PEM private key" in run.err
    assert "Traceback" not in run.err
    assert not p.path("data").exists()


def test_signatures_are_checked_only_against_configured_keys(
    project: Callable[[str], Project],
) -> None:
    p = project("basic")
    private, _ = _keys(p, "ci")
    assert p.mlbuild(env={"MLBUILD_SIGNING_KEY": private}).code == 0
    assert p.mlbuild("audit").code == 0  # no trusted keys: signatures are not judged
    run = p.mlbuild("audit", "--require-signatures")
    assert run.code == 2
    assert "--require-signatures needs the public keys to trust" in run.err
