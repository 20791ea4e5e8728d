"""OpenAPI description of how /v1 is secured: OAuth 2.1 (authorization code + PKCE, client credentials)."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "oauth2"

    def get_security_definition(self, auto_schema):
        return {
            "type": "oauth2",
            "description": "Tokens only in the Authorization header. PKCE with S256 is required.",
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": "/o/authorize/",
                    "tokenUrl": "/o/token/",
                    "refreshUrl": "/o/token/",
                    "scopes": settings.OAUTH_SCOPES,
                },
                "clientCredentials": {"tokenUrl": "/o/token/", "scopes": settings.OAUTH_SCOPES},
            },
        }

    def get_security_requirement(self, auto_schema):
        view = auto_schema.view
        from accounts.permissions import required_scopes_for

        return {self.name: required_scopes_for(view, auto_schema.method) or []}
