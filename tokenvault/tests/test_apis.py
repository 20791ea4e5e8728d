"""POST /v1/vault/detokenize: who may read values in clear, how many, and what is recorded (ADR 0012).

Calls that reach the vault go to the real vault role process (`vault_live`).
"""

from __future__ import annotations

import base64
import json
import threading
from urllib.parse import urlencode

import pytest
from django.test import Client

from accounts.api_keys.services import partner_api_key_issue
from accounts.models import OAuthClientPolicy
from accounts.oauth.clients import oauth_client_register_partner
from accounts.services import customer_create
from accounts.tests.access_matrix import ALL_SCOPES, issue_token
from accounts.tests.oauth_helpers import mobile_client
from audit.models import AuditEvent
from audit.services.events import Actor
from tokenvault.client import vault_client
from tokenvault.exceptions import DetokenizeLimitUnavailable, DetokenizeRateLimited
from tokenvault.quota import detokenize_quota_take
from tokenvault.tests.conftest import MASTERCARD, VISA

LIVE = pytest.mark.django_db(transaction=True, databases=["default", "vault"])
SYSTEM = Actor.system("test")
URL = "/v1/vault/detokenize"


class Partner:
    """A partner server: confidential client, its policy, a vault:detokenize token and an API key."""

    def __init__(self, *, token_types: list[str], scope: str = "vault:detokenize"):
        self.application, self.secret = oauth_client_register_partner(
            name="Card processor", can_introspect=False, actor=SYSTEM
        )
        OAuthClientPolicy.objects.filter(application=self.application).update(detokenize_token_types=token_types)
        self.token = issue_token(application=self.application, user=None, scope=scope)
        _, self.api_key = partner_api_key_issue(
            application=self.application, name="detokenizer", scopes=scope, expires_in_days=30, actor=SYSTEM
        )

    @property
    def client_id(self) -> str:
        return self.application.client_id


def detokenize(body: dict, *, token: str | None, api_key: str | None = None):
    headers = {}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if api_key:
        headers["HTTP_X_API_KEY"] = api_key
    return Client().post(URL, data=json.dumps(body), content_type="application/json", **headers)


def vaulted(token_type: str, value: str) -> str:
    return vault_client().tokenize(token_type=token_type, value=value, actor=SYSTEM).token


# --- the permission matrix -----------------------------------------------------------------


@pytest.mark.django_db
def test_no_token_is_401():
    response = detokenize({"tokens": ["tok_card_x"], "purpose": "kyc_review"}, token=None)

    assert response.status_code == 401


@pytest.mark.django_db
def test_a_customer_token_is_403_insufficient_scope():
    customer = customer_create(email="detok.customer@example.com", password=None)
    token = issue_token(application=mobile_client(), user=customer, scope=ALL_SCOPES)

    response = detokenize({"tokens": ["tok_card_x"], "purpose": "kyc_review"}, token=token)

    assert (response.status_code, response.json()["code"]) == (403, "insufficient_scope")


@pytest.mark.django_db
def test_a_token_bound_to_an_end_user_never_detokenizes_even_with_the_scope():
    partner = Partner(token_types=["card"])
    customer = customer_create(email="detok.bound@example.com", password=None)
    bound = issue_token(application=partner.application, user=customer, scope="vault:detokenize")

    response = detokenize({"tokens": ["tok_card_x"], "purpose": "kyc_review"}, token=bound, api_key=partner.api_key)

    assert (response.status_code, response.json()["code"]) == (403, "vault_detokenize_forbidden")


@pytest.mark.django_db
def test_a_partner_without_its_api_key_is_401():
    partner = Partner(token_types=["card"])

    response = detokenize({"tokens": ["tok_card_x"], "purpose": "kyc_review"}, token=partner.token)

    assert (response.status_code, response.json()["code"]) == (401, "invalid_api_key")


@pytest.mark.django_db
def test_a_partner_whose_policy_lists_no_type_is_403_before_the_vault_is_asked(vault_down):
    partner = Partner(token_types=[])

    response = detokenize(
        {"tokens": ["tok_card_x"], "purpose": "kyc_review"}, token=partner.token, api_key=partner.api_key
    )

    # The vault is down: a 403 (not a 503) proves the refusal came first.
    assert (response.status_code, response.json()["code"]) == (403, "vault_detokenize_forbidden")


@LIVE
def test_a_partner_without_the_tokens_type_is_403_and_the_vault_audits_the_denial(vault_live):
    partner = Partner(token_types=["card"])
    national_id = vaulted("national_id", "QQ123456C")

    response = detokenize(
        {"tokens": [national_id], "purpose": "kyc_review"}, token=partner.token, api_key=partner.api_key
    )

    assert (response.status_code, response.json()["code"]) == (403, "vault_detokenize_forbidden")
    denial = AuditEvent.objects.get(object_id=national_id, event_type="vault.detokenize")
    assert (denial.outcome, denial.purpose, denial.actor_client) == ("denied", "kyc_review", partner.client_id)
    assert not AuditEvent.objects.filter(object_id=national_id, event_type="pii.read").exists()


