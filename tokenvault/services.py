"""Writes to the token vault: tokenize, detokenize, shred, rewrap, rotate and retire keys.

Two databases are involved: vault rows live in `vault`, audit rows in
`default`. PostgreSQL cannot commit both atomically, so every service nests
`atomic(using="default")` inside `atomic(using="vault")`: the audit row
commits first and the vault change right after. A crash between the two
leaves an audit row for a change that did not happen (the caller retries;
every service here is safe to retry), never a change without its audit row.
Detokenize commits its `pii.read` row before the value is returned, so no
value leaves the vault unrecorded.

Services open `transaction.atomic()`, not a durable one, like the ledger's:
a later HTTP layer may wrap them in its own transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.models import AuditEvent
from audit.services.events import PII_PURPOSES, Actor, audit_event_record, pii_read_record
from tokenvault.crypto import Envelope, blind_index, envelope_open, envelope_rewrap, envelope_seal, record_aad
from tokenvault.exceptions import (
    CiphertextTampered,
    DetokenizeForbidden,
    InvalidMetadata,
    InvalidPurpose,
    InvalidTokenType,
    KekInUse,
    KekIsCurrent,
    TokenizeConflict,
    TokenNotFound,
    TokenShredded,
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
MAX_REWRAP_BATCH = 10_000
MAX_TOKEN_LENGTH = 40


@dataclass(frozen=True, slots=True)
class Tokenized:
    token: str
    created: bool  # False when a convergent call found the value already vaulted
    record: VaultRecord


@dataclass(frozen=True, slots=True)
class RewrapProgress:
    last_id: int | None  # resume after this id; None when nothing was left to rewrap
    rewrapped: int


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
                return Tokenized(token=existing.token, created=False, record=existing)
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


def _audit_alone(**kwargs: Any) -> None:
    """An audit row that must survive the error raised right after it."""
    with transaction.atomic(using=AUDIT):
        audit_event_record(object_type=OBJECT_TYPE, **kwargs)


def _envelope_matches_row(record: VaultRecord) -> None:
    """The KEK named inside the envelope must be the one the row says; a mismatch is tampering."""
    envelope = Envelope.from_bytes(bytes(record.ciphertext))
    if (envelope.kek_id, envelope.kek_version) != (record.kek_id, record.kek_version):
        raise CiphertextTampered()


def vault_detokenize(
    *,
    token: str,
    actor: Actor,
    purpose: str,
    principal_may_detokenize: bool,
    reason: str = "",
    request: HttpRequest | None = None,
    provider: KeyProvider | None = None,
) -> str:
    """The value behind `token`, in clear, after a `pii.read` audit row with `purpose` has committed.

    `principal_may_detokenize` is the caller's permission decision (the API
    layer's job); a refusal is audited as `vault.detokenize` / denied.
    """
    if purpose not in PII_PURPOSES:
        raise InvalidPurpose(f"purpose must be one of {sorted(PII_PURPOSES)}")
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenNotFound()
    if not principal_may_detokenize:
        _audit_alone(
            event_type="vault.detokenize",
            outcome=AuditEvent.Outcome.DENIED,
            actor=actor,
            object_id=token,
            purpose=purpose,
            request=request,
        )
        raise DetokenizeForbidden()
    provider = provider or vault_key_provider()
    record = VaultRecord.objects.using(VAULT).filter(token=token).first()
    if record is None:
        raise TokenNotFound()
    if record.shredded_at is not None:
        raise TokenShredded()
    field = FIELDS[record.token_type]
    try:
        _envelope_matches_row(record)
        plaintext = envelope_open(
            blob=bytes(record.ciphertext),
            aad=record_aad(token_type=record.token_type, token=record.token, field=field),
            provider=provider,
        )
    except CiphertextTampered:
        _audit_alone(
            event_type="vault.integrity_failure",
            outcome=AuditEvent.Outcome.FAILURE,
            actor=actor,
            object_id=token,
            payload={"record_id": record.id, "kek_version": record.kek_version},
            request=request,
        )
        raise
    with transaction.atomic(using=AUDIT):
        pii_read_record(
            actor=actor,
            object_type=OBJECT_TYPE,
            object_id=token,
            fields=[field],
            purpose=purpose,
            request=request,
            reason=reason,
        )
    return plaintext.decode()


def vault_shred(*, token: str, actor: Actor) -> VaultRecord:
    """Crypto-shred the value behind `token`: its envelope, blind index and fragments are erased.

    The token row stays as a tombstone (so the token is never reissued and a
    later detokenize says "shredded", not "unknown"). Idempotent. Old row
    versions survive in PostgreSQL until VACUUM and in backups; those copies
    become unreadable once the KEK versions they were wrapped under are
    retired, which is why rotation + rewrap + retire belongs to the shredding
    policy.
    """
    with transaction.atomic(using=VAULT):
        record = VaultRecord.objects.using(VAULT).select_for_update().filter(token=token).first()
        if record is None:
            raise TokenNotFound()
        if record.shredded_at is not None:
            return record
        with transaction.atomic(using=AUDIT):
            audit_event_record(
                event_type="vault.shredded",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=actor,
                object_type=OBJECT_TYPE,
                object_id=token,
                payload={"token_type": record.token_type},
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
    return record


def vault_rewrap(
    *, batch_size: int, after_id: int | None = None, actor: Actor | None = None, provider: KeyProvider | None = None
) -> RewrapProgress:
    """Rewrap, under the current KEK, the data keys of up to `batch_size` records with id > `after_id`.

    Only the wrapped key changes; values are never decrypted. Rows are
    locked in id order for the batch. Resumable: pass the returned `last_id`
    as `after_id` until it comes back None.
    """
    if not 1 <= batch_size <= MAX_REWRAP_BATCH:
        raise ValueError(f"batch_size must be between 1 and {MAX_REWRAP_BATCH}")
    provider = provider or vault_key_provider()
    actor = actor or Actor.system("vault_rewrap")
    kek_id, kek_version = provider.current_kek()
    with transaction.atomic(using=VAULT):
        records = list(
            VaultRecord.objects.using(VAULT)
            .select_for_update()
            .filter(shredded_at__isnull=True, id__gt=after_id or 0)
            .exclude(kek_id=kek_id, kek_version=kek_version)
            .order_by("id")[:batch_size]
        )
        if not records:
            return RewrapProgress(last_id=None, rewrapped=0)
        for record in records:
            aad = record_aad(token_type=record.token_type, token=record.token, field=FIELDS[record.token_type])
            record.ciphertext = envelope_rewrap(blob=bytes(record.ciphertext), aad=aad, provider=provider)
            record.kek_id, record.kek_version = kek_id, kek_version
        with transaction.atomic(using=AUDIT):
            audit_event_record(
                event_type="vault.rewrapped",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=actor,
                object_type="vault_kek",
                object_id=f"{kek_id}:{kek_version}",
                payload={"count": len(records), "first_id": records[0].id, "last_id": records[-1].id},
            )
            VaultRecord.objects.using(VAULT).bulk_update(records, ["ciphertext", "kek_id", "kek_version"])
    return RewrapProgress(last_id=records[-1].id, rewrapped=len(records))


def vault_rewrap_pending_count(*, provider: KeyProvider | None = None) -> int:
    """How many live records are not yet under the current KEK."""
    kek_id, kek_version = (provider or vault_key_provider()).current_kek()
    return (
        VaultRecord.objects.using(VAULT)
        .filter(shredded_at__isnull=True)
        .exclude(kek_id=kek_id, kek_version=kek_version)
        .count()
    )


def kek_rotate(*, actor: Actor, provider: KeyProvider | None = None) -> int:
    """Create a new KEK version and make it current; existing records keep working until rewrapped."""
    provider = provider or vault_key_provider()
    with transaction.atomic(using=AUDIT):
        kek_id, previous = provider.current_kek()
        version = provider.rotate()
        audit_event_record(
            event_type="vault.kek_rotated",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            object_type="vault_kek",
            object_id=f"{kek_id}:{version}",
            payload={"previous_version": previous, "version": version},
        )
    return version


def kek_retire(*, version: int, actor: Actor, provider: KeyProvider | None = None) -> None:
    """Destroy a KEK version, refusing while any live record is still wrapped under it.

    The table is locked in SHARE mode for the check, so no insert or rewrap can
    slip a record under the version between the count and the destruction.
    """
    provider = provider or vault_key_provider()
    kek_id, current = provider.current_kek()
    if version == current:
        raise KekIsCurrent()
    with transaction.atomic(using=VAULT):
        with connections[VAULT].cursor() as cursor:
            cursor.execute(f"LOCK TABLE {VaultRecord._meta.db_table} IN SHARE MODE")
        in_use = VaultRecord.objects.using(VAULT).filter(kek_id=kek_id, kek_version=version).count()
        if in_use:
            raise KekInUse(f"{in_use} records still use version {version}; run vault_rewrap first")
        with transaction.atomic(using=AUDIT):
            audit_event_record(
                event_type="vault.kek_retired",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=actor,
                object_type="vault_kek",
                object_id=f"{kek_id}:{version}",
            )
            provider.retire(version)
