"""Detokenizing a batch of tokens for a caller allowed some token types (the vault's internal API).

The API role decides which token types its principal may read (from the
OAuth client's policy) and says so in every call; the vault cannot see the
principal's grants, but it is the only one that knows each token's type, so
the per-type decision is made here, against the stored type, and every
refusal is audited here.

A batch is all or nothing: an unknown token (404), a token of a type the
caller may not read (403, each one audited as `vault.detokenize` / denied) or
a shredded one (410) refuses the whole call before anything is decrypted, so
a caller never receives part of what it asked for and a refusal reveals no
value. Granted reads are recorded as one `pii.read` row per token, all in one
transaction that commits before any value is returned.
"""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest

from audit.models import AuditEvent
from audit.services.events import PII_PURPOSES, Actor, audit_event_record, pii_read_record
from tokenvault.crypto import Envelope, envelope_open, record_aad
from tokenvault.exceptions import (
    CiphertextTampered,
    DetokenizeForbidden,
    InvalidPurpose,
    InvalidTokenType,
    TokenNotFound,
    TokenShredded,
)
from tokenvault.keys import KeyProvider, vault_key_provider
from tokenvault.models import VaultRecord
from tokenvault.services.records import (
    AUDIT,
    FIELDS,
    MAX_TOKEN_LENGTH,
    OBJECT_TYPE,
    VAULT,
)

# A hard ceiling whatever the settings say: one call decrypts and audits at most this many values.
MAX_DETOKENIZE_BATCH = 1000


def _tokens_clean(tokens: list[str]) -> list[str]:
    """The distinct tokens in the order given; malformed ones are simply unknown."""
    if not isinstance(tokens, list) or not 1 <= len(tokens) <= MAX_DETOKENIZE_BATCH:
        raise TokenNotFound(f"between 1 and {MAX_DETOKENIZE_BATCH} tokens are needed")
    distinct = list(dict.fromkeys(tokens))
    bad = [t for t in distinct if not isinstance(t, str) or not t or len(t) > MAX_TOKEN_LENGTH]
    if bad:
        raise TokenNotFound(f"{len(bad)} of the tokens are not tokens")
    return distinct


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
    permitted_token_types: frozenset[str],
    reason: str = "",
    request: HttpRequest | None = None,
    provider: KeyProvider | None = None,
) -> str:
    """One value: `vault_detokenize_many` for a single token, so every check and audit row has one code path."""
    return vault_detokenize_many(
        tokens=[token],
        actor=actor,
        purpose=purpose,
        permitted_token_types=permitted_token_types,
        reason=reason,
        request=request,
        provider=provider,
    )[token]


def vault_detokenize_many(
    *,
    tokens: list[str],
    actor: Actor,
    purpose: str,
    permitted_token_types: frozenset[str],
    reason: str = "",
    request: HttpRequest | None = None,
    provider: KeyProvider | None = None,
) -> dict[str, str]:
    """The values behind `tokens` ({token: value}), if the caller may read every one of their types.

    `permitted_token_types` is what the calling role verified its principal
    may read; types outside `VaultRecord.TokenType` are refused as a
    programming error rather than ignored.
    """
    if purpose not in PII_PURPOSES:
        raise InvalidPurpose(f"purpose must be one of {sorted(PII_PURPOSES)}")
    if not set(permitted_token_types) <= set(VaultRecord.TokenType.values):
        raise InvalidTokenType("permitted token types must be among " + ", ".join(VaultRecord.TokenType.values))
    wanted = _tokens_clean(tokens)
    records = {r.token: r for r in VaultRecord.objects.using(VAULT).filter(token__in=wanted)}
    unknown = [t for t in wanted if t not in records]
    if unknown:
        raise TokenNotFound(f"{len(unknown)} of the tokens are unknown", extra={"tokens": unknown})
    denied = [records[t] for t in wanted if records[t].token_type not in permitted_token_types]
    if denied:
        with transaction.atomic(using=AUDIT):
            for record in denied:
                audit_event_record(
                    event_type="vault.detokenize",
                    outcome=AuditEvent.Outcome.DENIED,
                    actor=actor,
                    object_type=OBJECT_TYPE,
                    object_id=record.token,
                    purpose=purpose,
                    payload={"token_type": record.token_type},
                    request=request,
                )
        types = sorted({r.token_type for r in denied})
        raise DetokenizeForbidden(
            f"not allowed to read {', '.join(types)} values in clear",
            extra={"tokens": [r.token for r in denied], "token_types": types},
        )
    shredded = [t for t in wanted if records[t].shredded_at is not None]
    if shredded:
        raise TokenShredded(f"{len(shredded)} of the values were destroyed", extra={"tokens": shredded})
    provider = provider or vault_key_provider()
    values: dict[str, str] = {}
    for token in wanted:
        record = records[token]
        try:
            _envelope_matches_row(record)
            plaintext = envelope_open(
                blob=bytes(record.ciphertext),
                aad=record_aad(token_type=record.token_type, token=record.token, field=FIELDS[record.token_type]),
                provider=provider,
            )
        except CiphertextTampered:
            with transaction.atomic(using=AUDIT):  # this row must survive the error raised right after it
                audit_event_record(
                    event_type="vault.integrity_failure",
                    outcome=AuditEvent.Outcome.FAILURE,
                    actor=actor,
                    object_type=OBJECT_TYPE,
                    object_id=token,
                    payload={"record_id": record.id, "kek_version": record.kek_version},
                    request=request,
                )
            raise
        values[token] = plaintext.decode()
    with transaction.atomic(using=AUDIT):
        for token in wanted:
            pii_read_record(
                actor=actor,
                object_type=OBJECT_TYPE,
                object_id=token,
                fields=[FIELDS[records[token].token_type]],
                purpose=purpose,
                request=request,
                reason=reason,
            )
    return values
