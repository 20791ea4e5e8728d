"""Text amounts <-> integer minor units: exact, strict, bounded."""

from __future__ import annotations

import pytest

from fintech.currencies import CURRENCY_EXPONENTS as project_currency_exponents
from ledger.currencies import CURRENCY_EXPONENTS, MAX_AMOUNT_MINOR, format_amount, parse_amount
from ledger.exceptions import InvalidAmount, UnknownCurrency


def test_the_required_currencies_have_their_iso_exponents():
    assert {code: CURRENCY_EXPONENTS[code] for code in ("USD", "EUR", "GBP", "CHF", "JPY", "KWD", "BHD")} == {
        "USD": 2,
        "EUR": 2,
        "GBP": 2,
        "CHF": 2,
        "JPY": 0,
        "KWD": 3,
        "BHD": 3,
    }


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.34", "EUR", 1234),
        ("12.3", "EUR", 1230),
        ("12", "EUR", 1200),
        ("0.01", "USD", 1),
        ("1234", "JPY", 1234),
        ("1.234", "KWD", 1234),
        ("0.005", "BHD", 5),
        ("007.50", "GBP", 750),
        ("10000000000000.00", "EUR", MAX_AMOUNT_MINOR),
    ],
)
def test_parse_amount_is_exact(text, currency, minor):
    assert parse_amount(text, currency) == minor


@pytest.mark.parametrize(
    "text",
    [
        "12.345",  # more decimals than EUR has
        "12.340",  # even when the extra digit is zero: amounts are written canonically
        "-1.00",
        "+1.00",
        "0",
        "0.00",
        "1e3",
        "1E-2",
        "NaN",
        "nan",
        "Infinity",
        "-inf",
        "",
        " 1.00",
        "1.00 ",
        "1,00",
        "1.",
        ".5",
        "1_000",
        "١٢",  # Arabic-Indic digits: \d would accept them
        "10000000000000.01",  # one minor unit above the bound
        "9" * 21,
        "1" * 40,
    ],
)
def test_parse_amount_refuses_anything_inexact_or_absurd(text):
    with pytest.raises(InvalidAmount):
        parse_amount(text, "EUR")


def test_decimals_are_checked_against_the_currency():
    with pytest.raises(InvalidAmount):
        parse_amount("1.5", "JPY")
    with pytest.raises(InvalidAmount):
        parse_amount("1.2345", "KWD")


def test_zero_only_where_allowed():
    assert parse_amount("0.00", "EUR", allow_zero=True) == 0


def test_non_strings_and_unknown_currencies_are_refused():
    with pytest.raises(InvalidAmount):
        parse_amount(12.34, "EUR")
    with pytest.raises(UnknownCurrency) as error:
        parse_amount("1.00", "XYZ")
    assert error.value.code == "unknown_currency"
    assert error.value.status == 422
    with pytest.raises(UnknownCurrency):
        parse_amount("1.00", "eur")


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1234, "EUR", "12.34"),
        (5, "EUR", "0.05"),
        (0, "EUR", "0.00"),
        (-1234, "EUR", "-12.34"),
        (1234, "JPY", "1234"),
        (1234, "KWD", "1.234"),
        (-5, "BHD", "-0.005"),
        (MAX_AMOUNT_MINOR, "EUR", "10000000000000.00"),
    ],
)
def test_format_amount_is_exact(minor, currency, text):
    assert format_amount(minor, currency) == text


def test_format_then_parse_round_trips():
    for currency in CURRENCY_EXPONENTS:
        for minor in (1, 7, 10, 999, 123456789):
            assert parse_amount(format_amount(minor, currency), currency) == minor


def test_format_amount_refuses_floats():
    with pytest.raises(TypeError):
        format_amount(12.5, "EUR")


def test_the_exponent_table_is_the_project_layers_one_table():
    # Settings convert configured amounts with `fintech.currencies` (they may not import the ledger).
    assert CURRENCY_EXPONENTS is project_currency_exponents
