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
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, set_token_value

from accounts.oauth.token_macs import access_token_macs_store
from accounts.tests.oauth_helpers import mobile_client, partner_client

ALL_SCOPES = " ".join([
    "openid",
    "profile:read",
    "profile:write",
    "accounts:read",
    "accounts:write",
    "transfers:read",
    "transfers:write",
    "cards:read",
    "cards:write",
])  # fmt: skip


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
    # Reaches the real vault process (root conftest `vault_live`): run in a transactional test.
    through_vault: bool = False


@dataclass(frozen=True)
class PrincipalEndpoint:
    """Acts on the caller itself: owner -> success, a client-only token -> 403."""

    route: str
    method: str
    path: str
    scope: str
    body: Callable[[], dict] = field(default=lambda: {})
    success: int = 200


def _ledger_account(owner) -> str:
    from ledger.tests.factories import account, generous_limits

    generous_limits()
    return str(account(owner=owner, balance_minor=10_000).public_id)


def _sent_transfer(owner) -> str:
    from ledger.services import transfer_create
    from ledger.tests.factories import TEST_ACTOR, account, generous_limits

    generous_limits()
    source = account(owner=owner, balance_minor=10_000)
    return str(
        transfer_create(
            from_public_id=source.public_id,
            to_public_id=account().public_id,
            amount_minor=500,
            currency="EUR",
            reference="matrix",
            initiated_by=owner,
            actor=TEST_ACTOR,
        ).public_id
    )


def _received_transfer(owner) -> str:
    from ledger.services import transfer_create
    from ledger.tests.factories import TEST_ACTOR, account, customer, generous_limits

    generous_limits()
    payer = customer()
    source = account(owner=payer, balance_minor=10_000)
    return str(
        transfer_create(
            from_public_id=source.public_id,
            to_public_id=account(owner=owner).public_id,
            amount_minor=500,
            currency="EUR",
            reference="matrix",
            initiated_by=payer,
            actor=TEST_ACTOR,
        ).public_id
    )


def _hold(owner) -> str:
    from datetime import timedelta

    from ledger.services import hold_create
    from ledger.tests.factories import TEST_ACTOR, account, generous_limits

    generous_limits()
    # A hold TO the owner's account: the payee is the one who captures or voids it.
    payer = account(balance_minor=10_000)
    return str(
        hold_create(
            account=payer,
            destination=account(owner=owner),
            amount_minor=500,
            currency="EUR",
            reference="matrix",
            expires_at=timezone.now() + timedelta(days=1),
            created_by=payer.owner,
            actor=TEST_ACTOR,
        ).public_id
    )


def _card(owner) -> str:
    """A card row whose token the vault process really holds (so the owner's delete can shred it)."""
    from accounts.models import PaymentCard
    from audit.services.events import Actor
    from tokenvault.client import vault_client

    vaulted = vault_client().tokenize(
        token_type="card", value="4242424242424242", actor=Actor.system("matrix"), metadata={}
    )
    card = PaymentCard.objects.create(
        owner=owner, token=vaulted.token, brand=vaulted.brand, last4=vaulted.last4, exp_month=12, exp_year=2035
    )
    return str(card.public_id)


def _card_row(owner) -> str:
    """A card row alone: reads never reach the vault."""
    from accounts.models import PaymentCard

    card = PaymentCard.objects.create(
        owner=owner, token="tok_card_" + secrets.token_hex(13).upper()[:26], brand="visa", last4="4242",
        exp_month=12, exp_year=2035,
    )  # fmt: skip
    return str(card.public_id)


