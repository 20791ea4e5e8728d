"""Where the checkpoint signing key comes from.

The private key is a PEM file outside the repository: AUDIT_SIGNING_KEY_PATH
in production (mounted from a secret store or HSM-backed file), generated on
first use into var/keys/ in dev and test. Only the sealer (a Celery worker)
needs it; web processes never load it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _generate(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process won the race; use its key
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


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
    return _load(str(settings.AUDIT_SIGNING_KEY_PATH), settings.AUDIT_SIGNING_KEY_GENERATE)
