"""The platform CA's x509 work: building the root and the issuing intermediate, signing leaves and CRLs.

Why a module of its own: everything here is pure `cryptography` over keys and
certificates passed in, so the one place that touches the issuing key
(`issuing_ca_load`) is small and easy to audit. That function gets the key
from a provider (pki/issuing_keys.py: the key file today, an HSM or KMS signer
later) and refuses in any process whose settings do not hold the key
(fintech/process_keys.py: the cert worker, consuming the `cert` queue alone), so
a web process cannot sign even by mistake.

The chain (ADR 0018): a root whose key never sits on a production host (dev
and test generate one under var/keys/pki/), and an issuing intermediate with
pathlen 0 and critical NameConstraints permitting only PKI_PERMITTED_DNS_DOMAINS,
so even a stolen intermediate key cannot mint a certificate for a public name
that a client trusting the root would accept.
"""

from __future__ import annotations

import datetime as dt
import fcntl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.conf import settings

from fintech.key_files import key_file_create
from pki.exceptions import IssuingKeyNotHeld, SanNotPermitted
from pki.issuing_keys import IssuingKeyProvider, issuing_key_provider

ORGANIZATION = "Fintech platform"
ROOT_VALIDITY_DAYS = 3650
ISSUING_VALIDITY_DAYS = 1825
BACKDATE = dt.timedelta(minutes=5)  # clock skew between us and a verifier
MAX_SANS = 20
MAX_DNS_NAME_LENGTH = 253


