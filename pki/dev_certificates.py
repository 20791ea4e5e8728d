"""Dev and test only: the certificates `make run` puts the vault role behind its TLS terminator with (issue 14).

Under PKI_TLS_DIR (var/tls/, 0700): the terminator's server certificate
(SANs localhost, vault.internal.example), the API role's vault client
certificate (api.internal.example), each with its key (0600) and the chain
after the leaf, and `ca.pem`, the bundle both sides trust. Each leaf is a
real certificate of the platform CA, issued through `pki.services` (a
`Certificate` row and its audit event), so the terminator can follow its
renewals and a revocation shows in the CRL like any other.

Why it signs in-process when every other path asks the `cert` worker: it runs
before the worker exists (`make run` needs the files before honcho starts
anything), in `make run`'s console, whose settings hold every key
(FINTECH_PROCESS unset, fintech/process_keys.py). The command refuses in
any process that does not hold the issuing key, and wherever the CA is not
the generated dev one (PKI_KEY_GENERATE off: production).

Idempotent: a leaf is issued only when a file is missing or unreadable, its key
does not match, the current CA did not sign it, the database does not know it
(or it was revoked, or its names changed); renewed (same key) when due within
PKI_RENEW_WITHIN_DAYS; rewritten when the daily job renewed it meanwhile.
Otherwise nothing is written. nginx refuses to start without a CRL, so a CRL
is published too when none is there, or when it is stale or not the current CA's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.utils import timezone

from fintech.key_files import file_replace
from pki import ca, services
from pki.models import Certificate
from pki.selectors import certificate_newest_of

VALIDITY_DAYS = 90
CRL_REFRESH_BEFORE = dt.timedelta(days=1)  # a CRL this close to its nextUpdate is republished
CA_BUNDLE = "ca.pem"


@dataclass(frozen=True)
class DevLeaf:
    """One certificate of the dev set: its file names (`<name>.pem`, `<name>.key`), service and SANs."""

    name: str
    service: str
    sans: tuple[str, ...]

    def certificate_path(self, directory: Path) -> Path:
        return directory / f"{self.name}.pem"

    def key_path(self, directory: Path) -> Path:
        return directory / f"{self.name}.key"


VAULT_SERVER = DevLeaf("vault-server", "vault-terminator", ("localhost", "vault.internal.example"))
API_VAULT_CLIENT = DevLeaf("api-client", "api-vault-client", ("api.internal.example",))
DEV_LEAVES = (VAULT_SERVER, API_VAULT_CLIENT)


def certificate_read(path: Path) -> x509.Certificate | None:
    """The first certificate of a PEM file (the leaf of leaf + chain); None when missing or unreadable."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def public_key_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_matches(key_path: Path, certificate: x509.Certificate) -> bool:
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return False
    return public_key_der(key.public_key()) == public_key_der(certificate.public_key())


def crl_current(*, issuing: x509.Certificate, now: dt.datetime) -> bool:
    """Whether PKI_CRL_PATH holds a CRL the current intermediate signed that is not about to go stale."""
    try:
        crl = x509.load_pem_x509_crl(Path(settings.PKI_CRL_PATH).read_bytes())
    except (OSError, ValueError):
        return False
    return ca.crl_signed_and_fresh(crl, issuing, now=now, fresh_for=CRL_REFRESH_BEFORE)


def _leaf_write(leaf: DevLeaf, directory: Path, *, certificate_pem: str, key_pem: bytes | None = None) -> None:
    if key_pem is not None:
        file_replace(leaf.key_path(directory), key_pem, mode=0o600)
    file_replace(leaf.certificate_path(directory), (certificate_pem + ca.chain_pem()).encode(), mode=0o644)


def _leaf_ensure(leaf: DevLeaf, directory: Path, *, issuing: x509.Certificate, now: dt.datetime) -> str:
    """What was done for one leaf: "" (nothing), or a line saying what was issued, renewed or rewritten."""
    certificate = certificate_read(leaf.certificate_path(directory))
    row = None
    usable = certificate is not None and _key_matches(leaf.key_path(directory), certificate)
    if usable and ca.signed_by(certificate, issuing):
        row = certificate_newest_of(serial=ca.serial_hex(certificate))
    if row is None or row.status == Certificate.Status.REVOKED or sorted(row.sans) != sorted(leaf.sans):
        row, key_pem = services.certificate_issue(
            service=leaf.service, sans=list(leaf.sans), days=VALIDITY_DAYS, operator=None, now=now
        )
        _leaf_write(leaf, directory, certificate_pem=row.certificate_pem, key_pem=key_pem)
        return f"issued {leaf.name} (serial {row.serial})"
    if row.not_after - now <= dt.timedelta(days=settings.PKI_RENEW_WITHIN_DAYS):
        row = services.certificate_renew(serial=row.serial, operator=None, now=now)
        _leaf_write(leaf, directory, certificate_pem=row.certificate_pem)
        return f"renewed {leaf.name} (serial {row.serial}, same key)"
    if row.serial != ca.serial_hex(certificate):  # the daily job renewed it since the file was written
        _leaf_write(leaf, directory, certificate_pem=row.certificate_pem)
        return f"rewrote {leaf.name} with its renewal (serial {row.serial})"
    return ""


def dev_certificates_ensure(*, directory: Path, now: dt.datetime | None = None) -> list[str]:
    """Make `directory` hold a current dev certificate set and the CA bundle, and PKI_CRL_PATH a current CRL.

    Returns one line per thing it did (empty: everything was in place, nothing written). Signs in this
    process: the caller has checked that its settings hold the issuing key (module docstring)."""
    now = now or timezone.now()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.chmod(0o700)
    issuing = ca.issuing_ca_load(now=now).certificate  # dev/test: generates the CA on first use
    done = []
    if not crl_current(issuing=issuing, now=now):
        done.append(f"published CRL {services.crl_publish(now=now).number} at {settings.PKI_CRL_PATH}")
    bundle = directory / CA_BUNDLE
    chain = ca.chain_pem().encode()
    if not bundle.is_file() or bundle.read_bytes() != chain:
        file_replace(bundle, chain, mode=0o644)
        done.append(f"wrote {bundle}")
    for leaf in DEV_LEAVES:
        line = _leaf_ensure(leaf, directory, issuing=issuing, now=now)
        if line:
            done.append(line)
    return done
