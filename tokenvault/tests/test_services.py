"""Vault services against the real `vault` and `default` databases."""

from __future__ import annotations

import re

import pytest
from django.db import connections

from audit.models import AuditEvent
from tokenvault.crypto import Envelope
from tokenvault.exceptions import (
    CiphertextTampered,
    DetokenizeForbidden,
    InvalidCardNumber,
    InvalidMetadata,
    InvalidPurpose,
    KekInUse,
    KekIsCurrent,
    KeyUnavailable,
    TokenNotFound,
    TokenShredded,
)
from tokenvault.models import VaultRecord
from tokenvault.services import (
    kek_retire,
    kek_rotate,
    vault_detokenize,
    vault_rewrap,
    vault_shred,
    vault_tokenize,
)
from tokenvault.tests.conftest import AMEX, MASTERCARD, MASTERCARD_2_SERIES, VAULT_DATABASES, VISA, past_retire_grace
from tokenvault.tokens import luhn_valid

ALL_TOKEN_TYPES = frozenset(VaultRecord.TokenType.values)

pytestmark = pytest.mark.django_db(databases=VAULT_DATABASES)


def detokenize(token, actor, purpose="customer_request"):
    return vault_detokenize(token=token, actor=actor, purpose=purpose, permitted_token_types=ALL_TOKEN_TYPES)


def test_card_round_trip_keeps_only_display_fragments(provider, actor):
    result = vault_tokenize(
        token_type="card", value="4111 1111 1111 1111", metadata={"exp_month": 12, "exp_year": 2030}, actor=actor
    )

    record = VaultRecord.objects.using("vault").get(token=result.token)
    assert result.created is True
    assert re.fullmatch(r"tok_card_[a-z2-7]{26}", result.token)
    assert (record.last4, record.brand, record.exp_month, record.exp_year) == ("1111", "visa", 12, 2030)
    assert (record.kek_id, record.kek_version, record.shredded_at) == ("local-kek", 1, None)
    assert len(record.blind_index) == 64
    assert detokenize(result.token, actor) == VISA


def test_national_id_round_trip_has_no_fragments(provider, actor):
    result = vault_tokenize(token_type="national_id", value="ab 123-456 c", actor=actor)

    record = VaultRecord.objects.using("vault").get(token=result.token)
    assert result.token.startswith("tok_nid_")
    assert (record.last4, record.brand, record.exp_month) == ("", "", None)
    assert detokenize(result.token, actor) == "AB123456C"


def test_invalid_input_writes_nothing(provider, actor):
    audit_before = AuditEvent.objects.count()
    with pytest.raises(InvalidCardNumber):
        vault_tokenize(token_type="card", value="4111111111111112", actor=actor)
    with pytest.raises(InvalidMetadata):
        vault_tokenize(token_type="card", value=VISA, metadata={"cvv": "123"}, actor=actor)
    with pytest.raises(InvalidMetadata):
        vault_tokenize(token_type="card", value=VISA, metadata={"exp_month": 13}, actor=actor)
    assert VaultRecord.objects.using("vault").count() == 0
    assert AuditEvent.objects.count() == audit_before


def test_detokenize_writes_one_pii_read_with_the_purpose(provider, actor):
    token = vault_tokenize(token_type="card", value=VISA, actor=actor).token

    value = vault_detokenize(
        token=token, actor=actor, purpose="fraud_investigation", permitted_token_types=ALL_TOKEN_TYPES, reason="case 7"
    )

    assert value == VISA
    reads = list(AuditEvent.objects.filter(event_type="pii.read"))
    assert len(reads) == 1
    assert (reads[0].object_type, reads[0].object_id, reads[0].purpose) == ("vault_token", token, "fraud_investigation")
    assert (reads[0].actor_staff, reads[0].outcome) == ("staff_test_1", "success")
    assert reads[0].payload == {"fields": ["pan"], "reason": "case 7"}


def test_detokenize_refused_without_permission_records_denial_and_no_read(provider, actor):
    token = vault_tokenize(token_type="card", value=VISA, actor=actor).token

    with pytest.raises(DetokenizeForbidden):
        vault_detokenize(token=token, actor=actor, purpose="customer_request", permitted_token_types=frozenset())

    assert AuditEvent.objects.filter(event_type="pii.read").count() == 0
    denied = AuditEvent.objects.get(event_type="vault.detokenize")
    assert (denied.outcome, denied.object_id) == ("denied", token)


