"""Staff grants: what a command in the vault role may do, signed by the API role for a named person.

The vault role cannot read the main database: not the staff who would run
its key commands, not the four-eyes approvals (ADR 0012, 0015). So the API
role, after authenticating the operator (and, for a retirement, after a second
person approved), signs a short-lived grant naming the command, its
arguments, the operator and the approver. The vault role checks the signature
with the public key alone and records the grant's id in its own database, so
a grant is used once. Ed25519; the token is `base64url(payload).base64url(signature)`.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from fintech.key_files import key_file_create
from fintech.problems import DomainError

MAX_TOKEN_LENGTH = 4096


class StaffGrantRefused(DomainError):
    status = 403
    code = "staff_grant_refused"
    title = "This staff grant is not valid for this command"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _generate_pair() -> None:
    """Dev and test only: both halves, once; the public half is derived from the private one, never the reverse."""
    private_path = Path(settings.STAFF_GRANT_SIGNING_KEY_PATH)
    if not private_path.exists():
        key_file_create(
            private_path, Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        )
    key = load_pem_private_key(private_path.read_bytes(), password=None)
    key_file_create(
        Path(settings.STAFF_GRANT_VERIFY_KEY_PATH),
        key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
        mode=0o644,
    )


@lru_cache(maxsize=4)
def _signing_key(path_text: str) -> Ed25519PrivateKey:
    path = Path(path_text)
    if not path.exists():
        if not settings.STAFF_GRANT_KEY_GENERATE:
            raise ImproperlyConfigured(f"Staff grant signing key not found at {path} (STAFF_GRANT_SIGNING_KEY_PATH).")
        _generate_pair()
    key = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured("The staff grant signing key must be an Ed25519 private key.")
    return key


@lru_cache(maxsize=4)
def _verify_key(path_text: str) -> Ed25519PublicKey:
    path = Path(path_text)
    if not path.exists():
        if not settings.STAFF_GRANT_KEY_GENERATE:
            raise ImproperlyConfigured(f"Staff grant public key not found at {path} (STAFF_GRANT_VERIFY_KEY_PATH).")
        _generate_pair()
    key = load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ImproperlyConfigured("The staff grant public key must be an Ed25519 public key.")
    return key


def staff_grant_sign(payload: dict[str, Any]) -> str:
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return f"{_b64(body)}.{_b64(_signing_key(str(settings.STAFF_GRANT_SIGNING_KEY_PATH)).sign(body))}"


def staff_grant_open(token: str, *, command: str, args: dict[str, Any]) -> dict[str, Any]:
    """The grant's payload if the signature holds, it is for this command and these arguments, and not expired."""
    token = (token or "").strip()
    try:
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError("too long")
        body_text, signature_text = token.split(".")
        body, signature = _unb64(body_text), _unb64(signature_text)
        _verify_key(str(settings.STAFF_GRANT_VERIFY_KEY_PATH)).verify(signature, body)
        payload = json.loads(body)
        expires_at = datetime.fromisoformat(payload["expires_at"])
    except (ValueError, KeyError, TypeError, InvalidSignature) as error:
        raise StaffGrantRefused("The grant is malformed or its signature does not hold.") from error
    if payload.get("command") != command or payload.get("args") != args:
        raise StaffGrantRefused(f"The grant is for {payload.get('command')} {payload.get('args')}, not this run.")
    if expires_at <= datetime.now(UTC):
        raise StaffGrantRefused("The grant has expired; ask for a new one.")
    return payload
