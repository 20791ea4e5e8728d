"""Four-eyes kind `oauth.client_certificate`: pin (or remove) the certificate a partner client authenticates with.

Pinning a certificate to a client lets whoever holds its key obtain that
client's tokens (RFC 8705 `self_signed_tls_client_auth`), so one security
admin alone must not be able to do it (issue 14, #8). Applying writes the pin
MAC'd with this request's id (`accounts.oauth.client_certificates`) and has the
platform watch the certificate's expiry (a partner certificate, alerted at
30/14/7/1 days: the platform cannot renew it).
"""

from __future__ import annotations

import secrets
from typing import Any

from cryptography.hazmat.primitives import hashes
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from oauth2_provider.models import AccessToken, Application, RefreshToken

from accounts.approvals.exceptions import ApprovalNothingToChange
from accounts.approvals.models import ApprovalRequest
from accounts.approvals.registry import ChangeKind, change_kind_register
from accounts.approvals.services import approval_request_create
from accounts.models import OAuthClientCertificate, User
from accounts.oauth.client_certificates import (
    ClientCertificateRefused,
    client_certificate_parse,
    pin_mac,
)
from fintech.middleware.client_certificate import x5t_s256

KIND = "oauth.client_certificate"


def _target_state(client_id: str) -> dict[str, Any]:
    pin = (
        OAuthClientCertificate.objects.select_for_update()
        .filter(application__client_id=client_id)
        .values("x5t_s256", "approval_public_id")
        .first()
    )
    return {} if pin is None else {"x5t_s256": pin["x5t_s256"], "approval": str(pin["approval_public_id"])}


def _apply(approval: ApprovalRequest, approver: User) -> dict[str, Any]:
    from pki.models import Certificate
    from pki.services import certificate_record, certificate_unwatch

    application = Application.objects.select_for_update().get(client_id=approval.target_id)
    # Every token the client holds ends here, bound or not: a partner cut off, moved to a new key, or moved from
    # its secret to a certificate gets new tokens the new way, on its next request.
    AccessToken.objects.filter(application=application).delete()
    RefreshToken.objects.filter(application=application).delete()
    previous = OAuthClientCertificate.objects.filter(application=application).first()
    if previous is not None:
        previous.delete()
        certificate_unwatch(fingerprint_sha256=_hex_of(previous.certificate_pem), operator=approver)
    pem = approval.change.get("certificate_pem", "")
    if not pem:
        # Cut off means cut off: the secret the pin had made unusable must not come back. A new secret is set
        # that nobody is told; re-admitting the partner is a secret rotation (or a new pin), on purpose.
        application.client_secret, application.hash_client_secret = secrets.token_urlsafe(40), True
        application.save(update_fields=["client_secret", "hash_client_secret"])
        return {"client_id": approval.target_id, "pinned": None, "secret_reset": True}  # nosec B105 - a flag
    certificate = client_certificate_parse(pem)  # still valid now, not only when asked
    x5t = x5t_s256(certificate)
    if x5t != approval.change["x5t_s256"]:
        raise ClientCertificateRefused("the certificate does not match the approved thumbprint")
    if OAuthClientCertificate.objects.filter(x5t_s256=x5t).exclude(application=application).exists():
        raise ClientCertificateRefused("this certificate is pinned to another client")
    try:
        with transaction.atomic():  # a racing approval pinning it elsewhere: the unique constraint decides
            _pin_create(application, approval, certificate, pem, x5t)
    except IntegrityError:
        raise ClientCertificateRefused("this certificate was just pinned to another client") from None
    certificate_record(
        pem=pem, service=f"partner-{application.client_id}"[:100], kind=Certificate.Kind.PARTNER, operator=approver
    )
    return {"client_id": approval.target_id, "pinned": x5t}


def _pin_create(application, approval, certificate, pem: str, x5t: str) -> None:
    OAuthClientCertificate.objects.create(
        application=application,
        x5t_s256=x5t,
        certificate_pem=pem,
        subject=certificate.subject.rfc4514_string()[:500],
        not_after=certificate.not_valid_after_utc,
        approval_public_id=approval.public_id,
        mac=pin_mac(
            application=application, x5t=x5t, approval_public_id=approval.public_id,
            not_after=certificate.not_valid_after_utc,
        ),
    )  # fmt: skip


def _hex_of(pem: str) -> str:
    from cryptography import x509

    from pki.ca import fingerprint_sha256

    return fingerprint_sha256(x509.load_pem_x509_certificate(pem.encode()))


def client_certificate_change_request(
    *, application: Application, certificate_pem: str, requested_by: User, reason: str,
    request: HttpRequest | None = None,
) -> ApprovalRequest:  # fmt: skip
    """Ask to pin `certificate_pem` to a confidential client ("" asks to remove its pin); a second
    security admin applies it."""
    if application.client_type != Application.CLIENT_CONFIDENTIAL:
        raise ClientCertificateRefused("only a confidential (partner) client authenticates with a certificate")
    change: dict[str, Any] = {"certificate_pem": "", "x5t_s256": "", "client_name": application.name}
    current_pin = OAuthClientCertificate.objects.filter(application=application).first()
    summary = (
        f"remove the certificate pinned to OAuth client {application.name!r} ({application.client_id})"
        + (f", x5t#S256 {current_pin.x5t_s256} ({current_pin.subject[:120]})" if current_pin else "")
        + ": its bound tokens end and its secret stays unusable (re-admit it with a new secret or a new pin)"
    )
    if certificate_pem:
        certificate = client_certificate_parse(certificate_pem)
        change = {
            "certificate_pem": certificate_pem.strip() + "\n",
            "x5t_s256": x5t_s256(certificate),
            "sha256_hex": certificate.fingerprint(hashes.SHA256()).hex(),  # as openssl x509 -fingerprint shows it
            "subject": certificate.subject.rfc4514_string()[:500],
            "not_before": certificate.not_valid_before_utc.isoformat(),
            "not_after": certificate.not_valid_after_utc.isoformat(),
            "client_name": application.name,
        }
        summary = (
            f"pin certificate SHA-256 {change['sha256_hex']} ({change['subject'][:60]}, valid"
            f" {certificate.not_valid_before_utc.date().isoformat()} to"
            f" {certificate.not_valid_after_utc.date().isoformat()}) to OAuth client {application.name!r}"
            f" ({application.client_id}); its secret stops working"
        )
        taken = OAuthClientCertificate.objects.filter(x5t_s256=change["x5t_s256"]).exclude(application=application)
        if taken.exists():
            raise ClientCertificateRefused("this certificate is pinned to another client")
    current = OAuthClientCertificate.objects.filter(application=application).values_list("x5t_s256", flat=True)
    if (current.first() or "") == change["x5t_s256"]:
        raise ApprovalNothingToChange()
    return approval_request_create(
        kind=KIND,
        target_type="oauth2_provider.application",
        target_id=application.client_id,
        change=change,
        summary=summary,
        requested_by=requested_by,
        reason=reason,
        request=request,
    )


def register() -> None:
    change_kind_register(
        ChangeKind(
            KIND,
            "accounts.approve_client_change",
            "accounts.change_oauthclientpolicy",
            _target_state,
            _apply,
            "Partner client certificate",
        )
    )
