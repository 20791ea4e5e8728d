"""The one way a /v1 caller is identified: an OAuth 2.1 bearer token in the Authorization header.

The principal comes only from the verified token (never from a body or query
parameter: a token anywhere but the header is ignored, so the call is
unauthenticated). Tokens are stored as SHA-256 checksums (RFC 9700 token
storage), so the lookup is one indexed query joining the user, the user's
customer profile and the client; DOT's general-purpose oauthlib request
parsing is not needed on the resource server side. Failures are 401 with an
RFC 6750 challenge; the audit middleware records them as `auth.failed`.

The customer profile rides along in the same query because nearly every /v1
view asks "is this a customer?" (`accounts.permissions.IsCustomer`) and the
limits read it again: a second round trip per request for a row that is
already one LEFT JOIN away.
"""

from __future__ import annotations

from oauth2_provider.models import AccessToken
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from accounts.oauth.tokens import MAX_TOKEN_LENGTH, token_checksum

REALM = "fintech"


def bearer_token_find(raw: str) -> AccessToken | None:
    """`accounts.oauth.tokens.access_token_find`, with the user's customer profile joined in (None if it has none)."""
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        return None
    return (
        AccessToken.objects.select_related("user", "user__customer_profile", "application")
        .filter(token_checksum=token_checksum(raw))
        .first()
    )


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer":
            return None  # no bearer credential: anonymous, answered 401 without an error code
        token = bearer_token_find(raw.strip())
        if token is None or token.is_expired() or (token.user is not None and not token.user.is_active):
            request._request.bearer_error = "invalid_token"
            raise exceptions.AuthenticationFailed("The access token is invalid, expired or revoked.")
        return token.user, token

    def authenticate_header(self, request) -> str:
        error = getattr(request._request, "bearer_error", None)
        return f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
