"""Envelope encryption and blind indexes (no database)."""

from __future__ import annotations

import pytest

from tokenvault.crypto import Envelope, blind_index, envelope_open, envelope_rewrap, envelope_seal, record_aad
from tokenvault.exceptions import CiphertextTampered, KeyUnavailable
from tokenvault.keys import LocalFileKeyProvider
from tokenvault.tests.conftest import VISA

AAD_A = record_aad(token_type="card", token="tok_card_a", field="pan")
AAD_B = record_aad(token_type="card", token="tok_card_b", field="pan")


@pytest.fixture
def provider(tmp_path):
    return LocalFileKeyProvider(tmp_path / "kek", generate=True)


def test_round_trip_and_envelope_header(provider):
    blob = envelope_seal(plaintext=VISA.encode(), aad=AAD_A, provider=provider)

    envelope = Envelope.from_bytes(blob)
    assert blob[:3] == b"TV\x01"
    assert (envelope.kek_id, envelope.kek_version) == ("local-kek", 1)
    assert VISA.encode() not in blob
    assert envelope_open(blob=blob, aad=AAD_A, provider=provider) == VISA.encode()


def test_each_record_gets_its_own_data_key_and_nonce(provider):
    first = Envelope.from_bytes(envelope_seal(plaintext=b"x", aad=AAD_A, provider=provider))
    second = Envelope.from_bytes(envelope_seal(plaintext=b"x", aad=AAD_A, provider=provider))
    assert first.wrapped_key != second.wrapped_key
    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext


def test_ciphertext_bound_to_its_record_and_field(provider):
    blob = envelope_seal(plaintext=VISA.encode(), aad=AAD_A, provider=provider)
    with pytest.raises(CiphertextTampered):
        envelope_open(blob=blob, aad=AAD_B, provider=provider)
    with pytest.raises(CiphertextTampered):
        envelope_open(blob=blob, aad=record_aad(token_type="card", token="tok_card_a", field="cvv"), provider=provider)


def test_every_flipped_byte_is_detected(provider):
    blob = envelope_seal(plaintext=VISA.encode(), aad=AAD_A, provider=provider)
    # Bytes naming the KEK (id and version): a changed name points at a key
    # that does not exist. The service also cross-checks them with the row.
    kek_name = range(4, 4 + len("local-kek") + 4)
    for position in range(len(blob)):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        expected = KeyUnavailable if position in kek_name else CiphertextTampered
        with pytest.raises(expected):
            envelope_open(blob=bytes(tampered), aad=AAD_A, provider=provider)
    for length in (0, 3, 10, len(blob) - 1):
        with pytest.raises(CiphertextTampered):
            envelope_open(blob=blob[:length], aad=AAD_A, provider=provider)


def test_data_key_swapped_between_envelopes_is_detected(provider):
    first = Envelope.from_bytes(envelope_seal(plaintext=b"first", aad=AAD_A, provider=provider))
    second = Envelope.from_bytes(envelope_seal(plaintext=b"second", aad=AAD_B, provider=provider))
    mixed = Envelope(first.kek_id, first.kek_version, second.wrapped_key, first.nonce, first.ciphertext)
    with pytest.raises(CiphertextTampered):
        envelope_open(blob=mixed.to_bytes(), aad=AAD_A, provider=provider)


def test_rewrap_changes_only_the_key_wrapping(provider):
    blob = envelope_seal(plaintext=VISA.encode(), aad=AAD_A, provider=provider)
    provider.rotate()

    rewrapped = envelope_rewrap(blob=blob, aad=AAD_A, provider=provider)

    old, new = Envelope.from_bytes(blob), Envelope.from_bytes(rewrapped)
    assert new.kek_version == 2
    assert (new.nonce, new.ciphertext) == (old.nonce, old.ciphertext)
    provider.retire(1)
    assert envelope_open(blob=rewrapped, aad=AAD_A, provider=provider) == VISA.encode()


def test_blind_index_is_deterministic_keyed_and_typed(provider, tmp_path):
    version, digest = blind_index(token_type="card", normalized_value=VISA, provider=provider)
    assert version == 1
    assert len(digest) == 64
    assert blind_index(token_type="card", normalized_value=VISA, provider=provider) == (version, digest)
    assert blind_index(token_type="national_id", normalized_value=VISA, provider=provider)[1] != digest
    other = LocalFileKeyProvider(tmp_path / "other", generate=True)
    assert blind_index(token_type="card", normalized_value=VISA, provider=other)[1] != digest
