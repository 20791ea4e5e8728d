"""The one way a /v1 caller is identified: an OAuth 2.1 bearer token in the Authorization header.

The principal comes only from the verified token (never from a body or query
parameter). Tokens in a query string are refused by DOT's RFC 9700 transport
gate. Failures are 401 with an RFC 6750 challenge; the audit middleware
records them as `auth.failed` with the request id.
"""

from __future__ import annotations

from oauth2_provider.contrib.rest_framework import OAuth2Authentication


class BearerTokenAuthentication(OAuth2Authentication):
    www_authenticate_realm = "fintech"

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        if user is not None and not user.is_active:
            return None  # a deactivated person's outstanding tokens die with the account
        return user, token
