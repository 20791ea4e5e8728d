"""ISO 4217 exponents: the one table of how many minor-unit digits each currency has.

It lives in the project layer, below every app, because settings need it too:
per-currency configuration written in major units (step-up thresholds, in
`fintech.settings.env`) is converted to minor units when settings load, and
settings may not import the ledger. `ledger.currencies` re-exports it and holds
the amount parsing and formatting the ledger uses.

Plain data, no Django imports: settings import this module before Django is set up.

Adding a currency here also needs a ledger migration: the database refuses codes
it does not know (`ledger_*_currency_known` check constraints).
"""

from __future__ import annotations

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
