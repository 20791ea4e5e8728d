"""Partner API keys: a second credential a partner server sends as `X-API-Key` next to its OAuth token.

Layered on purpose (seed 002): a stolen client secret or token alone does not
open the partner API, and neither does a stolen key. Keys are stored as
sha256 checksums, shown once at issue, scoped, expiring within a year, and
revocable by staff.
"""