def test_detokenize_needs_a_known_purpose_and_token(provider, actor):
    token = vault_tokenize(token_type="card", value=VISA, actor=actor).token
    with pytest.raises(InvalidPurpose):
        vault_detokenize(token=token, actor=actor, purpose="curiosity", permitted_token_types=ALL_TOKEN_TYPES)
    with pytest.raises(TokenNotFound):
        detokenize("tok_card_" + "a" * 26, actor)
    assert AuditEvent.objects.filter(event_type="pii.read").count() == 0


def test_ciphertext_moved_to_another_record_fails_authentication(provider, actor):
    first = vault_tokenize(token_type="card", value=VISA, actor=actor).token
    second = vault_tokenize(token_type="card", value=MASTERCARD, actor=actor).token
    stolen = VaultRecord.objects.using("vault").get(token=first).ciphertext
    VaultRecord.objects.using("vault").filter(token=second).update(ciphertext=stolen)

    with pytest.raises(CiphertextTampered):
        detokenize(second, actor)

    assert AuditEvent.objects.filter(event_type="pii.read").count() == 0
    failure = AuditEvent.objects.get(event_type="vault.integrity_failure")
    assert (failure.outcome, failure.object_id) == ("failure", second)
    assert detokenize(first, actor) == VISA


def test_tampered_ciphertext_in_the_database_is_detected(provider, actor):
    token = vault_tokenize(token_type="card", value=VISA, actor=actor).token
    blob = bytearray(VaultRecord.objects.using("vault").get(token=token).ciphertext)
    blob[-1] ^= 0x80
    VaultRecord.objects.using("vault").filter(token=token).update(ciphertext=bytes(blob))

    with pytest.raises(CiphertextTampered):
        detokenize(token, actor)


def test_envelope_naming_another_kek_version_than_the_row_is_tampering(provider, actor):
    token = vault_tokenize(token_type="card", value=VISA, actor=actor).token
    kek_rotate(actor=actor)
    VaultRecord.objects.using("vault").filter(token=token).update(kek_version=2)

    with pytest.raises(CiphertextTampered):
        detokenize(token, actor)


def test_rotate_rewrap_retire_keeps_every_value_readable(provider, actor):
    values = [VISA, MASTERCARD, MASTERCARD_2_SERIES, AMEX]
    tokens = [vault_tokenize(token_type="card", value=value, actor=actor).token for value in values]
    nid = vault_tokenize(token_type="national_id", value="XY998877", actor=actor).token
    shredded = vault_tokenize(token_type="card", value="6011111111111117", actor=actor).token
    vault_shred(token=shredded, actor=actor)

    assert kek_rotate(actor=actor) == 2
    past_retire_grace(provider, 2)
    with pytest.raises(KekInUse):
        kek_retire(version=1, actor=actor)
    assert provider.versions() == [1, 2]

    after_id, batches = None, 0
    while True:
        progress = vault_rewrap(batch_size=2, after_id=after_id, actor=actor)
        if progress.last_id is None:
            break
        after_id, batches = progress.last_id, batches + 1
    assert batches == 3  # five live records in batches of two

    live = VaultRecord.objects.using("vault").filter(shredded_at__isnull=True)
    assert set(live.values_list("kek_version", flat=True)) == {2}
    assert {Envelope.from_bytes(bytes(r.ciphertext)).kek_version for r in live} == {2}
    kek_retire(version=1, actor=actor)
    assert provider.versions() == [2]
    assert [detokenize(token, actor) for token in tokens] == values
    assert detokenize(nid, actor) == "XY998877"
    assert AuditEvent.objects.filter(event_type="vault.kek_retired", object_id="local-kek:1").count() == 1
    assert AuditEvent.objects.filter(event_type="vault.rewrapped").count() == 3


def test_rewrap_is_resumable_from_any_id(provider, actor):
    tokens = [vault_tokenize(token_type="card", value=VISA, actor=actor).token for _ in range(3)]
    ids = list(VaultRecord.objects.using("vault").order_by("id").values_list("id", flat=True))
    kek_rotate(actor=actor)

    progress = vault_rewrap(batch_size=10, after_id=ids[0])

    assert (progress.last_id, progress.rewrapped) == (ids[2], 2)
    versions = dict(VaultRecord.objects.using("vault").values_list("id", "kek_version"))
    assert versions == {ids[0]: 1, ids[1]: 2, ids[2]: 2}
    assert vault_rewrap(batch_size=10).last_id == ids[0]
    assert vault_rewrap(batch_size=10).last_id is None
    assert [detokenize(token, actor) for token in tokens] == [VISA] * 3


def test_retire_refuses_the_current_version(provider, actor):
    vault_tokenize(token_type="card", value=VISA, actor=actor)
    with pytest.raises(KekIsCurrent):
        kek_retire(version=1, actor=actor)
    assert provider.versions() == [1]


