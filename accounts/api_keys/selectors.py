"""Reads for partner API keys: recognising a presented key, and noting when it was last used."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from accounts.api_keys.keys import key_checksum, key_prefix
from accounts.models import PartnerApiKey

# `last_used_at` is for people ("is this key still in use?"), not for billing:
# minute resolution keeps a busy key from turning every call into a row write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class ApiKeyCheck:
    """The outcome of looking a presented key up. `reason` is "" exactly when `api_key` is usable."""

    api_key: PartnerApiKey | None
    prefix: str  # "" unless the presented value was a well-formed key
    reason: str  # "", "unknown", "revoked" or "expired"


def partner_api_key_check(raw_key: str) -> ApiKeyCheck:
    """Find the key by the checksum of the whole presented value; say why it cannot be used, if so.

    Malformed values are refused before any query. The prefix is reported only
    for well-formed values, so a caller cannot write arbitrary text into the
    audit trail through the header.
    """
    prefix = key_prefix(raw_key)
    if prefix is None:
        return ApiKeyCheck(api_key=None, prefix="", reason="unknown")
    checksum = key_checksum(raw_key)
    api_key = PartnerApiKey.objects.filter(key_checksum=checksum).first()
    # The index finds the row; the constant-time comparison is what accepts it.
    if api_key is None or not hmac.compare_digest(api_key.key_checksum, checksum) or api_key.prefix != prefix:
        return ApiKeyCheck(api_key=None, prefix=prefix, reason="unknown")
    if api_key.revoked_at is not None:
        return ApiKeyCheck(api_key=None, prefix=prefix, reason="revoked")
    if api_key.expires_at <= timezone.now():
        return ApiKeyCheck(api_key=None, prefix=prefix, reason="expired")
    return ApiKeyCheck(api_key=api_key, prefix=prefix, reason="")


def partner_api_key_authenticate(raw_key: str) -> PartnerApiKey | None:
    """The usable key this raw value is, or None if it is unknown, expired or revoked."""
    return partner_api_key_check(raw_key).api_key


def partner_api_key_last_used_touch(*, api_key: PartnerApiKey) -> bool:
    """Record a use at most once per LAST_USED_RESOLUTION per key; True if this call wrote.

    Bookkeeping, not a domain change (no audit event, no durable transaction),
    so it lives with the reads it accompanies. Two guards keep concurrent calls
    from piling up writes: no statement at all while the value read with the
    key is recent, and otherwise one conditional UPDATE. PostgreSQL re-checks
    the condition on the newest row version after waiting for a concurrent
    writer, so of N racing requests exactly one updates and N-1 update nothing.
    """
    now = timezone.now()
    stale_before = now - LAST_USED_RESOLUTION
    if api_key.last_used_at is not None and api_key.last_used_at > stale_before:
        return False
    updated = (
        PartnerApiKey.objects.filter(pk=api_key.pk)
        .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale_before))
        .update(last_used_at=now)
    )
    if updated:
        api_key.last_used_at = now
    return bool(updated)
