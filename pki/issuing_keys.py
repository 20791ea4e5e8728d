"""Where the issuing CA's key comes from: a provider handing out a signer, which an HSM or a KMS can replace.

Why a provider: the issuing intermediate's key is the platform CA's most
valuable secret (ADR 0018). Today it is a PEM file, a systemd credential of the
cert worker; tomorrow it may live in an HSM or a cloud KMS, where it can sign
but never be read. `pki.ca` asks this module's provider for the key instead of
opening the file itself, so that swap touches this module only, like
`tokenvault.keys.KeyProvider` for the vault's KEKs (that interface wraps and
unwraps data keys: the wrong shape for a CA, hence this one).

Why a *signer*, not key export: `pki.ca` only ever calls the key's `sign()`
(through `cryptography`'s certificate and CRL builders) and `public_key()`.
`cryptography` accepts any subclass of `ec.EllipticCurvePrivateKey` there, so
an HSM or KMS implementation returns an object whose `sign(data, ECDSA(hash))`
hashes `data` and asks the device (PKCS#11 `C_Sign` over the digest, AWS KMS
`Sign` with `ECDSA_SHA_384`, Google Cloud KMS `AsymmetricSign`), whose
`public_key()` is the device's public key, and whose `private_bytes()` and
`private_numbers()` refuse. Nothing in `pki` needs more, and
`pki/tests/test_issuing_keys.py` signs a leaf and a CRL with such a
non-exporting signer to keep it so. The local file provider below is the one
real implementation: it returns the key loaded from its file.

Which process gets a provider at all is the rule of fintech/process_keys.py:
`issuing_key_provider()` raises IssuingKeyNotHeld wherever the settings hold
no PKI_ISSUING_KEY_PATH (every process but the cert worker).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

from pki.exceptions import IssuingKeyNotHeld


@runtime_checkable
class IssuingKeyProvider(Protocol):
    """What the CA needs from wherever its issuing key lives."""

    def signer(self) -> ec.EllipticCurvePrivateKey:
        """The issuing key as a signer: `pki.ca` calls only its `sign()` and `public_key()`.

        Raises IssuingKeyNotHeld when the key cannot be reached (missing file, device unavailable).
        """
        ...


class LocalFileIssuingKeyProvider:
    """The key as an unencrypted PKCS#8 PEM file: a systemd credential in production, var/keys/pki/ in dev and test.

    Read on every call, as before the provider existed: a replaced credential is picked up by the next task,
    and the key stays in memory only while one signature is being made.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def signer(self) -> ec.EllipticCurvePrivateKey:
        try:
            pem = self.path.read_bytes()
        except FileNotFoundError:
            raise IssuingKeyNotHeld(f"no issuing key at {self.path} (PKI_ISSUING_KEY_PATH)") from None
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise IssuingKeyNotHeld(f"{self.path} is not an elliptic-curve key (PKI_ISSUING_KEY_PATH)")
        return key

    def __repr__(self) -> str:
        return f"LocalFileIssuingKeyProvider({str(self.path)!r})"


def issuing_key_provider() -> IssuingKeyProvider:
    """This process's provider; IssuingKeyNotHeld in any process the rule does not give the key."""
    if not settings.PKI_ISSUING_KEY_PATH:
        raise IssuingKeyNotHeld()
    return LocalFileIssuingKeyProvider(Path(settings.PKI_ISSUING_KEY_PATH))
