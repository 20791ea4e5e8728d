"""MACs of stored rows under a key the database does not hold (issue 12): one way to make and check them.

A row's values are written as compact JSON and MACed with `salted_hmac`
(HMAC-SHA256, keyed from the Django secret, a salt per kind of row). A stored
MAC is accepted under the current secret or any in `SECRET_KEY_FALLBACKS`,
so rotating the secret invalidates nothing. Used by access tokens, refresh
tokens, codes, OAuth sessions and password hashes (accounts).
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from django.conf import settings
from django.utils.crypto import salted_hmac


def row_mac_of(salt: str, values: list[Any], *, secret: str | None = None) -> str:
    """The MAC of `values` (JSON-serialisable, in a fixed order); `secret`: a fallback (default: the current)."""
    canonical = json.dumps(values, separators=(",", ":"))
    return salted_hmac(salt, canonical, secret=secret, algorithm="sha256").hexdigest()


def row_mac_matches(stored: str | None, salt: str, values: list[Any]) -> bool:
    """Whether `stored` is the MAC of `values` under the current secret or a fallback; an empty one never is."""
    if not stored:
        return False
    secrets = (None, *getattr(settings, "SECRET_KEY_FALLBACKS", ()))
    return any(hmac.compare_digest(stored, row_mac_of(salt, values, secret=secret)) for secret in secrets)