OBJECT_ENDPOINTS: list[ObjectEndpoint] = [
    ObjectEndpoint("v1/accounts/<uuid:account_id>", "GET", "/v1/accounts/{id}", "accounts:read", _ledger_account),
    ObjectEndpoint(
        "v1/accounts/<uuid:account_id>/entries", "GET", "/v1/accounts/{id}/entries", "accounts:read", _ledger_account
    ),
    ObjectEndpoint(
        "v1/accounts/<uuid:account_id>/statement.csv",
        "GET",
        "/v1/accounts/{id}/statement.csv",
        "accounts:read",
        _ledger_account,
    ),
    ObjectEndpoint("v1/transfers/<uuid:transfer_id>", "GET", "/v1/transfers/{id}", "transfers:read", _sent_transfer),
    ObjectEndpoint(
        "v1/transfers/<uuid:transfer_id>/reverse",
        "POST",
        "/v1/transfers/{id}/reverse",
        "transfers:write",
        _received_transfer,
        body=lambda: {"reason": "refund"},
        success=201,
    ),
    ObjectEndpoint(
        "v1/holds/<uuid:hold_id>/capture", "POST", "/v1/holds/{id}/capture", "transfers:write", _hold, success=201
    ),
    ObjectEndpoint("v1/holds/<uuid:hold_id>/void", "POST", "/v1/holds/{id}/void", "transfers:write", _hold),
    ObjectEndpoint("v1/cards/<uuid:card_id>", "GET", "/v1/cards/{id}", "cards:read", _card_row),
    ObjectEndpoint(
        "v1/cards/<uuid:card_id>", "DELETE", "/v1/cards/{id}", "cards:write", _card, success=204, through_vault=True
    ),
]
PRINCIPAL_ENDPOINTS: list[PrincipalEndpoint] = [
    PrincipalEndpoint(route="v1/me", method="GET", path="/v1/me", scope="profile:read"),
    PrincipalEndpoint(route="v1/me/identity", method="GET", path="/v1/me/identity", scope="profile:read"),
    # An empty body: the owner passes every gate and is refused on content, before the vault is called
    # (the capture itself, with the real vault process, is in accounts/tests/test_identity_api.py).
    PrincipalEndpoint(route="v1/me/identity", method="PUT", path="/v1/me/identity", scope="profile:write", success=400),
    PrincipalEndpoint(route="v1/accounts", method="GET", path="/v1/accounts", scope="accounts:read"),
    PrincipalEndpoint(
        route="v1/accounts",
        method="POST",
        path="/v1/accounts",
        scope="accounts:write",
        body=lambda: {"currency": "EUR"},
        success=201,
    ),
    PrincipalEndpoint(
        route="v1/transfers",
        method="POST",
        path="/v1/transfers",
        scope="transfers:write",
        body=lambda: {
            "from_account": str(uuid.uuid4()),
            "to_account": str(uuid.uuid4()),
            "amount": "1.00",
            "currency": "EUR",
        },
        success=404,
    ),
    PrincipalEndpoint(
        route="v1/holds",
        method="POST",
        path="/v1/holds",
        scope="transfers:write",
        body=lambda: {
            "account": str(uuid.uuid4()),
            "destination": str(uuid.uuid4()),
            "amount": "1.00",
            "currency": "EUR",
        },
        success=404,
    ),
    PrincipalEndpoint(
        route="v1/credit/charge",
        method="POST",
        path="/v1/credit/charge",
        scope="transfers:write",
        body=lambda: {"account": str(uuid.uuid4()), "amount": "1.00", "currency": "EUR"},
        success=404,
    ),
    PrincipalEndpoint(route="v1/cards", method="GET", path="/v1/cards", scope="cards:read"),
    PrincipalEndpoint(
        route="v1/cards",
        method="POST",
        path="/v1/cards",
        scope="cards:write",
        # Luhn-invalid: the owner gets the number refused (400) before any vault call.
        body=lambda: {"number": "4242424242424241", "exp_month": 12, "exp_year": 2035, "holder": "M. Atrix"},
        success=400,
    ),
]
# Routes outside the matrix, each with the reason.
EXEMPT_ROUTES: dict[str, str] = {
    "v1/schema": "public OpenAPI document",
    "v1/docs": "public API documentation page",
    "v1/docs/oauth2-redirect.html": "public: hands Swagger UI's sign-in popup to its own static page",
    "v1/partner/whoami": "token + API key; its own matrix is in accounts/tests/test_api_keys.py",
    "v1/vault/detokenize": "client token + API key + client policy; its own matrix is in tokenvault/tests/test_apis.py",
}


def issue_token(*, application: Application, user, scope: str) -> str:
    raw = secrets.token_urlsafe(32)
    token = AccessToken(user=user, application=application, scope=scope, expires=timezone.now() + timedelta(minutes=10))
    set_token_value(token, raw)
    token.save()
    access_token_macs_store([token])  # as the authorization server does when it issues one
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
