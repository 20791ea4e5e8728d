"""The API key layer of partner authentication, as a DRF permission.

Runs after `HasRequiredScopes`, so a valid bearer token with the view's scopes
is already established. The key must then be present, known, unexpired,
unrevoked, belong to the token's own client, and hold the view's scopes too.
Every refusal is one 401 `invalid_api_key` for the caller and one
`auth.invalid_api_key` audit event with the reason for the operators; the
audit middleware then records no second, generic `auth.failed` for the same
401 (`SECURITY_EVENT_RECORDED`), so each refusal has exactly one event type.
A key presented without a valid bearer token never reaches this layer: that
call is refused by authentication and recorded as `auth.failed`.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from accounts.api_keys.exceptions import InvalidApiKey
from accounts.api_keys.selectors import partner_api_key_check, partner_api_key_last_used_touch
from accounts.api_keys.services import OBJECT_TYPE
from accounts.models import PartnerApiKey
from accounts.permissions import required_scopes_for
from audit.middleware import SECURITY_EVENT_RECORDED
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record

API_KEY_HEADER = "X-API-Key"


def _refuse(request, *, reason: str, prefix: str = "", **details) -> InvalidApiKey:
    audit_event_record(
        event_type="auth.invalid_api_key",
        outcome=AuditEvent.Outcome.DENIED,
        actor=Actor.from_request(request),
        object_type=OBJECT_TYPE,
        object_id=prefix,  # never the presented value: only the prefix of a well-formed key
        payload={"reason": reason, "method": request.method, **details},
        request=request,
    )
    setattr(request._request, SECURITY_EVENT_RECORDED, True)
    if reason == "missing":
        return InvalidApiKey(f"This call needs the {API_KEY_HEADER} header as well as the bearer token.")
    return InvalidApiKey(f"The {API_KEY_HEADER} is not valid for this client and call.")


class PartnerApiKeyMatchesToken(BasePermission):
    """Accepts the call only with a usable key of the token's client holding the view's scopes.

    On success the key is available to the view as `request.partner_api_key`.
    """

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if token is None or getattr(token, "application_id", None) is None:
            raise exceptions.NotAuthenticated()  # the key is a second factor, never the only one
        required = required_scopes_for(view, request.method)
        if not required:
            raise exceptions.PermissionDenied("This operation is not available.")  # closed by default
        presented = request.headers.get(API_KEY_HEADER, "")
        if not presented:
            raise _refuse(request, reason="missing")
        check = partner_api_key_check(presented)  # from here on only the parsed prefix is used
        api_key: PartnerApiKey | None = check.api_key
        if api_key is None:
            raise _refuse(request, reason=check.reason, prefix=check.prefix)
        if api_key.application_id != token.application_id:
            # A key in the hands of another client is a leak: name the owner for the investigation.
            raise _refuse(
                request, reason="other_client", prefix=check.prefix, key_client_id=api_key.application.client_id
            )
        missing = sorted(set(required) - set(api_key.scopes.split()))
        if missing:
            raise _refuse(request, reason="scope", prefix=check.prefix, missing_scopes=missing)
        partner_api_key_last_used_touch(api_key=api_key)
        request.partner_api_key = api_key
        return True
