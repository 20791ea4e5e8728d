"""Finding DOT tokens by what a client presents: they are stored as SHA-256 checksums (RFC 9700)."""

from __future__ import annotations

import hashlib
import hmac

from oauth2_provider.models import AccessToken

from accounts.oauth.token_macs import access_token_mac_verified
from fintech.middleware.client_certificate import request_x5t_s256

MAX_TOKEN_LENGTH = 512


def token_checksum(raw: str) -> str:
    """The checksum DOT stores in `token_checksum` for a raw token."""
    return hashlib.sha256(raw.encode()).hexdigest()


def access_token_find(raw: str, *, lookup: str, request=None) -> AccessToken | None:
    """The access token (with its user and client) for a presented value, or None; one indexed query.

    None too when the row's MAC does not verify (issue 12): a row written with
    the database login alone is no token. `lookup` and `request` go with the
    audit event that refusal writes.
    """
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        return None
    token = (
        AccessToken.objects.select_related("user", "application", "fintech_mac")
        .filter(token_checksum=token_checksum(raw))
        .first()
    )
    if token is None:
        return None
    stored = getattr(token, "fintech_mac", None)  # no MAC row: None (the reverse accessor's miss is an AttributeError)
    token.fintech_x5t_s256 = stored.x5t_s256 if stored is not None else ""
    verified = access_token_mac_verified(
        token, stored and stored.mac, lookup=lookup, request=request, x5t_s256=token.fintech_x5t_s256
    )
    return token if verified else None


def token_certificate_matches(token: AccessToken, request) -> bool:
    """RFC 8705 §3: a certificate-bound token is good only over a connection presenting that certificate.

    `token` comes from a lookup here or in `accounts.authentication` (which set `fintech_x5t_s256` from the
    row its MAC verified); an unbound token matches any connection.
    """
    bound = getattr(token, "fintech_x5t_s256", "")
    return not bound or hmac.compare_digest(bound, request_x5t_s256(request))


_MISMATCH_RECORDED = "fintech.certificate_mismatch_recorded"  # not an HTTP_ key: no client can send it


def certificate_mismatch_record(token: AccessToken, request) -> None:
    """A bound token presented without its certificate: stolen, or a partner misconfigured. On the record, once
    per request: the limiter's lookup records it on the Django request, and DOT's own check (userinfo), which
    sees a copy of its META as an oauthlib request, finds the mark and does not record it again."""
    from django.http import HttpRequest

    from audit.models import AuditEvent
    from audit.services.events import Actor, audit_event_record

    if isinstance(request, HttpRequest):
        if request.META.get(_MISMATCH_RECORDED):
            return
        request.META[_MISMATCH_RECORDED] = True
    elif (request.__dict__.get("headers") or {}).get(_MISMATCH_RECORDED):
        return
    audit_event_record(
        event_type="token.certificate_mismatch",
        outcome=AuditEvent.Outcome.DENIED,
        actor=Actor(client=token.application.client_id if token.application is not None else ""),
        object_type="oauth.access_token",
        object_id=str(token.pk),
        payload={"bound_x5t_s256": token.fintech_x5t_s256, "presented_x5t_s256": request_x5t_s256(request) or None},
        request=request if isinstance(request, HttpRequest) else None,
    )
