"""ISO 4217 currencies and the conversion between text amounts and integer minor units.

Every amount inside the ledger is an integer count of minor units (cents,
fils, yen) travelling with its currency. Text like "12.34" exists only at the
edges (API input, statements); these two functions are the only crossing.
Parsing is strict on purpose: an amount with more decimals than the currency
has, a sign, an exponent or a NaN is refused rather than rounded, because a
silently rounded amount is money moved that nobody asked to move.

The exponent table itself is `fintech.currencies.CURRENCY_EXPONENTS` (settings
need it and may not import the ledger). Adding a currency there also needs a
migration: the database refuses codes it does not know
(`ledger_*_currency_known` check constraints).
"""

from __future__ import annotations

from fintech.currencies import CURRENCY_EXPONENTS, NotADecimal, TooManyDecimals, minor_units_of
from ledger.exceptions import InvalidAmount, UnknownCurrency

# The exponent table lives in the project layer (settings convert per-currency configuration with it);
# it is re-exported here so the ledger keeps one import for everything about currencies.
__all__ = [
    "CURRENCY_CODES",
    "CURRENCY_EXPONENTS",
    "MAX_AMOUNT_MINOR",
    "MAX_AMOUNT_TEXT_LENGTH",
    "currency_exponent",
    "format_amount",
    "parse_amount",
]

CURRENCY_CODES: tuple[str, ...] = tuple(sorted(CURRENCY_EXPONENTS))

# The largest amount a single operation may carry, in minor units. Ten
# trillion units of a two-decimal currency: far above any real payment, far
# below BigInteger's 9.2e18, so sums over many postings cannot overflow.
MAX_AMOUNT_MINOR = 10**15
# Longer input is refused before any parsing work is done.
MAX_AMOUNT_TEXT_LENGTH = 32


def currency_exponent(currency: str) -> int:
    """The number of minor-unit digits of `currency`; `UnknownCurrency` for anything not listed."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except (KeyError, TypeError):
        raise UnknownCurrency(f"Unknown currency {str(currency)[:8]!r}.") from None


def parse_amount(text: str, currency: str, *, allow_zero: bool = False) -> int:
    """ "12.34" in EUR -> 1234. Refuses anything that is not an exact, positive, bounded amount."""
    exponent = currency_exponent(currency)
    try:
        if isinstance(text, str) and len(text) > MAX_AMOUNT_TEXT_LENGTH:
            raise NotADecimal(text)
        minor = minor_units_of(text, exponent)
    except NotADecimal:
        raise InvalidAmount("An amount is written as digits with an optional decimal point, like 12.34.") from None
    except TooManyDecimals:
        raise InvalidAmount(f"{currency} amounts have at most {exponent} decimal places.") from None
    if minor == 0 and not allow_zero:
        raise InvalidAmount("The amount must be greater than zero.")
    if minor > MAX_AMOUNT_MINOR:
        raise InvalidAmount("The amount is too large.")
    return minor


def format_amount(amount_minor: int, currency: str) -> str:
    """1234 in EUR -> "12.34"; -5 in KWD -> "-0.005"; 1234 in JPY -> "1234". Exact, no float."""
    exponent = currency_exponent(currency)
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError("amount_minor must be an int")
    sign = "-" if amount_minor < 0 else ""
    units, fraction = divmod(abs(amount_minor), 10**exponent)
    if exponent == 0:
        return f"{sign}{units}"
    return f"{sign}{units}.{fraction:0{exponent}d}"
