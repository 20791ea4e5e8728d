"""oauthlib's all-in-one OpenID Connect server, cut down to what OAuth 2.1 allows.

Removing the grants from the server (rather than only refusing them per
client) makes the token endpoint answer `unsupported_grant_type` for the
password and device grants, and the authorization endpoint
`unsupported_response_type` for implicit and hybrid flows, whatever client asks.
"""

from __future__ import annotations

from oauthlib.openid import Server

ALLOWED_RESPONSE_TYPES = frozenset({"code"})
ALLOWED_GRANT_TYPES = frozenset({"authorization_code", "client_credentials", "refresh_token"})


class OAuth21Server(Server):
    def __init__(self, request_validator, *args, **kwargs):
        super().__init__(request_validator, *args, **kwargs)
        for response_type in list(self._response_types):
            if response_type not in ALLOWED_RESPONSE_TYPES:
                del self._response_types[response_type]
        for grant_type in list(self._grant_types):
            if grant_type not in ALLOWED_GRANT_TYPES:
                del self._grant_types[grant_type]
