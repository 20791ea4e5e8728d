"""Finding DOT tokens by what a client presents: they are stored as SHA-256 checksums (RFC 9700)."""

from __future__ import annotations

import hashlib

from oauth2_provider.models import AccessToken

from accounts.oauth.token_macs import access_token_mac_verified

MAX_TOKEN_LENGTH = 512


def token_checksum(raw: str) -> str:
    """The checksum DOT stores in `token_checksum` for a raw token."""
    return hashlib.sha256(raw.encode()).hexdigest()


def access_token_find(raw: str, *, lookup: str, request=None) -> AccessToken | None:
    """The access token (with its user and client) for a presented value, or None; one indexed query.

    None too when the row's MAC does not verify (issue 12): a row written with
    the database login alone is no token. `lookup` and `request` go with the
    audit event that refusal writes.
    """
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        return None
    token = (
        AccessToken.objects.select_related("user", "application", "fintech_mac")
        .filter(token_checksum=token_checksum(raw))
        .first()
    )
    if token is None:
        return None
    stored = getattr(token, "fintech_mac", None)  # no MAC row: None (the reverse accessor's miss is an AttributeError)
    return token if access_token_mac_verified(token, stored and stored.mac, lookup=lookup, request=request) else None