@LIVE
def test_a_partner_with_the_type_reads_the_values_and_each_read_is_audited_with_its_purpose(vault_live):
    partner = Partner(token_types=["card"])
    tokens = [vaulted("card", VISA), vaulted("card", MASTERCARD)]

    response = detokenize(
        {"tokens": tokens, "purpose": "dispute_resolution", "reason": "case 4411"},
        token=partner.token,
        api_key=partner.api_key,
    )

    assert response.status_code == 200, response.content[:300]
    assert response.json() == {"values": {tokens[0]: VISA, tokens[1]: MASTERCARD}}
    assert response["Cache-Control"] == "no-store"
    reads = AuditEvent.objects.filter(object_id__in=tokens, event_type="pii.read").order_by("id")
    assert [(e.object_id, e.purpose, e.actor_client, e.payload["reason"]) for e in reads] == [
        (tokens[0], "dispute_resolution", partner.client_id, "case 4411"),
        (tokens[1], "dispute_resolution", partner.client_id, "case 4411"),
    ]
    # The API call's own record keeps field names only, never a value.
    call = AuditEvent.objects.filter(event_type="api.call", actor_client=partner.client_id).latest("id")
    assert VISA not in json.dumps(call.payload) and call.payload["response"]["fields"] == ["values"]


@LIVE
def test_the_vault_being_down_is_503_vault_unavailable(vault_down):
    partner = Partner(token_types=["card"])

    response = detokenize(
        {"tokens": ["tok_card_x"], "purpose": "kyc_review"}, token=partner.token, api_key=partner.api_key
    )

    assert (response.status_code, response.json()["code"]) == (503, "vault_unavailable")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tokens": [], "purpose": "kyc_review"}, "tokens"),
        ({"tokens": [f"tok_card_{i}" for i in range(4)], "purpose": "kyc_review"}, "tokens"),
        ({"tokens": ["tok_card_x"], "purpose": "curiosity"}, "purpose"),
        ({"tokens": ["tok_card_x"]}, "purpose"),
    ],
)
def test_invalid_requests_are_400_and_cost_nothing(settings, body, field):
    settings.VAULT_DETOKENIZE_MAX_TOKENS = 3
    settings.VAULT_DETOKENIZE_RATE = "1/1h"
    partner = Partner(token_types=["card"])

    response = detokenize(body, token=partner.token, api_key=partner.api_key)

    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {field}
    assert detokenize_quota_take(client_id=partner.client_id, values=1) == 1  # the whole window is still free


# --- the rate limit: values, not calls --------------------------------------------------


@pytest.mark.django_db
def test_values_not_calls_are_counted_and_the_refusal_says_when_to_retry(settings, vault_down):
    settings.VAULT_DETOKENIZE_RATE = "5/1h"
    partner = Partner(token_types=["card"])
    three = {"tokens": ["tok_card_a", "tok_card_b", "tok_card_c"], "purpose": "kyc_review"}

    first = detokenize(three, token=partner.token, api_key=partner.api_key)  # counted, then the vault is down
    second = detokenize(three, token=partner.token, api_key=partner.api_key)

    assert first.status_code == 503
    assert (second.status_code, second.json()["code"]) == (429, "vault_detokenize_rate_limited")
    assert 3590 <= int(second["Retry-After"]) <= 3600
    assert (second.json()["limit"], second.json()["window_seconds"]) == (5, 3600)


def test_racing_threads_never_release_more_values_than_the_limit(settings):
    settings.VAULT_DETOKENIZE_RATE = "10/1h"
    client_id = f"race-{threading.get_ident()}-{id(settings)}"
    start = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def take() -> None:
        start.wait()
        try:
            detokenize_quota_take(client_id=client_id, values=3)
            outcome = "granted"
        except DetokenizeRateLimited:
            outcome = "limited"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=take) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["granted"] * 3 + ["limited"] * 17  # 9 values fit in 10; a 4th call would be 12


@pytest.mark.django_db
def test_redis_down_fails_closed_with_503(settings, redis_server, vault_down):
    partner = Partner(token_types=["card"])
    settings.REDIS_URL = redis_server.url
    redis_server.stop()

    response = detokenize(
        {"tokens": ["tok_card_x"], "purpose": "kyc_review"}, token=partner.token, api_key=partner.api_key
    )
    with pytest.raises(DetokenizeLimitUnavailable):
        detokenize_quota_take(client_id=partner.client_id, values=1)

    # The request limiter is the first lock that needs Redis: it refuses (fail closed) before the quota is asked.
    assert (response.status_code, response.json()["code"]) == (503, "rate_limit_unavailable")


# --- issuing the scope ---------------------------------------------------------------------


def _client_credentials(partner: Partner, scope: str):
    basic = base64.b64encode(f"{partner.client_id}:{partner.secret}".encode()).decode()
    return Client().post(
        "/o/token/",
        data=urlencode({"grant_type": "client_credentials", "scope": scope}),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )


@pytest.mark.django_db
def test_the_scope_is_issued_only_to_clients_whose_policy_lists_token_types():
    allowed = Partner(token_types=["national_id"])
    not_allowed = Partner(token_types=[])

    granted = _client_credentials(allowed, "vault:detokenize")
    refused = _client_credentials(not_allowed, "vault:detokenize")
    other_scope = _client_credentials(not_allowed, "accounts:read")

    assert (granted.status_code, granted.json()["scope"]) == (200, "vault:detokenize")
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_scope")
    assert (other_scope.status_code, other_scope.json()["scope"]) == (200, "accounts:read")
