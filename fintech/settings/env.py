"""The one place that reads the process environment.

Precedence: real environment variables, then `.env` at the repository root
(the operator's own overrides), then `var/services.env` (written by
`scripts/services.sh` with the PostgreSQL/Redis endpoints it found or started).
Every variable is listed with a safe default in `.env.example`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from fintech.currencies import CURRENCY_EXPONENTS, NotADecimal, TooManyDecimals, minor_units_of

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("FINTECH_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()


def _load_env_file(path: Path) -> None:
    """KEY=VALUE lines; the first source that sets a variable wins; empty means unset."""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip().strip("'\"")
        if value and not os.environ.get(key.strip()):
            os.environ[key.strip()] = value


for env_file in (BASE_DIR / ".env", VAR_DIR / "services.env"):
    if env_file.is_file():
        _load_env_file(env_file)


def dev_secret(name: str, *, nbytes: int = 48) -> str:
    """A random secret generated on first use into var/keys/, never committed.

    Only dev and test settings call this; production reads every secret from
    the environment and refuses to start without it.
    """
    keys_dir = VAR_DIR / "keys"
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = keys_dir / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(nbytes))
    return path.read_text().strip()


def dev_rsa_private_key_pem(path: Path) -> str:
    """An RSA key (PEM) generated on first use at `path`; dev and test only."""
    if not path.exists():
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text()
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
    return path.read_text()


def currency_amounts_minor(text: str, *, variable: str) -> dict[str, int]:
    """`"EUR=1000.00,JPY=150000"` -> `{"EUR": 100000, "JPY": 150000}`: major units in, minor units out.

    Operators write amounts as people read them; the code compares minor units.
    The conversion is exact and strict, like the ledger's own parsing: an
    unknown currency, more decimals than the currency has, a sign, a repeated
    currency or anything that is not a plain decimal raises ImproperlyConfigured
    naming `variable`, so a typo stops the process at startup instead of
    silently moving a money threshold. Zero is allowed; an empty text is an
    empty mapping (what a currency missing from it means is the caller's rule).
    """
    amounts: dict[str, int] = {}
    if not text.strip():
        return amounts
    for entry in text.split(","):
        currency, separator, amount = (part.strip() for part in entry.strip().partition("="))
        shown = entry.strip()[:40]
        if not separator:
            raise ImproperlyConfigured(f"{variable}: {shown!r} is not CURRENCY=AMOUNT (e.g. EUR=1000.00).")
        exponent = CURRENCY_EXPONENTS.get(currency)
        if exponent is None:
            raise ImproperlyConfigured(f"{variable}: unknown currency {currency[:8]!r} (ISO 4217 codes, upper case).")
        if currency in amounts:
            raise ImproperlyConfigured(f"{variable}: {currency} is given more than once.")
        try:
            amounts[currency] = minor_units_of(amount, exponent)
        except NotADecimal:
            raise ImproperlyConfigured(
                f"{variable}: {currency} amount {amount[:24]!r} is not a non-negative decimal like 1000.00."
            ) from None
        except TooManyDecimals:
            message = f"{variable}: {currency} amounts have at most {exponent} decimal places."
            raise ImproperlyConfigured(message) from None
    return amounts


def retired_variable_refuse(name: str, *, replaced_by: str) -> None:
    """ImproperlyConfigured when a variable that no longer means anything is still set.

    Ignoring it would silently drop an operator's deliberate choice (say, a
    lowered money threshold) in favour of the new variable's default.
    """
    if os.environ.get(name):
        raise ImproperlyConfigured(f"{name} is no longer read: set {replaced_by} instead (see .env.example).")
