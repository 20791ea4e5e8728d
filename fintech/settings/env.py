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
from fintech.key_files import key_file_create
from fintech.process_keys import PROCESS_KEYS, PROCESS_VARIABLE, process_allows

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


# --- Which process this is: its settings load only its keys (fintech/process_keys.py) -------------------
_selected_process: dict[str, str] = {}


def process_select(process: str) -> None:
    """For a settings module that is one process only (the vault's): named before any other settings load.

    A FINTECH_PROCESS naming another process is refused rather than overridden.
    """
    given = env.str(PROCESS_VARIABLE, default="")
    if given and given != process:
        raise ImproperlyConfigured(f"{PROCESS_VARIABLE}={given!r}, but these settings are the {process} process's.")
    _selected_process["process"] = process


def fintech_process() -> str:
    """FINTECH_PROCESS: web, worker, beat, vault or ops; "" (unset) in a dev console or the test runner."""
    if "process" in _selected_process:
        return _selected_process["process"]
    process = env.str(PROCESS_VARIABLE, default="")
    if process and process not in PROCESS_KEYS:
        raise ImproperlyConfigured(f"{PROCESS_VARIABLE} must be one of {', '.join(PROCESS_KEYS)}, not {process!r}.")
    return process


def process_holds(key: str) -> bool:
    """Whether this process's settings may load `key` (every key when FINTECH_PROCESS is unset: dev and test only)."""
    return process_allows(fintech_process(), key)


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


def dev_ed25519_key_pair(private_path: Path, public_path: Path) -> None:
    """An Ed25519 key pair (PKCS8 PEM, 0600; its public half next to it, 0644) generated once; dev and test only.

    Called by the settings of the one process that signs with it, so the
    processes that only verify find the public half without ever holding the
    private one. Exclusive creation: a racing process never overwrites a key.
    """
    if not private_path.exists():
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

        pem = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        key_file_create(private_path, pem)
    if not public_path.exists():
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key

        public = load_pem_private_key(private_path.read_bytes(), password=None).public_key()
        key_file_create(public_path, public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo), mode=0o644)


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
