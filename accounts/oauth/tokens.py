"""Finding DOT tokens by what a client presents: they are stored as SHA-256 checksums (RFC 9700)."""

from __future__ import annotations

import hashlib

from oauth2_provider.models import AccessToken

MAX_TOKEN_LENGTH = 512


def token_checksum(raw: str) -> str:
    """The checksum DOT stores in `token_checksum` for a raw token."""
    return hashlib.sha256(raw.encode()).hexdigest()


def access_token_find(raw: str) -> AccessToken | None:
    """The access token (with its user and client) for a presented value, or None; one indexed query."""
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        return None
    return AccessToken.objects.select_related("user", "application").filter(token_checksum=token_checksum(raw)).first()
