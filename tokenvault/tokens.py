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

from tokenvault.exceptions import InvalidCardNumber, InvalidNationalId

TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32 (not a secret)  # noqa: S105  # nosec B105
TOKEN_RANDOM_CHARS = 26
TOKEN_PREFIXES = {"card": "tok_card_", "national_id": "tok_nid_"}
PAN_MIN_DIGITS = 13
PAN_MAX_DIGITS = 19
NATIONAL_ID_MAX_CHARS = 32
_SEPARATORS = re.compile(r"[\s\-]")
_NATIONAL_ID = re.compile(r"^[A-Z0-9]{4,32}$")

# (brand, prefix ranges as (low, high) over the first N digits, allowed lengths).
# Order matters: the first match wins, so narrower ranges come before wider ones.
_BRANDS: list[tuple[str, list[tuple[int, int]], frozenset[int]]] = [
    ("amex", [(34, 34), (37, 37)], frozenset({15})),
    ("diners", [(300, 305), (36, 36), (38, 39)], frozenset(range(14, 20))),
    ("jcb", [(3528, 3589)], frozenset(range(16, 20))),
    ("visa", [(4, 4)], frozenset({13, 16, 19})),
    ("mastercard", [(51, 55), (2221, 2720)], frozenset({16})),
    ("discover", [(6011, 6011), (644, 649), (65, 65), (622126, 622925)], frozenset(range(16, 20))),
    ("unionpay", [(62, 62)], frozenset(range(16, 20))),
    ("maestro", [(5018, 5018), (5020, 5020), (5038, 5038), (5893, 5893), (6304, 6304), (6759, 6759), (6761, 6763)],
     frozenset(range(13, 20))),
]  # fmt: skip


def token_random(token_type: str) -> str:
    """`tok_card_` / `tok_nid_` followed by 26 random base32 characters."""
    prefix = TOKEN_PREFIXES[token_type]
    return prefix + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_RANDOM_CHARS))


def luhn_checksum(digits: str) -> int:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10


def luhn_valid(digits: str) -> bool:
    return digits.isascii() and digits.isdigit() and len(digits) >= 2 and luhn_checksum(digits) == 0


def card_brand(pan: str) -> str | None:
    """The scheme a card number belongs to by its prefix and length, or None."""
    for brand, ranges, lengths in _BRANDS:
        for low, high in ranges:
            width = len(str(low))
            if len(pan) >= width and low <= int(pan[:width]) <= high and len(pan) in lengths:
                return brand
    return None


def pan_normalize(value: str) -> str:
    """Digits only (spaces and dashes dropped); raises `InvalidCardNumber` unless a valid PAN remains.

    Valid: 13-19 ASCII digits, Luhn-valid, of a known brand with a length that brand issues.
    """
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidCardNumber()
    digits = _SEPARATORS.sub("", value)
    if not (digits.isascii() and digits.isdigit() and PAN_MIN_DIGITS <= len(digits) <= PAN_MAX_DIGITS):
        raise InvalidCardNumber()
    if not luhn_valid(digits):
        raise InvalidCardNumber()
    if card_brand(digits) is None:
        raise InvalidCardNumber("Unknown card brand")
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
