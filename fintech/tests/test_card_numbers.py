"""The one card-number rule: what the vault accepts is exactly what free text may not contain."""

from __future__ import annotations

import random

import pytest

from fintech import card_numbers, redaction
from fintech.card_numbers import (
    card_number_masked,
    card_numbers_in_text,
    is_card_number,
    luhn_valid,
    text_contains_card_number,
)
from tokenvault import tokens
from tokenvault.exceptions import InvalidCardNumber

REFUSED = [
    "card 5105 1051 0510 5100 refund",
    "4111-1111-1111-1111",
    "4111111111111111",
    "rent for march, paid with 4111111111111111 thanks",
    "card4111111111111111",  # glued to a word: still a card
    "ref 1234 4111 1111 1111 1111",  # a card after an unrelated group
    "4111 1111-1111 1111",  # mixed separators, as the vault accepts
    "4111 - 1111 - 1111 - 1111",
    "amex 3782 822463 10005",
    "378282246310005",
    "visa 13 digits 4222222222222",
    "mc 2-series 2221000000000009",
    "discover 6011 1111 1111 1117.",
    "jcb 3530111333300000",
    "diners 30569309025904",
    "unionpay 6200000000000005",
    "two: 4111111111111111 and 5555555555554444",
    # Found in review: other separators, other digits, invisible characters.
    "4111.1111.1111.1111",
    "4111/1111/1111/1111",
    "4111_1111_1111_1111",
    "4111,1111,1111,1111",
    "4111+1111+1111+1111",
    "4111 -- 1111 -- 1111 -- 1111",
    "4111    1111    1111    1111",
    "4111\u200b1111\u200b1111\u200b1111",
    "\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11",
    "٤١١١١١١١١١١١١١١١",  # Arabic-Indic digits
    "४१११ १११९ ११११ ११११".replace("९", "१"),  # Devanagari digits
    "4111\u20131111\u20131111\u20131111",  # en dashes
]

ALLOWED = [
    "",
    "rent",
    "invoice 2024-0042",
    "9999 9999 9999 9995",  # passes Luhn, but no brand starts with 9
    "INV 9999999999999995",
    "order 1234567812345670",  # Luhn-valid, prefix 12: no brand
    "4111 1111 1111 1112",  # a Visa prefix that fails Luhn
    "41111111111111110",  # 17 digits: Visa issues 13, 16 or 19
    "41111111111111111111",  # 20 digits: no card is that long, and none is cut out of it
    "371449635398432",  # Amex prefix and length, fails Luhn
    "paid 12.34 EUR on 2024-05-01 ref 00123",
    "+44 20 7946 0958",
    "94111111111111111",  # a card glued to a digit is a 17-digit number: groups are never split (ADR 0014)
    "IBAN DE89 3704 0044 0532 0130 00",
    "due 2026-01-26, amount 1,234.56, ticket 00123/2026",
]


@pytest.mark.parametrize("text", REFUSED)
def test_text_holding_a_card_the_vault_accepts_is_found(text):
    assert text_contains_card_number(text) is True


@pytest.mark.parametrize("text", ALLOWED)
def test_honest_numbers_are_not_cards(text):
    assert text_contains_card_number(text) is False


def test_a_card_followed_by_another_group_is_still_found():
    """Groups around a card do not hide it: each group boundary may start or end one."""
    assert list(card_numbers_in_text("5105105105105100 0")) == ["5105105105105100"]


def test_every_card_is_found_and_masked_without_its_number():
    found = list(card_numbers_in_text("two: 4111 1111 1111 1111 and 3782-822463-10005, 6011111111111117"))

    assert found == ["4111111111111111", "378282246310005", "6011111111111117"]
    assert [card_number_masked(pan) for pan in found] == ["visa ****1111", "amex ****0005", "discover ****1117"]


