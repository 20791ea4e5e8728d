"""Partners authenticating with a TLS client certificate, and tokens bound to it (RFC 8705).

Why `self_signed_tls_client_auth` (RFC 8705 §2.2, the certificate pinned by
its SHA-256 thumbprint) and not `tls_client_auth` (§2.1, a CA-signed subject):
the platform CA's certificates open the vault's listener, so a partner
certificate signed by it would be one name check away from the vault; a
pinned certificate trusts nothing but itself. The partner keeps its key and
its own certificate lifecycle (no CSR to handle, no partner identity under our
CA), and cutting a partner off is removing one pin, effective on the next
request, with no CRL to wait for. ADR 0018 records the choice.

A pin is a four-eyes change (`accounts.approvals.kinds_client_certificates`):
whoever can pin a certificate to a client can become that client. The row is
MAC'd with the approval that wrote it, so the database login cannot pin one.

Once a client has a pin it authenticates with that certificate only: its
secret no longer opens the token endpoint (one registered method per client,
RFC 8705 §2), and every access token it gets is bound to the certificate
(`cnf.x5t#S256`), refused over any connection not presenting it.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.utils import timezone
from oauth2_provider.models import Application

from accounts.models import OAuthClientCertificate
from fintech.macs import row_mac_matches, row_mac_of
from fintech.problems import DomainError

logger = logging.getLogger(__name__)
MAC_SALT = "accounts.oauth.client_certificate/1"
SELF_SIGNED_TLS_CLIENT_AUTH = "self_signed_tls_client_auth"
MAX_PEM_LENGTH = 8_192
MIN_RSA_BITS = 2048


class ClientCertificateRefused(DomainError):
    status = 422
    code = "client_certificate_refused"
    title = "This certificate cannot be pinned to a client."


def _mac_values(application: Application, x5t: str, approval_public_id, not_after: dt.datetime) -> list:
    """The row's client by primary key AND client id: tokens, API keys and policies hang on the key, so swapping
    two clients' ids (database login) must not carry a pin over to the other client's row."""
    return [application.pk, application.client_id, x5t, str(approval_public_id), not_after.isoformat()]


def pin_mac(*, application: Application, x5t: str, approval_public_id, not_after: dt.datetime) -> str:
    return row_mac_of(MAC_SALT, _mac_values(application, x5t, approval_public_id, not_after))


def client_certificate_parse(pem: str, *, now: dt.datetime | None = None) -> x509.Certificate:
    """One end-entity certificate fit to authenticate a client, or ClientCertificateRefused saying why."""
    now = now or timezone.now()
    if not pem or len(pem) > MAX_PEM_LENGTH or pem.count("-----BEGIN CERTIFICATE-----") != 1:
        raise ClientCertificateRefused("exactly one PEM certificate is required")
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise ClientCertificateRefused("not a PEM certificate") from None
    if certificate.not_valid_after_utc <= now or certificate.not_valid_before_utc > now + dt.timedelta(days=1):
        raise ClientCertificateRefused("the certificate is expired or not yet valid")
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise ClientCertificateRefused(f"an RSA key needs at least {MIN_RSA_BITS} bits")
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise ClientCertificateRefused("the key must be RSA, EC or Ed25519")
    try:
        # `openssl req -x509` marks a self-signed certificate CA:TRUE by default; pinned, that grants nothing more.
        # A CA's certificate issued by another CA is a sub-CA, not a client: refused.
        if certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca and (
            certificate.issuer != certificate.subject
        ):
            raise ClientCertificateRefused("a CA certificate cannot authenticate a client")
    except x509.ExtensionNotFound:
        pass
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
            raise ClientCertificateRefused("the certificate's extended key usage does not allow client auth")
    except x509.ExtensionNotFound:
        pass
    return certificate


def pinned_certificate_of(application: Application) -> OAuthClientCertificate | None:
    """The client's pin if it has one and its MAC verifies; a row that does not verify is no pin (and is logged).

    A client with a forged or damaged pin row then falls back to nothing: `client_authenticated_by_certificate`
    refuses it, and so does the secret (`has_certificate_pin`), so the row fails closed."""
    pin = OAuthClientCertificate.objects.filter(application=application).first()
    if pin is None:
        return None
    values = _mac_values(application, pin.x5t_s256, pin.approval_public_id, pin.not_after)
    if row_mac_matches(pin.mac, MAC_SALT, values):
        return pin
    _pin_refusal_record(application, pin)
    return None


def _pin_refusal_record(application: Application, pin: OAuthClientCertificate) -> None:
    """A pin row written or changed outside the four-eyes path: refused, and said loudly (log, audit trail)."""
    from audit.models import AuditEvent
    from audit.services.events import Actor, audit_event_record

    logger.error("client certificate pin fails its MAC: refused", extra={"client_id": application.client_id})
    audit_event_record(
        event_type="oauth.client_certificate_mac_invalid",
        outcome=AuditEvent.Outcome.DENIED,
        actor=Actor(),  # nobody the platform authorized wrote it
        object_type="oauth.client",
        object_id=application.client_id,
        payload={"claimed_x5t_s256": pin.x5t_s256},
    )


def has_certificate_pin(application: Application) -> bool:
    """Whether a row says so, verified or not: a client with any pin row never authenticates with its secret."""
    return OAuthClientCertificate.objects.filter(application=application).exists()


def client_authenticated_by_certificate(application: Application, presented_x5t: str) -> bool:
    """The client's pinned certificate is the one the TLS connection presented, and it is still valid."""
    if not presented_x5t:
        return False
    pin = pinned_certificate_of(application)
    if pin is None or pin.not_after <= timezone.now():
        return False
    return hmac.compare_digest(pin.x5t_s256, presented_x5t)
