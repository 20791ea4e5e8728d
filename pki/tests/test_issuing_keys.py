"""The issuing key comes from a provider: the key file is one, and a signer that never exports its key works too.

The second test is the promise pki/issuing_keys.py makes to a future HSM or KMS
implementation: the CA signs leaves and CRLs through `sign()` and `public_key()`
alone, so a device-backed key that refuses export can be plugged in.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

from pki import ca
from pki.exceptions import IssuingKeyNotHeld
from pki.issuing_keys import IssuingKeyProvider, LocalFileIssuingKeyProvider, issuing_key_provider


class NonExportingSigner(ec.EllipticCurvePrivateKey):
    """What an HSM's key handle looks like to `cryptography`: it signs and names its public key, nothing more."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self.signatures = 0

    def sign(self, data, signature_algorithm):
        self.signatures += 1
        return self._key.sign(data, signature_algorithm)

    def public_key(self):
        return self._key.public_key()

    @property
    def curve(self):
        return self._key.curve

    @property
    def key_size(self):
        return self._key.key_size

    def exchange(self, algorithm, peer_public_key):
        raise AssertionError("the CA never does key agreement with its issuing key")

    def private_numbers(self):
        raise AssertionError("the CA never reads the issuing key")

    def private_bytes(self, encoding, format, encryption_algorithm):
        raise AssertionError("the CA never exports the issuing key")

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


class DeviceProvider:
    def __init__(self, signer: NonExportingSigner) -> None:
        self._signer = signer

    def signer(self) -> ec.EllipticCurvePrivateKey:
        return self._signer


def test_this_process_reads_the_key_file_through_the_local_provider():
    ca.issuing_ca_load()  # the test process holds every key: generates the dev CA on first use

    provider = issuing_key_provider()

    assert isinstance(provider, LocalFileIssuingKeyProvider) and isinstance(provider, IssuingKeyProvider)
    assert provider.path == Path(settings.PKI_ISSUING_KEY_PATH)
    certificate = x509.load_pem_x509_certificate(Path(settings.PKI_ISSUING_CERT_PATH).read_bytes())
    assert provider.signer().public_key().public_numbers() == certificate.public_key().public_numbers()


def test_a_missing_or_foreign_key_file_is_not_held(tmp_path):
    with pytest.raises(IssuingKeyNotHeld, match="no issuing key at"):
        LocalFileIssuingKeyProvider(tmp_path / "absent.pem").signer()

    from cryptography.hazmat.primitives.asymmetric import ed25519

    other = tmp_path / "ed25519.pem"
    other.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(IssuingKeyNotHeld, match="not an elliptic-curve key"):
        LocalFileIssuingKeyProvider(other).signer()


def test_no_provider_where_the_settings_hold_no_key(settings):
    settings.PKI_ISSUING_KEY_PATH = ""

    with pytest.raises(IssuingKeyNotHeld):
        issuing_key_provider()
    with pytest.raises(IssuingKeyNotHeld):
        ca.issuing_ca_load()


def test_the_ca_signs_a_leaf_and_a_crl_with_a_signer_that_never_exports_its_key():
    ca.issuing_ca_load()  # the dev CA exists
    signer = NonExportingSigner(LocalFileIssuingKeyProvider(Path(settings.PKI_ISSUING_KEY_PATH)).signer())
    now = dt.datetime.now(dt.UTC)

    issuing = ca.issuing_ca_load(provider=DeviceProvider(signer))
    leaf_key = ca.leaf_key_generate()
    leaf = ca.leaf_sign(
        ca=issuing,
        public_key=leaf_key.public_key(),
        service="vault",
        sans=["vault.internal.example"],
        not_before=now,
        not_after=now + dt.timedelta(days=1),
    )
    crl = ca.crl_sign(
        ca=issuing,
        revoked=[(leaf.serial_number, now, x509.ReasonFlags.key_compromise)],
        number=1,
        now=now,
        next_update=now + dt.timedelta(days=7),
    )

    leaf.verify_directly_issued_by(issuing.certificate)
    assert crl.is_signature_valid(issuing.certificate.public_key())
    assert signer.signatures == 2


def test_a_signer_for_another_key_is_refused():
    ca.issuing_ca_load()
    stranger = NonExportingSigner(ec.generate_private_key(ec.SECP384R1()))

    with pytest.raises(IssuingKeyNotHeld, match="does not match the certificate"):
        ca.issuing_ca_load(provider=DeviceProvider(stranger))
    assert stranger.signatures == 0
