"""PII and secret redaction shared by logging and (later) the audit trail.

Kept free of Django imports so it is importable from logging configuration,
Celery workers and scripts before settings are configured. Every pattern is
compiled once at import time because ``scrub_text`` runs on every log record.

The bias is deliberately towards over-masking: a log line with a redacted
word is an inconvenience, a log line with a card number is a PCI incident.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# One Luhn for the whole project (the vault's); re-exported here. Logs mask any Luhn-valid 13-19 digit
# run in a card layout, brand or not: over-masking a log line is cheap, a card in a log is an incident.
from fintech.card_numbers import luhn_valid

__all__ = [
    "DEFAULT_SENSITIVE_KEYS",
    "REDACTED",
    "is_sensitive_key",
    "luhn_valid",
    "mask_value",
    "scrub_mapping",
    "scrub_text",
]

REDACTED = "[redacted]"
MAX_DEPTH = 20
MAX_STRING_LENGTH = 10_000
_TRUNCATED_SUFFIX = "...[truncated]"
_DEPTH_PLACEHOLDER = "[max-depth]"

# Exact (normalised) key names whose values are always hidden in mappings.
# fmt: off
DEFAULT_SENSITIVE_KEYS: frozenset[str] = frozenset({
    "password", "passwd", "secret", "client_secret", "api_key", "apikey", "code_verifier",
    "token", "access_token", "refresh_token", "id_token",
    "authorization", "http_authorization", "proxy_authorization",
    "cookie", "http_cookie", "set_cookie", "sessionid",
    "card_number", "number", "pan", "cvv", "cvc", "cvv2", "security_code",
    "national_id", "ssn", "nino", "email",
})
# fmt: on
# Substrings that make *any* key sensitive (``new_password``, ``webhook_secret``...).
# ``token`` is deliberately absent: vault references such as ``card_token`` are
# not secret and are needed to correlate events.
_SENSITIVE_FRAGMENTS = ("password", "passwd", "secret", "authorization", "api_key", "cvv", "cvc")

# --- Free-text patterns -----------------------------------------------------------

_JWT_RE = re.compile(r"\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_API_KEY_RE = re.compile(r"\bfk_(?:live|test)_[A-Za-z0-9_-]+")
# Header lines: the whole rest of the line goes, because Basic/Digest values
# contain spaces and quotes that a tighter pattern would cut short.
_HEADER_RE = re.compile(
    r"(?im)(?<![\w-])((?:proxy-)?authorization|cookie|set-cookie|x-api-key)([ \t]*+:[ \t]*+)(?!\[redacted\])[^\r\n]+"
)
_KEY_NAMES = (
    r"[\w-]*(?:password|passwd|secret)|token|access_token|refresh_token|id_token|api_key|apikey"
    r"|code_verifier|(?:http_)?(?:proxy_)?authorization|http_cookie"
)
# `'key': 'value'`, `"key": "value"`, `key=value`, `key: value`. An unterminated
# quoted value is redacted to the end of the text rather than leaked.
_KEY_VALUE_RE = re.compile(
    r"(?i)(?P<key>(?P<kq>['\"]?)(?<![\w-])(?:" + _KEY_NAMES + r")(?P=kq))"
    r"(?P<sep>\s*[:=]\s*)(?!\[redacted\])"
    r"(?P<value>b?(?P<vq>['\"])(?:\\.|(?!(?P=vq))[^\\])*(?:(?P=vq)|\Z)|[^\s&,;'\"}\])]+)"
)
_BEARER_RE = re.compile(r"(?i)\b(bearer)\s+[^\s'\",;]+")
# Single-use links carry their secret in the path (a staff invitation, a password reset): a log line that
# prints the path (a 404, a CSRF refusal) must not keep a link that may still work.
_LINK_SECRET_RE = re.compile(r"(/accounts/(?:staff-invitation|password/reset/[A-Za-z0-9_-]+)/)[A-Za-z0-9_-]{8,}")
_EMAIL_RE = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}\b")
# A run of digit groups separated by single spaces or dashes; whether (part of)
# it is a card is decided in code, because regexes cannot check Luhn.
_DIGIT_RUN_RE = re.compile(r"(?<![\w.])\d+(?:[ -]\d+)*(?!\w|\.\d)")
_SSN_RE = re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")
# UK National Insurance number, with or without the customary spaces.
_NINO_RE = re.compile(r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b")
_GROUP_SPLIT_RE = re.compile(r"([ -])")


def _is_card_layout(groups: list[str]) -> bool:
    """Separated card numbers are written 4-4-4-4(-n) or Amex/Diners 4-6-5/4-6-4.

    Requiring a real layout keeps dates, phone numbers and all-digit UUIDs
    (8-4-4-4-12) from being stitched into a 16-digit Luhn-valid accident.
    """
    if len(groups) == 1:
        return True
    lengths = [len(group) for group in groups]
    if lengths in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(length == 4 for length in lengths[:-1]) and 1 <= lengths[-1] <= 4


def _mask_cards_in_run(run: str) -> str:
    parts = _GROUP_SPLIT_RE.split(run)  # digits, sep, digits, sep, ...
    groups, seps = parts[0::2], parts[1::2]
    out: list[str] = []
    i = 0
    card = ""
    while i < len(groups):
        match_end = -1
        digits = ""
        for j in range(i, len(groups)):
            if j > i and seps[j - 1] != seps[i]:
                break
            digits += groups[j]
            if len(digits) > 19:
                break
            if len(digits) >= 13 and _is_card_layout(groups[i : j + 1]) and luhn_valid(digits):
                match_end, card = j, digits  # keep extending: prefer the longest card
        if match_end >= 0:
            out.append(f"[card:****{card[-4:]}]")
            if match_end < len(seps):
                out.append(seps[match_end])
            i = match_end + 1
        else:
            out.append(groups[i])
            if i < len(seps):
                out.append(seps[i])
            i += 1
    return "".join(out)


def _card_sub(match: re.Match[str]) -> str:
    run = match.group(0)
    if sum(char.isdigit() for char in run) < 13:
        return run
    return _mask_cards_in_run(run)


def _key_value_sub(match: re.Match[str]) -> str:
    value = match.group("value")
    quote = match.group("vq")
    replacement = f"{quote}{REDACTED}{quote}" if quote else REDACTED
    if quote and value.startswith("b"):
        replacement = "b" + replacement
    return f"{match.group('key')}{match.group('sep')}{replacement}"


def scrub_text(text: str) -> str:
    """Mask secrets and PII in free text; idempotent, so double filtering is harmless.

    Order matters: header lines, bearer tokens and key/value secrets go first
    so their values are hidden whole rather than piecemeal by later rules, and
    so a second pass never mistakes an earlier placeholder for a new value.
    """
    if not isinstance(text, str):
        text = str(text)
    if not text:
        return text
    text = _HEADER_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _BEARER_RE.sub(lambda m: f"{m.group(1)} [token]", text)
    text = _LINK_SECRET_RE.sub(lambda m: f"{m.group(1)}[link-secret]", text)
    text = _KEY_VALUE_RE.sub(_key_value_sub, text)
    text = _JWT_RE.sub("[jwt]", text)
    text = _API_KEY_RE.sub("[api-key]", text)
    text = _EMAIL_RE.sub("[email]", text)
    text = _DIGIT_RUN_RE.sub(_card_sub, text)
    text = _SSN_RE.sub("[national-id]", text)
    return _NINO_RE.sub("[national-id]", text)


def mask_value(value: Any, keep_last: int = 0) -> str:
    """Mask a single known-sensitive value.

    A full mask has a fixed width so that it does not leak the length. Values
    too short to hide at least as much as they show are masked fully.
    """
    text = "" if value is None else str(value)
    keep_last = max(keep_last, 0)
    if keep_last == 0 or len(text) <= keep_last * 2:
        return "****"
    return "*" * (len(text) - keep_last) + text[-keep_last:]


def _normalise_key(key: Any) -> str:
    return str(key).strip().lower().replace("-", "_")


def _normalised(keys: Iterable[str]) -> frozenset[str]:
    # The default set is normalised once: scrub_mapping runs several times per request.
    if keys is DEFAULT_SENSITIVE_KEYS:
        return _DEFAULT_KEYS_NORMALISED
    return frozenset(_normalise_key(key) for key in keys)


_DEFAULT_KEYS_NORMALISED = frozenset(_normalise_key(key) for key in DEFAULT_SENSITIVE_KEYS)


def _is_sensitive(key: Any, normalised_keys: frozenset[str]) -> bool:
    name = _normalise_key(key)
    return name in normalised_keys or any(fragment in name for fragment in _SENSITIVE_FRAGMENTS)


def is_sensitive_key(key: Any, sensitive_keys: Iterable[str] = DEFAULT_SENSITIVE_KEYS) -> bool:
    """Whether a mapping key (or log ``extra`` name) names a value that must never be shown.

    Matching ignores case and treats ``-`` as ``_`` so header-style and
    WSGI-style spellings of the same name agree.
    """
    if sensitive_keys is DEFAULT_SENSITIVE_KEYS:
        return _is_sensitive(key, DEFAULT_SENSITIVE_KEYS)
    return _is_sensitive(key, frozenset(map(_normalise_key, sensitive_keys)))


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    # Scrub a margin past the cut so a card straddling the limit is still
    # recognised whole before it is chopped in half.
    return scrub_text(text[: limit + 64])[:limit] + _TRUNCATED_SUFFIX


def _scrub_scalar(value: Any, limit: int) -> Any:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        return _truncate(value, limit) if len(value) > limit else scrub_text(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10**12:
        # A PAN stored as an integer is still a PAN.
        text = str(value)
        scrubbed = scrub_text(text)
        return value if scrubbed == text else scrubbed
    return value


def _scrub(value: Any, keys: frozenset[str], depth: int, max_depth: int, limit: int) -> Any:
    if not isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return _scrub_scalar(value, limit)
    if depth >= max_depth:
        return _DEPTH_PLACEHOLDER
    if isinstance(value, Mapping):
        result: dict[Any, Any] = {}
        for key, item in value.items():
            new_key = scrub_text(key) if isinstance(key, str) else key
            if _is_sensitive(key, keys):
                result[new_key] = None if item is None else REDACTED
            else:
                result[new_key] = _scrub(item, keys, depth + 1, max_depth, limit)
        return result
    items = [_scrub(item, keys, depth + 1, max_depth, limit) for item in value]
    return tuple(items) if isinstance(value, tuple) else items


def scrub_mapping(
    data: Any,
    sensitive_keys: Iterable[str] = DEFAULT_SENSITIVE_KEYS,
    *,
    max_depth: int = MAX_DEPTH,
    max_string_length: int = MAX_STRING_LENGTH,
) -> Any:
    """Return a scrubbed deep copy of dicts/lists/tuples; the input is never mutated.

    Values under sensitive keys become ``[redacted]`` (``None`` stays ``None`` so
    "no password set" remains visible); other strings, and string keys, go
    through ``scrub_text``. Sets come back as lists and other mappings as dicts,
    because the result is meant for serialisation, not for further use.
    Objects of unknown type are returned as-is: callers that will ``str()``
    them must scrub that text themselves. Depth is bounded, which also stops
    self-referencing structures.
    """
    return _scrub(data, _normalised(sensitive_keys), 0, max_depth, max_string_length)