def test_one_random_16_digit_number_in_ten_passes_luhn_but_few_are_cards():
    """Why Luhn alone is not the rule: it would refuse about one honest invoice number in ten."""
    rng = random.Random(20240501)
    numbers = [str(rng.randrange(10**15, 10**16)) for _ in range(20_000)]

    luhn_share = sum(map(luhn_valid, numbers)) / len(numbers)
    card_share = sum(map(text_contains_card_number, numbers)) / len(numbers)
    without_brand = [n for n in numbers if n[0] in "0189" and luhn_valid(n)]

    assert 0.09 < luhn_share < 0.11
    assert card_share < 0.04
    assert len(without_brand) > 500
    assert not any(text_contains_card_number(" ".join([n[:4], n[4:8], n[8:12], n[12:]])) for n in without_brand)


def test_the_vault_and_the_free_text_guard_share_one_rule():
    """One Luhn and one brand table: the vault's validator, the log scrubber and the guard use the same code."""
    assert tokens.luhn_valid is card_numbers.luhn_valid
    assert tokens.luhn_checksum is card_numbers.luhn_checksum
    assert tokens.card_brand is card_numbers.card_brand
    assert redaction.luhn_valid is card_numbers.luhn_valid
    assert (tokens.PAN_MIN_DIGITS, tokens.PAN_MAX_DIGITS) == (13, 19)


def _vault_accepts(value: str) -> bool:
    try:
        tokens.pan_normalize(value)
    except InvalidCardNumber:
        return False
    return True


def _luhn_completed(body: str) -> str:
    return body + str((10 - card_numbers.luhn_checksum(body + "0")) % 10)


def test_the_guard_refuses_exactly_what_the_vault_accepts():
    """Numbers near every brand's edges (prefixes, lengths 12-20, Luhn-valid or not) get one answer from both."""
    rng = random.Random(7)
    prefixes = ["4", "34", "37", "300", "305", "306", "36", "38", "3528", "3589", "3590", "51", "55", "56", "2221",
                "2720", "2721", "6011", "644", "65", "622126", "62", "5018", "6304", "6759", "9", "1"]  # fmt: skip
    samples = []
    for _ in range(5_000):
        prefix = rng.choice(prefixes)
        body = prefix + "".join(str(rng.randrange(10)) for _ in range(rng.randrange(12, 20) - len(prefix)))
        samples.append(_luhn_completed(body) if rng.random() < 0.7 else body + str(rng.randrange(10)))
    digit_strings = [s for s in REFUSED + ALLOWED + samples if s.isascii() and s.isdigit()]

    assert sum(map(is_card_number, digit_strings)) > 1_000  # the sample holds many cards, and many near misses

    for digits in digit_strings:
        assert is_card_number(digits) is _vault_accepts(digits), digits
        assert text_contains_card_number(digits) is _vault_accepts(digits), digits


@pytest.mark.parametrize(
    ("digits", "expected"), [("4111111111111111", True), ("0", True), ("", False), ("41111111111111a1", False)]
)
def test_one_luhn(digits, expected):
    assert luhn_valid(digits) is expected


def test_a_card_after_a_long_run_of_short_groups_is_found():
    """Each start joins at most 19 digits' worth of groups, so a long run costs little."""
    text = "1 " * 50_000 + "4111111111111111"

    assert text_contains_card_number(text) is True


def test_identifiers_in_uuid_form_are_not_card_numbers():
    """Found as a flaky test: about one random UUID in 4,000 held a Visa-like digit run across its hyphens."""
    from fintech.card_numbers import text_contains_card_number

    looks_like_visa = "41111111-1111-1111-abcd-abcdefabcdef"  # 41111111 1111 1111: a Luhn-valid Visa number
    assert not text_contains_card_number(looks_like_visa)
    assert not text_contains_card_number(f"refund of transfer {looks_like_visa}")
    assert text_contains_card_number(f"transfer {looks_like_visa} card 4111 1111 1111 1111")
    assert text_contains_card_number("4111-1111-1111-1111")