def test_retired_kek_makes_unrewrapped_copies_unreadable(provider, actor):
    # What retirement buys: a stale copy (backup, old row version) still wrapped under v1 is dead.
    token = vault_tokenize(token_type="card", value=VISA, actor=actor).token
    stale = bytes(VaultRecord.objects.using("vault").get(token=token).ciphertext)
    kek_rotate(actor=actor)
    vault_rewrap(batch_size=10)
    past_retire_grace(provider, 2)
    kek_retire(version=1, actor=actor)

    VaultRecord.objects.using("vault").filter(token=token).update(ciphertext=stale, kek_version=1)
    with pytest.raises(KeyUnavailable):
        detokenize(token, actor)


def test_convergent_mode_returns_one_token_per_value(provider, actor):
    first = vault_tokenize(token_type="card", value=VISA, convergent=True, actor=actor)
    again = vault_tokenize(token_type="card", value="4111-1111-1111-1111", convergent=True, actor=actor)
    other = vault_tokenize(token_type="card", value=MASTERCARD, convergent=True, actor=actor)
    plain = vault_tokenize(token_type="card", value=VISA, actor=actor)

    assert (first.created, again.created) == (True, False)
    assert again.token == first.token
    assert other.token != first.token
    assert plain.token != first.token  # non-convergent calls always mint a new token
    # Duplicate detection without decrypting: same blind index.
    records = VaultRecord.objects.using("vault")
    assert records.get(token=plain.token).blind_index == records.get(token=first.token).blind_index
    assert records.count() == 3


def test_convergent_after_shred_mints_a_new_token(provider, actor):
    first = vault_tokenize(token_type="card", value=VISA, convergent=True, actor=actor).token
    vault_shred(token=first, actor=actor)
    second = vault_tokenize(token_type="card", value=VISA, convergent=True, actor=actor).token
    assert second != first
    assert detokenize(second, actor) == VISA


def test_format_preserving_card_token(provider, actor):
    for _ in range(20):
        token = vault_tokenize(token_type="card", value=VISA, format_preserving=True, actor=actor).token
        assert (len(token), token[-4:], luhn_valid(token), token != VISA) == (16, "1111", True, True)
        assert detokenize(token, actor) == VISA
    with pytest.raises(InvalidMetadata):
        vault_tokenize(token_type="national_id", value="XY998877", format_preserving=True, actor=actor)


def test_shred_makes_the_value_unrecoverable(provider, actor):
    token = vault_tokenize(
        token_type="card", value=VISA, convergent=True, metadata={"exp_month": 1, "exp_year": 2031}, actor=actor
    ).token

    vault_shred(token=token, actor=actor)

    record = VaultRecord.objects.using("vault").get(token=token)
    assert bytes(record.ciphertext) == b""
    assert (record.kek_version, record.blind_index, record.last4, record.brand, record.exp_year) == (
        None,
        None,
        "",
        "",
        None,
    )
    assert record.shredded_at is not None
    with pytest.raises(TokenShredded):
        detokenize(token, actor)
    shredded = AuditEvent.objects.get(event_type="vault.shredded")
    assert (shredded.object_id, shredded.actor_staff) == (token, "staff_test_1")
    # Idempotent: a second shred changes nothing and records nothing.
    vault_shred(token=token, actor=actor)
    assert AuditEvent.objects.filter(event_type="vault.shredded").count() == 1


def test_no_plaintext_anywhere_in_the_vault_database(provider, actor):
    pans = [VISA, MASTERCARD, MASTERCARD_2_SERIES, AMEX]
    for index, pan in enumerate(pans):
        vault_tokenize(
            token_type="card",
            value=pan,
            convergent=index % 2 == 0,
            format_preserving=index == 1,
            metadata={"exp_month": 3, "exp_year": 2029},
            actor=actor,
        )
    vault_tokenize(token_type="national_id", value="QZ 771 234 K", actor=actor)

    dump = []
    with connections["vault"].cursor() as cursor:
        for table in connections["vault"].introspection.table_names(cursor):
            cursor.execute(f'SELECT row_to_json(t)::text FROM "{table}" t')
            dump.extend(row[0] for row in cursor.fetchall())
    text = "\n".join(dump)
    assert "tok_card_" in text  # the dump really holds the vault rows
    for pan in pans:
        spaced = " ".join(pan[i : i + 4] for i in range(0, len(pan), 4))
        for form in (pan, spaced, spaced.replace(" ", "-"), pan[:-4]):
            assert form not in text
        # Hex-encoded bytea would show the ASCII digits as hex pairs.
        assert pan.encode().hex() not in text
    assert "QZ771234K" not in text
    assert b"QZ771234K".hex() not in text