@dataclass(frozen=True)
class IssuingCa:
    """The intermediate's certificate and key: exists only in the process holding the key.

    `key` is a signer (pki/issuing_keys.py): only its `sign()` and `public_key()` are used here, so it may be
    an HSM's handle that never exports the key.
    """

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str, unit: str = "") -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION)]
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    encoding, private_format = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    return key.private_bytes(encoding, private_format, serialization.NoEncryption())


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def fingerprint_sha256(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, lower-case hex: the thumbprint RFC 8705 binds tokens to."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def serial_hex(certificate: x509.Certificate) -> str:
    return format(certificate.serial_number, "x")


def serial_normalise(text: str) -> str:
    """A serial as an operator pastes it (openssl's `03E21C…`, `03:E2:1C:…`, cert_list's `3e21c…`) as serial_hex
    writes it: lower case, no separators, no leading zeros."""
    digits = "".join(text.split()).replace(":", "").lower().lstrip("0")
    return digits or "0"


def root_build(*, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed root (dev and test only: production brings its own, made offline)."""
    key = ec.generate_private_key(ec.SECP384R1())
    name = _name("Fintech platform root CA")
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=ROOT_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )
    return certificate, key


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def intermediate_build(
    *, root: x509.Certificate, root_key: ec.EllipticCurvePrivateKey, permitted_domains: list[str], now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The issuing CA: pathlen 0 (it signs leaves only) and critical NameConstraints on DNS names."""
    if not permitted_domains:
        raise ValueError("PKI_PERMITTED_DNS_DOMAINS is empty: an unconstrained intermediate is refused")
    key = ec.generate_private_key(ec.SECP384R1())
    not_after = min(now + dt.timedelta(days=ISSUING_VALIDITY_DAYS), root.not_valid_after_utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name("Fintech platform issuing CA 1"))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(
            x509.NameConstraints(
                permitted_subtrees=[x509.DNSName(domain) for domain in permitted_domains], excluded_subtrees=None
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA384())
    )
    return certificate, key


def permitted_domains_of(issuing: x509.Certificate) -> list[str]:
    """The DNS subtrees the intermediate's own NameConstraints permit: the truth, whatever the settings say now."""
    constraints = issuing.extensions.get_extension_for_class(x509.NameConstraints).value
    return [subtree.value for subtree in constraints.permitted_subtrees or [] if isinstance(subtree, x509.DNSName)]


def dns_name_permitted(name: str, domains: list[str]) -> bool:
    """RFC 5280 §4.2.1.10 for dNSName: the name is a subtree's domain or ends with "." + it (case-insensitive)."""
    name = name.lower().rstrip(".")
    return any(name == domain.lower() or name.endswith("." + domain.lower()) for domain in domains)


def sans_check(sans: list[str], issuing: x509.Certificate) -> list[str]:
    """The SANs normalised, or SanNotPermitted naming the first one outside the intermediate's constraints.

    Checked before signing: a leaf the constraints forbid would be refused by
    every verifier, so issuing it would only hand out a useless certificate.
    """
    if not sans or len(sans) > MAX_SANS:
        raise SanNotPermitted(f"between 1 and {MAX_SANS} DNS names are required")
    domains = permitted_domains_of(issuing)
    normalised = []
    for san in sans:
        name = san.strip().lower().rstrip(".")
        plain = name.replace("-", "").replace(".", "")
        if not name or len(name) > MAX_DNS_NAME_LENGTH or not (plain.isascii() and plain.isalnum()):
            raise SanNotPermitted(f"{san[:64]!r} is not a DNS name (no wildcards, no IP addresses)")
        if not dns_name_permitted(name, domains):
            raise SanNotPermitted(f"{name} is outside the CA's permitted domains ({', '.join(domains)})")
        if name not in normalised:
            normalised.append(name)
    return normalised


def leaf_sign(
    *,
    ca: IssuingCa,
    public_key: ec.EllipticCurvePublicKey,
    service: str,
    sans: list[str],
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """A service certificate for TLS server and client use (mutual TLS), for `sans` only."""
    sans = sans_check(sans, ca.certificate)
    not_after = min(not_after, ca.certificate.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(sans[0], unit=service))
        .issuer_name(ca.certificate.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in sans]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )


def crl_sign(
    *, ca: IssuingCa, revoked: list[tuple[int, dt.datetime, x509.ReasonFlags]], number: int, now: dt.datetime,
    next_update: dt.datetime,
) -> x509.CertificateRevocationList:  # fmt: skip
    """The CRL of everything the intermediate signed and revoked, numbered (RFC 5280 §5.2.3)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(now)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    for serial, revoked_at, reason in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at)
        if reason != x509.ReasonFlags.unspecified:  # RFC 5280 §5.3.1: omit rather than say "unspecified"
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign(ca.key, hashes.SHA256())


def leaf_key_generate() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def leaf_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return _key_pem(key)


# --- the issuing key: the cert worker alone --------------------------------------------------------


def _dev_ca_generate(*, now: dt.datetime) -> None:
    """Dev/test: root and intermediate under var/keys/pki/ (0600 keys), once, even with racing workers.

    The root's key is written too, since dev has no offline ceremony; production has no setting for it at all.
    """
    directory = Path(settings.PKI_ISSUING_KEY_PATH).parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(directory / ".generate.lock", "a") as lock:  # held open for the flock
        fcntl.flock(lock, fcntl.LOCK_EX)
        if Path(settings.PKI_ISSUING_KEY_PATH).exists():
            return
        root_path, root_key_path = Path(settings.PKI_ROOT_CERT_PATH), directory / "root-ca.key.pem"
        if root_path.exists() and root_key_path.exists():
            root = x509.load_pem_x509_certificate(root_path.read_bytes())
            root_key = serialization.load_pem_private_key(root_key_path.read_bytes(), password=None)
        else:
            root, root_key = root_build(now=now)
            key_file_create(root_key_path, _key_pem(root_key))
            root_path.unlink(missing_ok=True)
            key_file_create(root_path, root.public_bytes(serialization.Encoding.PEM), mode=0o644)
        issuing, issuing_key = intermediate_build(
            root=root, root_key=root_key, permitted_domains=list(settings.PKI_PERMITTED_DNS_DOMAINS), now=now
        )
        Path(settings.PKI_ISSUING_CERT_PATH).unlink(missing_ok=True)
        issuing_pem = issuing.public_bytes(serialization.Encoding.PEM)
        key_file_create(Path(settings.PKI_ISSUING_CERT_PATH), issuing_pem, mode=0o644)
        key_file_create(Path(settings.PKI_ISSUING_KEY_PATH), _key_pem(issuing_key))  # last: it marks "done"


def issuing_ca_load(*, now: dt.datetime | None = None, provider: IssuingKeyProvider | None = None) -> IssuingCa:
    """The intermediate and its key (as a signer); IssuingKeyNotHeld in any process the rule does not give the key.

    The key comes from `provider`, by default this process's (pki/issuing_keys.py: the key file), which dev and
    test generate first when it is missing. An explicit provider (an HSM's) is used as it is.
    """
    if provider is None:
        provider = issuing_key_provider()
        if settings.PKI_KEY_GENERATE and not Path(settings.PKI_ISSUING_KEY_PATH).exists():
            _dev_ca_generate(now=now or dt.datetime.now(dt.UTC))
    key = provider.signer()
    certificate = issuing_certificate()
    if certificate.public_key().public_numbers() != key.public_key().public_numbers():
        raise IssuingKeyNotHeld("the issuing key does not match the certificate at PKI_ISSUING_CERT_PATH")
    return IssuingCa(certificate=certificate, key=key)


def issuing_certificate() -> x509.Certificate:
    """The intermediate's certificate (public): what a verifier checks certificates and CRLs against."""
    return x509.load_pem_x509_certificate(Path(settings.PKI_ISSUING_CERT_PATH).read_bytes())


def signed_by(certificate: x509.Certificate, issuing: x509.Certificate) -> bool:
    """Whether `issuing` signed `certificate` (a row or a file is someone's word; the signature is the CA's)."""
    try:
        certificate.verify_directly_issued_by(issuing)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def crl_signed_and_fresh(
    crl: x509.CertificateRevocationList, issuing: x509.Certificate, *, now: dt.datetime, fresh_for: dt.timedelta
) -> bool:
    """Whether `issuing` signed the CRL and its nextUpdate is more than `fresh_for` after `now`."""
    next_update = crl.next_update_utc
    return (
        crl.issuer == issuing.subject
        and crl.is_signature_valid(issuing.public_key())
        and next_update is not None
        and next_update > now + fresh_for
    )


def chain_pem() -> str:
    """The intermediate then the root (public): what a service presents after its own certificate."""
    return Path(settings.PKI_ISSUING_CERT_PATH).read_text() + Path(settings.PKI_ROOT_CERT_PATH).read_text()


def root_crl_pem(*, now: dt.datetime | None = None) -> bytes:
    """The root's CRL (what a verifier checks the intermediate against; nginx checks every level).

    Production: published by the offline root's ceremony at PKI_ROOT_CRL_PATH, read here. Dev and test have
    the root's key (`_dev_ca_generate`), so an empty CRL valid for a year is signed on demand.
    """
    if settings.PKI_ROOT_CRL_PATH:
        return Path(settings.PKI_ROOT_CRL_PATH).read_bytes()
    root_key_path = Path(settings.PKI_ROOT_CERT_PATH).parent / "root-ca.key.pem"
    if not root_key_path.exists():
        raise IssuingKeyNotHeld("no PKI_ROOT_CRL_PATH, and no dev root key to sign one with")
    now = now or dt.datetime.now(dt.UTC)
    root = x509.load_pem_x509_certificate(Path(settings.PKI_ROOT_CERT_PATH).read_bytes())
    root_key = serialization.load_pem_private_key(root_key_path.read_bytes(), password=None)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root.subject)
        .last_update(now - BACKDATE)
        .next_update(now + dt.timedelta(days=365))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    return crl.public_bytes(serialization.Encoding.PEM)
