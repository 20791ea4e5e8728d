"""What a customer can accumulate is bounded (issue 13): LEDGER_MAX_ACCOUNTS_PER_CUSTOMER accounts not closed,
exact under racing opens, and the list pages through all of them. Cost: about 2 s."""

from __future__ import annotations

import uuid

import pytest

from accounts.tests.access_matrix import issue_token
from accounts.tests.oauth_helpers import mobile_client
from ledger.exceptions import AccountLimitReached
from ledger.models import LedgerAccount
from ledger.services import account_open, account_status_change
from ledger.tests.factories import TEST_ACTOR, customer
from ledger.tests.test_concurrency import run_threads

SCOPES = "accounts:read accounts:write"


@pytest.mark.django_db(transaction=True)
def test_racing_opens_never_pass_the_cap(settings):
    settings.LEDGER_MAX_ACCOUNTS_PER_CUSTOMER = 3
    owner = customer()

    def open_one(_):
        try:
            account_open(owner=owner, currency="EUR", actor=TEST_ACTOR)
        except AccountLimitReached:
            return "refused"
        return "opened"

    outcomes = run_threads(12, open_one)
    assert sorted(outcomes).count("opened") == 3
    assert LedgerAccount.objects.filter(owner=owner).count() == 3


@pytest.mark.django_db
def test_the_api_answers_422_at_the_cap_a_closed_account_frees_a_place_and_the_list_pages(client, settings):
    settings.LEDGER_MAX_ACCOUNTS_PER_CUSTOMER = 3
    owner = customer()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issue_token(application=mobile_client(), user=owner, scope=SCOPES)}"}

    def open_eur():
        return client.post(
            "/v1/accounts", {"currency": "EUR"}, content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex, **auth,
        )  # fmt: skip

    assert [open_eur().status_code for _ in range(3)] == [201, 201, 201]
    refused = open_eur()
    assert (refused.status_code, refused.json()["code"]) == (422, "account_limit_reached")
    assert LedgerAccount.objects.filter(owner=owner).count() == 3

    account_status_change(
        account=LedgerAccount.objects.filter(owner=owner).first(), status="closed", reason="customer asked",
        actor=TEST_ACTOR,
    )  # fmt: skip
    assert open_eur().status_code == 201

    first = client.get("/v1/accounts?page_size=3", **auth).json()
    assert len(first["results"]) == 3 and first["next"]
    second = client.get(first["next"], **auth).json()
    assert len(second["results"]) == 1 and second["next"] is None
    listed = [a["id"] for a in first["results"] + second["results"]]
    assert listed == [str(a.public_id) for a in LedgerAccount.objects.filter(owner=owner).order_by("id")]
