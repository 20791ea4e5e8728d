"""Canonical bytes, Merkle roots and checkpoint signatures: pure functions.

Shared by the sealer, the database verifier and the offline archive verifier,
so all three compute exactly the same thing. Domain separation (0x00 for
leaves, 0x01 for inner nodes) stops a leaf from being passed off as a node.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

GENESIS_HASH = "0" * 64
EVENT_FIELDS = (
    "id", "occurred_at", "event_type", "outcome", "actor_user", "actor_client", "actor_staff", "object_type",
    "object_id", "purpose", "request_id", "source_ip", "user_agent", "payload",
)  # fmt: skip


def timestamp_text(value: datetime) -> str:
    """The one text form of a time that hashes and signatures cover: an archive must repeat it byte for byte."""
    if value.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_document(event: Any) -> dict[str, Any]:
    """The fields of an event that the seal covers, as JSON-ready values."""
    document = {field: getattr(event, field) for field in EVENT_FIELDS}
    document["occurred_at"] = timestamp_text(document["occurred_at"])
    document["source_ip"] = document["source_ip"] or None
    return document


def leaf_hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(b"\x00" + canonical_json(document)).hexdigest()


def merkle_root(leaves: list[str]) -> str:
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    level = [bytes.fromhex(leaf) for leaf in leaves]
    while len(level) > 1:
        paired = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])  # an odd node is promoted unchanged
        level = paired
    return level[0].hex()


def checkpoint_message(checkpoint: dict[str, Any]) -> bytes:
    """What a checkpoint's hash and signature cover."""
    return canonical_json(
        {
            "id": checkpoint["id"],
            "sealed_at": checkpoint["sealed_at"]
            if isinstance(checkpoint["sealed_at"], str)
            else timestamp_text(checkpoint["sealed_at"]),
            "first_event_id": checkpoint["first_event_id"],
            "last_event_id": checkpoint["last_event_id"],
            "event_count": checkpoint["event_count"],
            "merkle_root": checkpoint["merkle_root"],
            "previous_hash": checkpoint["previous_hash"],
            "key_id": checkpoint["key_id"],
        }
    )


def checkpoint_hash(checkpoint: dict[str, Any]) -> str:
    return hashlib.sha256(checkpoint_message(checkpoint)).hexdigest()


def public_key_bytes(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id_for(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()[:32]


def sign(private_key: Ed25519PrivateKey, message: bytes) -> bytes:
    return private_key.sign(message)


def signature_valid(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def signed_fields(checkpoint: Any) -> dict[str, Any]:
    """The fields of a checkpoint row that its hash and signature cover."""
    return {
        "id": checkpoint.id,
        "sealed_at": checkpoint.sealed_at,
        "first_event_id": checkpoint.first_event_id,
        "last_event_id": checkpoint.last_event_id,
        "event_count": checkpoint.event_count,
        "merkle_root": checkpoint.merkle_root,
        "previous_hash": checkpoint.previous_hash,
        "key_id": checkpoint.signing_key_id,
    }
