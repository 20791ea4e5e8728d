"""Token formats and card-number rules (no database)."""

from __future__ import annotations

import re

import pytest

from tokenvault.exceptions import InvalidCardNumber, InvalidNationalId
from tokenvault.tests.conftest import AMEX, MASTERCARD, MASTERCARD_2_SERIES, VISA
from tokenvault.tokens import (
    card_brand,
    luhn_valid,
    national_id_normalize,
    pan_normalize,
    token_format_preserving,
    token_random,
)


@pytest.mark.parametrize(
    ("pan", "brand"),
    [
        (VISA, "visa"),
        ("4222222222222", "visa"),
        (MASTERCARD, "mastercard"),
        (MASTERCARD_2_SERIES, "mastercard"),
        ("2720990000000007", "mastercard"),
        (AMEX, "amex"),
        ("6011111111111117", "discover"),
        ("6445644564456445", "discover"),
        ("3530111333300000", "jcb"),
        ("30569309025904", "diners"),
        ("6200000000000005", "unionpay"),
    ],
)
def test_known_test_cards_have_their_brand_and_pass_luhn(pan, brand):
    assert luhn_valid(pan)
    assert card_brand(pan) == brand
    assert pan_normalize(pan) == pan


def test_mastercard_2_series_ends_at_2720():
    assert card_brand("2721000000000004") is None


@pytest.mark.parametrize(
    "value",
    ["4111111111111112", "411111111111", "41111111111111111111", "4111-1111-1111-111x", "", "9111111111111119"],
)
def test_invalid_card_numbers_are_refused(value):
    with pytest.raises(InvalidCardNumber):
        pan_normalize(value)


def test_separators_are_dropped():
    assert pan_normalize("4111 1111-1111 1111") == VISA


def test_national_id_is_normalized():
    assert national_id_normalize(" ab-123 456 c ") == "AB123456C"
    with pytest.raises(InvalidNationalId):
        national_id_normalize("ÅB123456")


def test_random_tokens_have_prefix_and_130_bits():
    tokens = {token_random("card") for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(re.fullmatch(r"tok_card_[a-z2-7]{26}", token) for token in tokens)
    assert re.fullmatch(r"tok_nid_[a-z2-7]{26}", token_random("national_id"))


@pytest.mark.parametrize("pan", [VISA, MASTERCARD, AMEX, "4222222222222", "4000000000000000006"])
def test_format_preserving_token_properties_over_many_samples(pan):
    samples = [token_format_preserving(pan) for _ in range(2000)]
    for token in samples:
        assert len(token) == len(pan)
        assert token.isdigit()
        assert luhn_valid(token)
        assert token[-4:] == pan[-4:]
        assert token != pan
    # Random otherwise: the head varies.
    assert len({token[:-4] for token in samples}) > 1900


def test_format_preserving_token_draws_again_when_it_would_equal_the_pan(monkeypatch):
    # Force the generator to propose the PAN itself first: it must draw again.
    from tokenvault import tokens

    digits = iter([int(d) - (1 if i == 0 else 0) for i, d in enumerate(VISA[:11])])
    real_randbelow = tokens.secrets.randbelow

    def scripted(upper):
        try:
            return next(digits)
        except StopIteration:
            return real_randbelow(upper)

    monkeypatch.setattr(tokens.secrets, "randbelow", scripted)
    token = token_format_preserving(VISA)
    assert token != VISA
    assert luhn_valid(token)
    assert token[-4:] == VISA[-4:]
