"""Ed25519 signing of manifests; the only module that imports `cryptography`.

Keys are PEM files: ``NAME.key`` (PKCS#8 private key, mode 0600) and ``NAME.pub``
(SubjectPublicKeyInfo). A key id is the one in-toto / TUF tooling (securesystemslib)
computes for the key: the sha256 hex of the canonical JSON
``{"keytype": "ed25519", "keyval": {"public": "<raw key hex>"}, "scheme": "ed25519"}``, so
the same id names the key in manifests' signatures and in exported DSSE envelopes.

A signature is stored beside its manifest, never inside it, so the manifest's id stays the
sha256 of its content::

    .mlbuild/manifests/ab/cdef….json       the manifest (id sha256:abcdef…)
    .mlbuild/manifests/ab/cdef….sig.json   {"keyid": "<64 hex>", "sig": "<base64>"}

The signed bytes are exactly the manifest's canonical JSON: the bytes its id hashes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, UsageError

__all__ = [
    "SigningKey",
    "TrustedKeys",
    "generate_keypair",
    "load_private_key",
    "load_public_key",
    "pae",
]


def _key_id(raw_public: bytes) -> str:
    key = {"keytype": "ed25519", "keyval": {"public": raw_public.hex()}, "scheme": "ed25519"}
    canonical = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what an envelope's signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def _raw_public(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    raw: bytes = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw


@dataclass(frozen=True)
class SigningKey:
    """A loaded private key; `sign` returns ``(keyid, base64 signature)``."""

    key: Any
    keyid: str

    def sign(self, payload: bytes) -> tuple[str, str]:
        return self.keyid, base64.b64encode(self.key.sign(payload)).decode("ascii")

    @property
    def public_raw(self) -> bytes:
        return _raw_public(self.key.public_key())


@dataclass(frozen=True)
class TrustedKeys:
    """Public keys an audit accepts, by key id."""

    keys: dict[str, Any]

    def verify(self, keyid: str, payload: bytes, signature_b64: str) -> str | None:
        """None when the signature verifies with a trusted key; else what is wrong."""
        from cryptography.exceptions import InvalidSignature

        key = self.keys.get(keyid)
        if key is None:
            return f"signed by an untrusted key {keyid}"
        try:
            key.verify(base64.b64decode(signature_b64, validate=True), payload)
        except (InvalidSignature, ValueError):
            return f"signature by {keyid} does not verify"
        return None


def generate_keypair(path: str) -> tuple[str, str, str]:
    """Write ``PATH.key`` (0600) and ``PATH.pub``; returns (private path, public path, id)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path, public_path = path + ".key", path + ".pub"
    for existing in (private_path, public_path):
        if os.path.exists(existing):
            raise UsageError(f"{existing} already exists", hint="choose another PATH")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    parent = os.path.dirname(os.path.abspath(private_path))
    os.makedirs(parent, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem)
    with open(public_path, "wb") as f:
        f.write(public_pem)
    return private_path, public_path, _key_id(_raw_public(key.public_key()))


def load_private_key(path: str, *, origin: str) -> SigningKey:
    """Load an Ed25519 private key (PEM); a clear ConfigError for anything else."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(f"signing key {path} ({origin}) cannot be read: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise ConfigError(
            f"signing key {path} ({origin}) is not a valid unencrypted PEM private key",
            hint="create one with `mlbuild key generate PATH`",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"signing key {path} ({origin}) is not an Ed25519 key")
    return SigningKey(key, _key_id(_raw_public(key.public_key())))


def load_public_key(path: str) -> tuple[str, Any]:
    """Load an Ed25519 public key (PEM): ``(keyid, key)``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_public_key(f.read())
    except OSError as exc:
        raise UsageError(f"trusted key {path} cannot be read: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise UsageError(f"trusted key {path} is not a valid PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"trusted key {path} is not an Ed25519 key")
    return _key_id(_raw_public(key)), key
