"""A manifest as an in-toto Statement v1 with an SLSA Provenance v1 predicate, and that
statement in a DSSE envelope signed by the workspace's key (`mlbuild manifest export`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .records import Manifest
    from .signing import SigningKey

__all__ = ["dsse_envelope", "in_toto_statement"]

IN_TOTO_STATEMENT = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://mlbuild.dev/build-types/target/v1"
BUILDER_ID = "https://mlbuild.dev/builders/local"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def _digest_set(xxh3: str | None, sha256: str | None = None) -> dict[str, str]:
    digests: dict[str, str] = {}
    if sha256:
        digests["sha256"] = sha256.split(":", 1)[1]
    if xxh3:
        digests["xxh3_128"] = xxh3.split(":", 1)[1]
    return digests


def in_toto_statement(mid: str, doc: Manifest) -> dict[str, Any]:
    """An in-toto Statement v1 with an SLSA Provenance v1 predicate for one manifest.

    Subjects are the outs (sha256, with xxh3-128 as an extra digest); resolved
    dependencies are the deps (annotated with their target and manifest) and code files;
    the invocation id is the manifest id."""
    deps: list[dict[str, Any]] = []
    for dep in doc.get("deps", []):
        entry: dict[str, Any] = {"uri": dep["path"], "digest": _digest_set(dep.get("xxh3"))}
        if "target" in dep:
            entry["annotations"] = {"target": dep["target"], "manifest": dep.get("manifest")}
        deps.append(entry)
    for path, digest in sorted(doc.get("code", {}).items()):
        deps.append({"uri": path, "digest": _digest_set(digest), "annotations": {"code": True}})
    external: dict[str, Any] = {"target": doc["target"], "params": doc.get("params", {})}
    if doc.get("command") is not None:
        external["command"] = doc["command"]
    if doc.get("python") is not None:
        external["python"] = doc["python"]
    log = doc.get("log")
    return {
        "_type": IN_TOTO_STATEMENT,
        "subject": [
            {"name": o["path"], "digest": _digest_set(o.get("xxh3"), o.get("sha256"))}
            for o in doc.get("outs", [])
        ],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {
                    "key": doc.get("key"),
                    "env": doc.get("env", {}),
                    "environment": doc.get("environment", {}),
                    "status": doc.get("status"),
                },
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {
                    "id": BUILDER_ID,
                    "version": {"mlbuild": str(doc.get("mlbuild"))},
                },
                "metadata": {
                    "invocationId": mid,
                    "startedOn": doc.get("started"),
                    "finishedOn": doc.get("finished"),
                },
                "byproducts": [{"name": "log", "digest": {"sha256": log.split(":", 1)[1]}}]
                if log
                else [],
            },
        },
    }


def dsse_envelope(statement: dict[str, Any], signer: SigningKey) -> dict[str, Any]:
    """The statement in a DSSE envelope signed by ``signer`` (verifiable by in-toto tools)."""
    import base64

    from .signing import pae

    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    keyid, sig = signer.sign(pae(IN_TOTO_PAYLOAD_TYPE, payload))
    return {
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": keyid, "sig": sig}],
    }

