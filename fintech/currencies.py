"""ISO 4217 exponents, and the one exact conversion from a decimal text to integer minor units.

It lives in the project layer, below every app, because settings need it too:
per-currency configuration written in major units (step-up thresholds, in
`fintech.settings.env`) is converted to minor units when settings load, and
settings may not import the ledger. `ledger.currencies` re-exports it and wraps
`minor_units_of` in the ledger's own errors and bounds.

Plain data, no Django imports: settings import this module before Django is set up.

Adding a currency here also needs a ledger migration: the database refuses codes
it does not know (`ledger_*_currency_known` check constraints).
"""

from __future__ import annotations

import re

# Code -> exponent (number of minor-unit digits), from ISO 4217.
CURRENCY_EXPONENTS: dict[str, int] = {
    "AUD": 2,
    "BHD": 3,
    "CAD": 2,
    "CHF": 2,
    "CZK": 2,
    "DKK": 2,
    "EUR": 2,
    "GBP": 2,
    "HUF": 2,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "NOK": 2,
    "NZD": 2,
    "OMR": 3,
    "PLN": 2,
    "SEK": 2,
    "TND": 3,
    "USD": 2,
}

# ASCII digits only (`\d` would also accept Arabic-Indic and other digits), an optional fraction;
# no sign, exponent, separator or whitespace.
_DECIMAL_RE = re.compile(r"\A[0-9]{1,20}(?:\.[0-9]{1,20})?\Z")


class NotADecimal(ValueError):
    """The text is not digits with an optional decimal point."""


class TooManyDecimals(ValueError):
    """The text has more decimal places than the currency has minor-unit digits."""


def minor_units_of(text: str, exponent: int) -> int:
    """ "12.34" with exponent 2 -> 1234, exactly (integer arithmetic): never rounded, never a float.

    Raises `NotADecimal` or `TooManyDecimals`; each caller words the refusal
    for its audience (an API client, an operator reading a startup error).
    """
    if not isinstance(text, str) or not _DECIMAL_RE.match(text):
        raise NotADecimal(text)
    units, _, fraction = text.partition(".")
    if len(fraction) > exponent:
        raise TooManyDecimals(text)
    return int(units) * 10**exponent + int(fraction.ljust(exponent, "0") or "0")
