"""The shape of a key: generating, parsing and hashing. No database access here.

A key reads `fk_live_<8 base32 chars>_<43 urlsafe chars>`. The first part is
the prefix: stored in clear, unique, shown in lists and audit events. The last
part is 32 random bytes (256 bits). Only sha256 of the whole key is stored:
with that much entropy a slow password hash would add latency on every call
and no protection (django-oauth-toolkit stores token checksums the same way).
"""

from __future__ import annotations

import hashlib
import re
import secrets

KEY_TAG = "fk_live_"
PREFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # base32, lower case: easy to read out and type
PREFIX_RANDOM_LENGTH = 8
SECRET_BYTES = 32  # token_urlsafe(32) is 43 characters
KEY_MAX_LENGTH = 128  # anything longer is not ours: refuse before hashing

_PREFIX_RE = re.compile(rf"{KEY_TAG}[{PREFIX_ALPHABET}]{{{PREFIX_RANDOM_LENGTH}}}")
_KEY_RE = re.compile(rf"(?P<prefix>{_PREFIX_RE.pattern})_(?P<secret>[A-Za-z0-9_-]{{43}})")


def prefix_generate() -> str:
    return KEY_TAG + "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_RANDOM_LENGTH))


def key_generate(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"


def key_checksum(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def key_prefix(raw_key: str) -> str | None:
    """The prefix of a well-formed key, else None (so nothing a caller made up gets recorded)."""
    if len(raw_key) > KEY_MAX_LENGTH:
        return None
    match = _KEY_RE.fullmatch(raw_key)
    return match.group("prefix") if match else None


def is_prefix(text: str) -> bool:
    return _PREFIX_RE.fullmatch(text) is not None
