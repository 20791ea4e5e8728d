"""Handing a freshly generated private key from the `cert` worker to the command that asked, sealed.

The worker generates the service's key (the caller may run as ops, which must
never see the issuing key, and the key must never reach the database), and
the answer travels through the Celery result store (Redis). So the command
sends an ephemeral X25519 public key with its request, and the worker seals
the PEM to it (X25519 + HKDF-SHA256 + AES-256-GCM, the shape of HPKE base
mode): Redis, its backups and anyone reading the broker see only ciphertext
that dies with the command's ephemeral key. The result also expires
(CELERY_RESULT_EXPIRES).
"""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

INFO = b"fintech pki key transport v1"


def _raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _key(shared: bytes, sender: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO + sender + recipient).derive(shared)


def recipient_generate() -> tuple[X25519PrivateKey, str]:
    """The command's ephemeral key pair: (private, base64 public to send with the task)."""
    private = X25519PrivateKey.generate()
    return private, base64.b64encode(_raw(private.public_key())).decode()


def seal(plaintext: bytes, *, recipient_b64: str) -> dict[str, str]:
    """Encrypt `plaintext` so only the holder of the recipient's private key can read it."""
    recipient = X25519PublicKey.from_public_bytes(base64.b64decode(recipient_b64, validate=True))
    ephemeral = X25519PrivateKey.generate()
    sender = _raw(ephemeral.public_key())
    key = _key(ephemeral.exchange(recipient), sender, _raw(recipient))
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, INFO)
    return {
        "ephemeral": base64.b64encode(sender).decode(),
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }


def open_sealed(sealed: dict[str, str], *, recipient: X25519PrivateKey) -> bytes:
    """The plaintext of `seal`'s output; InvalidTag if anything was changed on the way."""
    sender = base64.b64decode(sealed["ephemeral"])
    key = _key(recipient.exchange(X25519PublicKey.from_public_bytes(sender)), sender, _raw(recipient.public_key()))
    return AESGCM(key).decrypt(base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ciphertext"]), INFO)
