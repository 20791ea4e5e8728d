"""Writes for partner API keys: issue and revoke. Each is one atomic effect with its audit event."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import Application

from accounts.api_keys.exceptions import (
    ApiKeyAlreadyRevoked,
    ApiKeyClientNotEligible,
    ApiKeyLifetimeInvalid,
    ApiKeyNameInvalid,
    ApiKeyNotFound,
    ApiKeyRevokeReasonRequired,
    ApiKeyScopesInvalid,
)
from accounts.api_keys.keys import key_checksum, key_generate, prefix_generate
from accounts.models import PARTNER_API_KEY_MAX_LIFETIME, PartnerApiKey
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from fintech.free_text import free_text_check

OBJECT_TYPE = "accounts.partner_api_key"
NAME_MAX_LENGTH = PartnerApiKey._meta.get_field("name").max_length
REASON_MAX_LENGTH = PartnerApiKey._meta.get_field("revoked_reason").max_length
MAX_LIFETIME_DAYS = PARTNER_API_KEY_MAX_LIFETIME.days
PREFIX_ATTEMPTS = 5  # 32**8 prefixes: a second collision in a row means something is broken


def scopes_normalise(scopes: str | Iterable[str]) -> str:
    """Space-separated, sorted, de-duplicated; refused unless a non-empty subset of OAUTH_SCOPES."""
    wanted = set(scopes.split() if isinstance(scopes, str) else scopes)
    unknown = wanted - set(settings.OAUTH_SCOPES)
    if not wanted or unknown:
        detail = f"Unknown scope(s): {' '.join(sorted(unknown))}." if unknown else "At least one scope is needed."
        raise ApiKeyScopesInvalid(detail)
    return " ".join(sorted(wanted))


def _created_by(actor: Actor) -> str:
    """Keys are issued by staff or by an operator's command; never by a customer or a client."""
    if actor.staff:
        return actor.staff
    if actor.client.startswith("system:") and not actor.user:
        return "system"
    raise ValueError(f"API keys are issued by staff or the system, not by {actor!r}")


def _unused_prefix() -> str:
    for _ in range(PREFIX_ATTEMPTS):
        prefix = prefix_generate()
        if not PartnerApiKey.objects.filter(prefix=prefix).exists():
            return prefix  # a racing issue with the same prefix still fails on the unique index
    raise RuntimeError("could not find an unused API key prefix")


def partner_api_key_issue(
    *, application: Application, name: str, scopes: str | Iterable[str], expires_in_days: int, actor: Actor
) -> tuple[PartnerApiKey, str]:
    """Issue a key to a partner server's OAuth client; return the row and the raw key.

    The raw key exists only in the return value: it is not stored, logged or
    audited, and cannot be recovered. Only confidential clients using the
    client credentials grant (partner servers) get keys: the key is checked
    against the token's client on every call, so it must be a client that
    authenticates itself.
    """
    if (
        application.client_type != Application.CLIENT_CONFIDENTIAL
        or application.authorization_grant_type != Application.GRANT_CLIENT_CREDENTIALS
    ):
        raise ApiKeyClientNotEligible()
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX_LENGTH:
        raise ApiKeyNameInvalid()
    free_text_check(name, field="name")
    scope_text = scopes_normalise(scopes)
    if isinstance(expires_in_days, bool) or not isinstance(expires_in_days, int):
        raise ApiKeyLifetimeInvalid()
    if not 1 <= expires_in_days <= MAX_LIFETIME_DAYS:
        raise ApiKeyLifetimeInvalid()
    created_by = _created_by(actor)
    prefix = _unused_prefix()
    raw_key = key_generate(prefix)
    now = timezone.now()
    with transaction.atomic(durable=True):
        api_key = PartnerApiKey.objects.create(
            application=application,
            name=name,
            prefix=prefix,
            key_checksum=key_checksum(raw_key),
            scopes=scope_text,
            created_at=now,
            created_by=created_by,
            expires_at=now + timedelta(days=expires_in_days),
        )
        audit_event_record(
            event_type="api_key.issued",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            object_type=OBJECT_TYPE,
            object_id=prefix,  # payload strings are masked, and a prefix looks like a key to the masker
            payload={
                "client_id": application.client_id,
                "name": name,
                "scopes": scope_text.split(),
                "expires_at": api_key.expires_at.isoformat(),
            },
        )
    return api_key, raw_key


def partner_api_key_revoke(*, prefix: str, reason: str, actor: Actor) -> PartnerApiKey:
    """Revoke a key for good: calls presenting it fail from the moment this commits.

    Revoking twice is refused rather than ignored, so the first reason stays on record.
    """
    reason = (reason or "").strip()
    if not reason or len(reason) > REASON_MAX_LENGTH:
        raise ApiKeyRevokeReasonRequired()
    free_text_check(reason, field="reason")
    with transaction.atomic(durable=True):
        api_key = PartnerApiKey.objects.select_for_update().select_related("application").filter(prefix=prefix).first()
        if api_key is None:
            raise ApiKeyNotFound()
        if api_key.revoked_at is not None:
            raise ApiKeyAlreadyRevoked()
        api_key.revoked_at = timezone.now()
        api_key.revoked_reason = reason
        api_key.save(update_fields=["revoked_at", "revoked_reason"])
        audit_event_record(
            event_type="api_key.revoked",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            object_type=OBJECT_TYPE,
            object_id=api_key.prefix,
            payload={"client_id": api_key.application.client_id, "reason": reason},
        )
    return api_key
