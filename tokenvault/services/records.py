"""Vault records: tokenize, shred.

The two-database rule of every vault service is in `tokenvault/services/__init__.py`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models.functions import Now
from django.utils import timezone

from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from tokenvault.crypto import Envelope, blind_index, envelope_seal, record_aad
from tokenvault.exceptions import (
    InvalidMetadata,
    InvalidTokenType,
    TokenizeConflict,
    TokenNotFound,
)
from tokenvault.keys import KeyProvider, vault_key_provider
from tokenvault.models import VaultRecord
from tokenvault.tokens import card_brand, national_id_normalize, pan_normalize, token_format_preserving, token_random

logger = logging.getLogger(__name__)
VAULT = "vault"
AUDIT = "default"
OBJECT_TYPE = "vault_token"
FIELDS = {VaultRecord.TokenType.CARD: "pan", VaultRecord.TokenType.NATIONAL_ID: "national_id"}
MAX_TOKENIZE_ATTEMPTS = 5
MAX_TOKEN_LENGTH = 40


@dataclass(frozen=True, slots=True)
class Tokenized:
    token: str
    created: bool  # False when a convergent call found the value already vaulted
    record: VaultRecord


def _normalize(token_type: str, value: str, metadata: dict[str, Any], format_preserving: bool) -> tuple[str, dict]:
    """The value in canonical form and the display fragments to store next to the token."""
    if token_type == VaultRecord.TokenType.CARD:
        pan = pan_normalize(value)
        unknown = set(metadata) - {"exp_month", "exp_year"}
        if unknown:
            raise InvalidMetadata(f"unknown metadata keys: {sorted(unknown)}")
        fragments: dict[str, Any] = {"last4": pan[-4:], "brand": card_brand(pan) or ""}
        for key, low, high in (("exp_month", 1, 12), ("exp_year", 2000, 2199)):
            item = metadata.get(key)
            if item is None:
                continue
            if type(item) is not int or not low <= item <= high:
                raise InvalidMetadata(f"{key} must be an integer from {low} to {high}")
            fragments[key] = item
        return pan, fragments
    if token_type == VaultRecord.TokenType.NATIONAL_ID:
        if metadata:
            raise InvalidMetadata("national ids take no metadata")
        if format_preserving:
            raise InvalidMetadata("format-preserving tokens exist for cards only")
        return national_id_normalize(value), {}
    raise InvalidTokenType()


def _convergent_find(token_type: str, index: str) -> VaultRecord | None:
    return (
        VaultRecord.objects.using(VAULT)
        .filter(token_type=token_type, blind_index=index, convergent=True, shredded_at__isnull=True)
        .first()
    )


def _reissue(record: VaultRecord) -> bool:
    """Mark a convergent record as handed out again now; False if it was shredded meanwhile.

    The orphan reaper shreds only records not issued since its cutoff, checked
    under the row lock (`vault_shred(not_issued_since=...)`). This UPDATE takes
    the same lock and re-checks `shredded_at` after waiting for it, so either
    the re-issue lands first and the reaper keeps the record, or the shred
    lands first and this caller gets a fresh token: never a token that is
    shredded right after it was returned.
    """
    bumped = (
        VaultRecord.objects.using(VAULT).filter(pk=record.pk, shredded_at__isnull=True).update(last_issued_at=Now())
    )
    return bumped == 1


def _token_new(*, token_type: str, pan: str, format_preserving: bool, provider: KeyProvider) -> str | None:
    """A fresh token, or None if a format-preserving candidate equals a card number already in the vault."""
    if not format_preserving:
        return token_random(token_type)
    candidate = token_format_preserving(pan)
    _, candidate_index = blind_index(token_type=token_type, normalized_value=candidate, provider=provider)
    if VaultRecord.objects.using(VAULT).filter(token_type=token_type, blind_index=candidate_index).exists():
        return None
    return candidate


def vault_tokenize(
    *,
    token_type: str,
    value: str,
    convergent: bool = False,
    format_preserving: bool = False,
    metadata: dict[str, Any] | None = None,
    actor: Actor,
    provider: KeyProvider | None = None,
) -> Tokenized:
    """Store `value` encrypted and return a token standing for it.

    Convergent mode returns the existing token for a value already vaulted
    convergently (found by blind index); the partial unique index on
    (token_type, blind_index) makes concurrent first calls agree on one token:
    the loser of the insert race gets an IntegrityError and retries the lookup.
    """
    provider = provider or vault_key_provider()
    normalized, fragments = _normalize(token_type, value, metadata or {}, format_preserving)
    index_version, index = blind_index(token_type=token_type, normalized_value=normalized, provider=provider)
    field = FIELDS[token_type]
    for _attempt in range(MAX_TOKENIZE_ATTEMPTS):
        if convergent:
            existing = _convergent_find(token_type, index)
            if existing is not None:
                if _reissue(existing):
                    return Tokenized(token=existing.token, created=False, record=existing)
                continue  # shredded since the lookup (the orphan reaper): vault the value afresh
        token = _token_new(
            token_type=token_type, pan=normalized, format_preserving=format_preserving, provider=provider
        )
        if token is None:
            continue
        blob = envelope_seal(
            plaintext=normalized.encode(),
            aad=record_aad(token_type=token_type, token=token, field=field),
            provider=provider,
        )
        envelope = Envelope.from_bytes(blob)
        try:
            with transaction.atomic(using=VAULT), transaction.atomic(using=AUDIT):
                record = VaultRecord.objects.using(VAULT).create(
                    token=token,
                    token_type=token_type,
                    ciphertext=blob,
                    kek_id=envelope.kek_id,
                    kek_version=envelope.kek_version,
                    blind_index=index,
                    index_key_version=index_version,
                    convergent=convergent,
                    format_preserving=format_preserving,
                    **fragments,
                )
                audit_event_record(
                    event_type="vault.tokenized",
                    outcome=AuditEvent.Outcome.SUCCESS,
                    actor=actor,
                    object_type=OBJECT_TYPE,
                    object_id=token,
                    payload={"token_type": token_type, "convergent": convergent, "kek_version": envelope.kek_version},
                )
        except IntegrityError:
            # Another writer won the convergent race, or (vanishingly rarely) the token exists.
            logger.info("vault_tokenize: insert conflict, retrying (convergent=%s)", convergent)
            continue
        return Tokenized(token=token, created=True, record=record)
    raise TokenizeConflict()


def vault_shred(*, token: str, actor: Actor, not_issued_since: datetime | None = None) -> VaultRecord:
    """Crypto-shred the value behind `token`: its envelope, blind index and fragments are erased.

    The token row stays as a tombstone (so the token is never reissued and a
    later detokenize says "shredded", not "unknown"). Idempotent. Old row
    versions survive in PostgreSQL until VACUUM and in backups; those copies
    become unreadable once the KEK versions they were wrapped under are
    retired, which is why rotation + rewrap + retire belongs to the shredding
    policy.

    With `not_issued_since` (the orphan reaper's cutoff) the record is shredded
    only if it was last issued before that instant, read under the row lock:
    a convergent tokenize that re-issued it after the reaper listed it keeps
    it alive. The record comes back unshredded then.
    """
    return _shred(token=token, actor=actor, not_issued_since=not_issued_since)[0]


def vault_shred_not_issued_since(*, token: str, actor: Actor, not_issued_since: datetime) -> bool:
    """`vault_shred` with the reaper's condition; True only if this call shredded the record.

    False when the record was re-issued since the cutoff or was already
    shredded (a card delete, an earlier attempt of the same reap).
    """
    return _shred(token=token, actor=actor, not_issued_since=not_issued_since)[1]


def _shred(*, token: str, actor: Actor, not_issued_since: datetime | None) -> tuple[VaultRecord, bool]:
    with transaction.atomic(using=VAULT):
        record = VaultRecord.objects.using(VAULT).select_for_update().filter(token=token).first()
        if record is None:
            raise TokenNotFound()
        if record.shredded_at is not None:
            return record, False
        if not_issued_since is not None and record.last_issued_at >= not_issued_since:
            return record, False
        payload = {"token_type": record.token_type}
        if not_issued_since is not None:
            payload["not_issued_since"] = not_issued_since.isoformat()
        with transaction.atomic(using=AUDIT):
            audit_event_record(
                event_type="vault.shredded",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=actor,
                object_type=OBJECT_TYPE,
                object_id=token,
                payload=payload,
            )
            record.ciphertext = b""
            record.kek_id = ""
            record.kek_version = None
            record.blind_index = None
            record.index_key_version = None
            record.last4 = ""
            record.brand = ""
            record.exp_month = None
            record.exp_year = None
            record.shredded_at = timezone.now()
            record.save(using=VAULT)
    return record, True
