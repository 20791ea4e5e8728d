"""Where the checkpoint signing key comes from, and which public keys verification trusts.

The private key is a PEM file outside the repository: AUDIT_SIGNING_KEY_PATH
in production (mounted from a secret store or HSM-backed file), generated on
first use into var/keys/ in dev and test. Only the sealer process (the Celery
worker, AUDIT_SEALER_PROCESS=1) is given its path; in every other process the
setting is empty and `signing_key()` refuses (issue 12).

Verification trusts the public keys in AUDIT_VERIFY_KEY_PATHS (files), never
the `AuditSigningKey` table: the runtime role can insert into that table, and
a checkpoint signed with an insider's own key, registered there, would
otherwise verify (issue 12). In dev and test the public half of the generated
key is written next to it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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


def _generate(path: Path) -> None:
    """Dev/test: a new key, and its public half next to it, so processes that only verify never need the private one."""
    key = Ed25519PrivateKey.generate()
    key_file_create(path, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    public_path = path.with_suffix(".pub.pem")
    if not public_path.exists():
        key_file_create(public_path, public, mode=0o644)


@lru_cache(maxsize=2)
def _load(path_text: str, generate: bool) -> Ed25519PrivateKey:
    path = Path(path_text)
    if not path.exists():
        if not generate:
            raise ImproperlyConfigured(f"Audit signing key not found at {path} (AUDIT_SIGNING_KEY_PATH).")
        _generate(path)
    key = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured("The audit signing key must be an Ed25519 private key.")
    return key


def signing_key() -> Ed25519PrivateKey:
    if not settings.AUDIT_SIGNING_KEY_PATH:
        raise ImproperlyConfigured("Only the audit sealer process (AUDIT_SEALER_PROCESS=1) holds the signing key.")
    return _load(str(settings.AUDIT_SIGNING_KEY_PATH), settings.AUDIT_SIGNING_KEY_GENERATE)


def _dev_public_key_write(path: Path) -> None:
    """Dev and test only: the public half of the generated signing key, so verification has a file to trust."""
    public = signing_key().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    key_file_create(path, public, mode=0o644)


def trusted_public_keys() -> dict[str, bytes]:
    """{key id: raw Ed25519 public key} from AUDIT_VERIFY_KEY_PATHS: the only keys a checkpoint may be signed with."""
    from audit.integrity import key_id_for

    keys: dict[str, bytes] = {}
    for path_text in settings.AUDIT_VERIFY_KEY_PATHS:
        path = Path(path_text)
        if not path.exists():
            if not settings.AUDIT_SIGNING_KEY_GENERATE:
                raise ImproperlyConfigured(f"Audit verification key not found at {path} (AUDIT_VERIFY_KEY_PATHS).")
            if not settings.AUDIT_SIGNING_KEY_PATH:
                continue  # dev, not the sealer: no key generated yet, so nothing was signed with one
            _dev_public_key_write(path)
        key = load_pem_public_key(path.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ImproperlyConfigured(f"{path} is not an Ed25519 public key (AUDIT_VERIFY_KEY_PATHS).")
        raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        keys[key_id_for(raw)] = raw
    return keys
