"""Signed checkpoints of the audit chain, as CloudTrail signs its digest files: keys, statements.

A checkpoint says "the chain held ``rows`` events, the newest hashed ``tail``, at ``at``" and
names the checkpoint before it by its signature, so checkpoints form a chain of their own. It is
signed with an Ed25519 key kept in a file, never in the database: whoever can rewrite the audit
rows and recompute every hash still cannot sign, so a rewrite shows at the first checkpoint
after the rewritten row. A checkpoint is itself appended as an audit event
(``audit.checkpoint``, see ``engine.audit_checkpoints``); its signature is a public value, not
a secret, stored under ``ed25519`` (``engine.audit.scrub`` masks keys named like "signature").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

CHECKPOINT_VERB = "audit.checkpoint"
VERSION = 1
# Signatures cover this prefix too: a checkpoint's signature can never pass for another
# message signed with the same key.
_DOMAIN = b"riposte audit checkpoint v1\n"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_FIELDS = {"version", "rows", "tail", "at", "previous", "key_id"}


class SigningKeyInvalid(ValueError):
    """A key file that cannot be used; the message names the file and what to do."""


class CheckpointMalformed(ValueError):
    """An ``audit.checkpoint`` event or file whose content is not a checkpoint."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """Name a key by the start of the SHA-256 of its raw public bytes (16 hex digits)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key_pair(private_path: Path, public_path: Path) -> str:
    """Write a new Ed25519 key pair as PEM files (the private one mode 0600); return its id.

    Refuses to overwrite either file.
    """
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for path in (private_path, public_path):
        if path.exists():
            raise SigningKeyInvalid(f"{path} exists: a key file is never overwritten; move it "
                                    "away or choose another name")
    _write_new(private_path, private_pem, 0o600)
    _write_new(public_path, public_pem, 0o644)
    return key_id(private_key.public_key())


def _write_new(path: Path, content: bytes, mode: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read an unencrypted PEM Ed25519 private key (as ``riposte audit keygen`` writes it)."""
    try:
        key = serialization.load_pem_private_key(_read(path), password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyInvalid(
            f"{path} is not an unencrypted PEM Ed25519 private key ({exc}); make one with "
            "`riposte audit keygen`"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyInvalid(f"{path} holds a {type(key).__name__}, not an Ed25519 private "
                                "key; make one with `riposte audit keygen`")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a PEM Ed25519 public key (the ``.pub`` file of ``riposte audit keygen``)."""
    try:
        key = serialization.load_pem_public_key(_read(path))
    except ValueError as exc:
        raise SigningKeyInvalid(f"{path} is not a PEM Ed25519 public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyInvalid(f"{path} holds a {type(key).__name__}, not an Ed25519 public "
                                "key")
    return key


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningKeyInvalid(f"cannot read key file {path}: {exc.strerror}") from exc


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint states about the chain before it."""

    rows: int  # events in the chain before the checkpoint's own event
    tail: str  # hash of the newest of them (engine.audit_hash.GENESIS for none)
    at: str  # when it was signed, ISO 8601 UTC
    previous: str | None  # signature of the checkpoint before it; None for the first
    key_id: str  # the signing key (engine.audit_signing.key_id)

    def statement(self) -> dict[str, Any]:
        """Return the statement as stored and signed (a JSON object)."""
        return {"version": VERSION, "rows": self.rows, "tail": self.tail, "at": self.at,
                "previous": self.previous, "key_id": self.key_id}

    def signed_text(self) -> bytes:
        """Return the exact bytes the signature covers."""
        return _DOMAIN + json.dumps(self.statement(), sort_keys=True,
                                    separators=(",", ":")).encode()


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint and its Ed25519 signature (base64)."""

    checkpoint: Checkpoint
    signature: str

    def details(self) -> dict[str, Any]:
        """Return the checkpoint as an audit event's details (and an export file's body)."""
        return {"checkpoint": self.checkpoint.statement(), "ed25519": self.signature}

    @classmethod
    def from_details(cls, details: Any) -> SignedCheckpoint:
        """Read a checkpoint back from ``details``; raise CheckpointMalformed if it is not one."""
        if not isinstance(details, dict) or set(details) != {"checkpoint", "ed25519"}:
            raise CheckpointMalformed("not {checkpoint, ed25519}")
        statement, signature = details["checkpoint"], details["ed25519"]
        if not isinstance(statement, dict) or set(statement) != _FIELDS:
            raise CheckpointMalformed(f"the statement's fields are not {sorted(_FIELDS)}")
        rows, tail, previous = statement["rows"], statement["tail"], statement["previous"]
        if statement["version"] != VERSION:
            raise CheckpointMalformed(f"version {statement['version']!r}, not {VERSION}")
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            raise CheckpointMalformed(f"rows {rows!r} is not a count")
        if not isinstance(tail, str) or not _HEX64.fullmatch(tail):
            raise CheckpointMalformed(f"tail {tail!r} is not a SHA-256 hex digest")
        if not isinstance(statement["at"], str) or not isinstance(statement["key_id"], str):
            raise CheckpointMalformed("at and key_id must be text")
        if previous is not None and not isinstance(previous, str):
            raise CheckpointMalformed("previous must be a signature or null")
        if not isinstance(signature, str):
            raise CheckpointMalformed("the signature must be base64 text")
        checkpoint = Checkpoint(rows=rows, tail=tail, at=statement["at"], previous=previous,
                                key_id=statement["key_id"])
        return cls(checkpoint=checkpoint, signature=signature)

    def verifies_with(self, public_key: Ed25519PublicKey) -> bool:
        """Tell whether the signature is ``public_key``'s over exactly this checkpoint."""
        try:
            raw = base64.b64decode(self.signature, validate=True)
            public_key.verify(raw, self.checkpoint.signed_text())
        except (InvalidSignature, binascii.Error):
            return False
        return True


def sign(checkpoint: Checkpoint, private_key: Ed25519PrivateKey) -> SignedCheckpoint:
    """Sign a checkpoint (its ``key_id`` must be the key's own)."""
    if checkpoint.key_id != key_id(private_key.public_key()):
        raise ValueError(f"checkpoint names key {checkpoint.key_id}, not the signing key "
                         f"{key_id(private_key.public_key())}")
    raw = private_key.sign(checkpoint.signed_text())
    return SignedCheckpoint(checkpoint=checkpoint, signature=base64.b64encode(raw).decode())
