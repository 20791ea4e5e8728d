"""Who may call what: one table every /v1 endpoint must appear in.

For each endpoint acting on a customer's object the matrix is:

    owner          -> 2xx   the object's owner, right scope
    other customer -> 404   another customer's token: the object does not exist for them
    other client   -> 404   a partner's client-credentials token with every scope
    no token       -> 401
    wrong scope    -> 403   the owner, with a token lacking the endpoint's scope

Endpoints that act on the caller itself (no object id) have their own row.
`test_access_matrix.py` runs every row, and fails when a /v1 route is in no
list, so a new endpoint cannot ship without its access test.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, set_token_value

from accounts.tests.oauth_helpers import mobile_client, partner_client

ALL_SCOPES = "openid profile:read accounts:read accounts:write transfers:read transfers:write cards:read cards:write"


@dataclass(frozen=True)
class ObjectEndpoint:
    """`path` has one `{id}`; `make_object(owner)` creates an object of the owner and returns that id."""

    route: str  # the URL pattern, e.g. "v1/accounts/<uuid:account_id>"
    method: str
    path: str
    scope: str
    make_object: Callable
    body: Callable[[], dict] = field(default=lambda: {})
    success: int = 200


@dataclass(frozen=True)
class PrincipalEndpoint:
    """Acts on the caller itself: owner -> success, a client-only token -> 403."""

    route: str
    method: str
    path: str
    scope: str
    body: Callable[[], dict] = field(default=lambda: {})
    success: int = 200


OBJECT_ENDPOINTS: list[ObjectEndpoint] = []
PRINCIPAL_ENDPOINTS: list[PrincipalEndpoint] = [
    PrincipalEndpoint(route="v1/me", method="GET", path="/v1/me", scope="profile:read"),
]
# Routes outside the matrix, each with the reason.
EXEMPT_ROUTES: dict[str, str] = {
    "v1/schema": "public OpenAPI document",
    "v1/docs": "public API documentation page",
    "v1/partner/whoami": "token + API key; its own matrix is in accounts/tests/test_api_keys.py",
}


def issue_token(*, application: Application, user, scope: str) -> str:
    raw = secrets.token_urlsafe(32)
    token = AccessToken(user=user, application=application, scope=scope, expires=timezone.now() + timedelta(minutes=10))
    set_token_value(token, raw)
    token.save()
    return raw


class Principals:
    """The five callers of the matrix, built once per test."""

    def __init__(self, owner, other_customer):
        self.owner = owner
        self.other_customer = other_customer
        self.app = mobile_client()
        partner, _ = partner_client()
        self.partner = partner

    def token(self, who: str, scope: str) -> str | None:
        if who == "owner":
            return issue_token(application=self.app, user=self.owner, scope=ALL_SCOPES)
        if who == "other_customer":
            return issue_token(application=self.app, user=self.other_customer, scope=ALL_SCOPES)
        if who == "other_client":
            return issue_token(application=self.partner, user=None, scope=ALL_SCOPES)
        if who == "wrong_scope":
            remaining = " ".join(s for s in ALL_SCOPES.split() if s != scope)
            return issue_token(application=self.app, user=self.owner, scope=remaining)
        return None  # no token


def call(client, method: str, path: str, token: str | None, body: dict):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    if method in ("POST", "PATCH", "DELETE", "PUT"):
        headers["HTTP_IDEMPOTENCY_KEY"] = secrets.token_hex(16)
    return client.generic(method, path, data=json.dumps(body), content_type="application/json", **headers)
