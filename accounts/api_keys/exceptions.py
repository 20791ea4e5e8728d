"""Domain errors of partner API keys. Details never contain a key or part of its secret."""

from __future__ import annotations

from fintech.problems import DomainError


class InvalidApiKey(DomainError):
    """The call's X-API-Key is missing, unknown, expired, revoked, another client's, or lacks a scope.

    One code and one message for every reason, so a caller cannot probe which
    keys exist; the reason is in the audit trail (`auth.invalid_api_key`).
    """

    status = 401
    code = "invalid_api_key"
    title = "API key missing or not valid"
    # RFC 9110 §15.5.2: a 401 carries a challenge. The API key rides on top of the bearer token.
    www_authenticate = 'Bearer realm="fintech"'

    def __init__(self, detail: str | None = None, **kwargs):
        super().__init__(detail, headers={"WWW-Authenticate": self.www_authenticate}, **kwargs)


class ApiKeyClientNotEligible(DomainError):
    status = 400
    code = "api_key_client_not_eligible"
    title = "API keys are only issued to confidential clients using the client credentials grant"


class ApiKeyScopesInvalid(DomainError):
    status = 400
    code = "api_key_scopes_invalid"
    title = "API key scopes must be a non-empty subset of the platform's OAuth scopes"


class ApiKeyLifetimeInvalid(DomainError):
    status = 400
    code = "api_key_lifetime_invalid"
    title = "API keys expire after 1 to 365 days"


class ApiKeyNameInvalid(DomainError):
    status = 400
    code = "api_key_name_invalid"
    title = "An API key needs a name of at most 100 characters"


class ApiKeyRevokeReasonRequired(DomainError):
    status = 400
    code = "api_key_revoke_reason_required"
    title = "Revoking an API key needs a reason of at most 500 characters"


class ApiKeyNotFound(DomainError):
    status = 404
    code = "api_key_not_found"
    title = "No API key has this prefix"


class ApiKeyAlreadyRevoked(DomainError):
    status = 409
    code = "api_key_already_revoked"
    title = "This API key is already revoked"
