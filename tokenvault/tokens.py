"""Tokens and card-number rules.

Random tokens carry no information about the value: a type prefix and 26
characters of base32 (130 bits) from `secrets`. The optional format-preserving
card token looks like a card number (same length, Luhn-valid, same last four
digits) for systems that cannot store anything else; everything but the last
four is random, and it is never equal to the card number it stands for.
"""

from __future__ import annotations

import re
import secrets

# The one card-number rule (brand table, lengths, Luhn) lives in fintech; `card_brand` is re-exported for the vault.
from fintech.card_numbers import (
    PAN_MAX_DIGITS,
    PAN_MIN_DIGITS,
    card_brand,  # noqa: F401
    card_number_digits,
    is_card_number,
    luhn_checksum,
    luhn_valid,
)
from tokenvault.exceptions import InvalidCardNumber, InvalidNationalId

TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32 (not a secret)  # noqa: S105  # nosec B105
TOKEN_RANDOM_CHARS = 26
TOKEN_PREFIXES = {"card": "tok_card_", "national_id": "tok_nid_"}
NATIONAL_ID_MAX_CHARS = 32
_SEPARATORS = re.compile(r"[\s\-]")
_NATIONAL_ID = re.compile(r"^[A-Z0-9]{4,32}$")


def token_random(token_type: str) -> str:
    """`tok_card_` / `tok_nid_` followed by 26 random base32 characters."""
    prefix = TOKEN_PREFIXES[token_type]
    return prefix + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_RANDOM_CHARS))


def pan_normalize(value: str) -> str:
    """Digits only (spaces and dashes dropped); raises `InvalidCardNumber` unless a valid PAN remains.

    Valid: 13-19 ASCII digits, Luhn-valid, of a known brand with a length that brand issues.
    """
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidCardNumber()
    digits = card_number_digits(value)
    if not is_card_number(digits):
        # Only a well-formed, Luhn-valid number of no known brand gets the more specific message.
        well_formed = PAN_MIN_DIGITS <= len(digits) <= PAN_MAX_DIGITS and luhn_valid(digits)
        raise InvalidCardNumber("Unknown card brand" if well_formed else None)
    return digits


def national_id_normalize(value: str) -> str:
    """Upper case, spaces and dashes dropped, 4-32 ASCII letters and digits; else `InvalidNationalId`."""
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidNationalId()
    normalized = _SEPARATORS.sub("", value).upper()
    if not (normalized.isascii() and _NATIONAL_ID.match(normalized)):
        raise InvalidNationalId()
    return normalized


def token_format_preserving(pan: str) -> str:
    """A random Luhn-valid number of the PAN's length ending in its last four digits, never the PAN itself.

    The check digit cannot be the last digit (that one is kept), so the digit
    just before the last four is chosen to make the whole number Luhn-valid.
    """
    if not (pan.isdigit() and PAN_MIN_DIGITS <= len(pan) <= PAN_MAX_DIGITS):
        raise InvalidCardNumber()
    last4 = pan[-4:]
    for _attempt in range(100):
        head = str(secrets.randbelow(9) + 1) + "".join(str(secrets.randbelow(10)) for _ in range(len(pan) - 6))
        for check in "0123456789":
            candidate = head + check + last4
            if luhn_checksum(candidate) == 0:
                break
        if candidate != pan:
            return candidate
    raise InvalidCardNumber("could not derive a token for this card number")  # unreachable in practice
