"""What a card number is, decided once: by the vault, the log scrubber and the free-text guard alike.

A card number is 13-19 ASCII digits that pass the Luhn check and begin with
the prefix of a known brand at a length that brand issues (the table below).
The token vault accepts exactly these (`tokenvault.tokens.pan_normalize`),
and free text (references, reasons, descriptions) is refused when it holds
one (`fintech.free_text`). The brand table matters for free text: Luhn alone
passes one honest 16-digit invoice number in ten, but an invoice number that
is also a Luhn-valid number with a Visa, Mastercard... prefix and length is
indistinguishable from a card, and the vault would take it as one.

It lives in `fintech/`, the lowest layer, so every app can use it, and it
imports nothing from Django: `fintech.redaction` (imported by the logging
configuration before settings exist) shares its Luhn check.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

__all__ = [
    "PAN_MAX_DIGITS",
    "PAN_MIN_DIGITS",
    "card_brand",
    "card_number_digits",
    "card_number_masked",
    "card_numbers_in_text",
    "is_card_number",
    "luhn_checksum",
    "luhn_valid",
    "text_contains_card_number",
]

PAN_MIN_DIGITS = 13
PAN_MAX_DIGITS = 19

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

# What the vault drops from a card number before checking it: people type "4111 1111-1111 1111".
_SEPARATORS = re.compile(r"[\s\-]")
# In free text, digit groups joined by up to four of anything that is neither a letter nor a digit
# (spaces, dashes, dots, slashes, underscores, commas...): people and attackers write cards every way.
# Letters end a run; a card inside a run may start and end at any group boundary.
_DIGIT_RUN = re.compile(r"[0-9]+(?:[\W_]{1,4}[0-9]+)*")
_DIGIT_GROUP = re.compile(r"[0-9]+")
# Identifiers in UUID form (account and transfer ids in references and payloads) are not card numbers, though
# about one random UUID in 4,000 holds a digit run with a brand's prefix, length and Luhn digit (found as a
# flaky test): they are blanked before the search. Card numbers are not written in 8-4-4-4-12 hex groups.
_UUID = re.compile(
    r"(?<![0-9A-Za-z])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![0-9A-Za-z])"
)


def luhn_checksum(digits: str) -> int:
    """The Luhn sum modulo 10 of ASCII digits (0 for a valid number); the caller checks they are digits."""
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
    """Luhn check of ASCII digits only; separators are refused so each caller decides what a number is."""
    return bool(digits) and digits.isascii() and digits.isdigit() and luhn_checksum(digits) == 0


def card_brand(pan: str) -> str | None:
    """The scheme a card number belongs to by its prefix and length, or None."""
    for brand, ranges, lengths in _BRANDS:
        for low, high in ranges:
            width = len(str(low))
            if len(pan) >= width and low <= int(pan[:width]) <= high and len(pan) in lengths:
                return brand
    return None


def card_number_digits(value: str) -> str:
    """`value` without the spaces and dashes people type between digit groups."""
    return _SEPARATORS.sub("", value)


def is_card_number(digits: str) -> bool:
    """The vault's rule: 13-19 ASCII digits, Luhn-valid, of a known brand at a length that brand issues."""
    return (
        digits.isascii()
        and digits.isdigit()
        and PAN_MIN_DIGITS <= len(digits) <= PAN_MAX_DIGITS
        and luhn_checksum(digits) == 0
        and card_brand(digits) is not None
    )


def _digits_folded(text: str) -> str:
    """`text` with every Unicode decimal digit as its ASCII digit and invisible format characters dropped.

    A card in fullwidth, Arabic-Indic or superscript digits, or split by a
    zero-width space, is still a card to whoever reads it back (NFKC folds
    the compatibility forms; `unicodedata.decimal` the other scripts' digits).
    """
    folded = unicodedata.normalize("NFKC", text)
    if folded.isascii():
        return folded
    return "".join(
        str(digit) if (digit := unicodedata.decimal(char, None)) is not None else char
        for char in folded
        if unicodedata.category(char) != "Cf"
    )


def card_numbers_in_text(text: str) -> Iterator[str]:
    """Each card number (digits only) written in `text`, in any digits, with or without separators, in order.

    Every run of digit groups is tried from each group on, joining the groups
    that follow while at most 19 digits are gathered; the longest joined
    number the vault would accept is a card, and the search goes on after it.
    Groups are never split: a 20-digit number is not a card, and neither is
    a 16-digit tail of it (the vault refuses both). A run is at most 19
    groups wide from any start, so the work is linear in the text.
    """
    for run in _DIGIT_RUN.finditer(_UUID.sub(" ", _digits_folded(text))):
        groups = _DIGIT_GROUP.findall(run.group())
        if sum(len(group) for group in groups) < PAN_MIN_DIGITS:
            continue
        start = 0
        while start < len(groups):
            card, card_end = "", -1
            digits = ""
            for end in range(start, len(groups)):
                digits += groups[end]
                if len(digits) > PAN_MAX_DIGITS:
                    break
                if is_card_number(digits):
                    card, card_end = digits, end
            if card_end < 0:
                start += 1
                continue
            yield card
            start = card_end + 1


def text_contains_card_number(text: str) -> bool:
    """Whether `text` holds a number the vault would accept as a card, written in any of the usual ways."""
    return isinstance(text, str) and next(card_numbers_in_text(text), None) is not None


def card_number_masked(pan: str) -> str:
    """`visa ****1111`: what a report may show of a card number (PCI DSS lets the last four be seen)."""
    return f"{card_brand(pan) or 'card'} ****{pan[-4:]}"
