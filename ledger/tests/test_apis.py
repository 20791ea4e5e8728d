"""The customer-facing ledger API, through the real middleware, auth and idempotency layers."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from django.utils import timezone

from accounts.tests.access_matrix import issue_token
from accounts.tests.oauth_helpers import mobile_client
from ledger.models import LedgerAccount, Posting, Transfer
from ledger.tests.factories import account, customer, generous_limits

pytestmark = pytest.mark.django_db
SCOPES = "accounts:read accounts:write transfers:read transfers:write"


@pytest.fixture(autouse=True)
def limits():
    generous_limits()


@pytest.fixture
def alice():
    return customer()


@pytest.fixture
def api(client, alice):
    token = issue_token(application=mobile_client(), user=alice, scope=SCOPES)

    def call(method: str, path: str, body: dict | None = None, key: str | None = "auto", **extra):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", **extra}
        if method != "GET" and key:
            headers["HTTP_IDEMPOTENCY_KEY"] = uuid.uuid4().hex if key == "auto" else key
        data = json.dumps(body) if body is not None else None
        return client.generic(method, path, data=data or "", content_type="application/json", **headers)

    return call


def test_open_an_account_and_list_it(api, alice):
    opened = api("POST", "/v1/accounts", {"currency": "eur"})
    listed = api("GET", "/v1/accounts")

    assert opened.status_code == 201
    assert opened.json()["currency"] == "EUR"
    assert opened.json()["available"] == "0.00"
    assert [a["id"] for a in listed.json()["results"]] == [opened.json()["id"]]


def test_a_transfer_moves_exact_money_and_shows_in_both_balances(api, alice):
    source = account(owner=alice, balance_minor=10_000)
    target = account()

    response = api(
        "POST",
        "/v1/transfers",
        {
            "from_account": str(source.public_id),
            "to_account": str(target.public_id),
            "amount": "12.34",
            "currency": "EUR",
            "reference": "rent",
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amount"], body["currency"], body["from_account"]) == ("12.34", "EUR", str(source.public_id))
    assert api("GET", f"/v1/accounts/{source.public_id}").json()["available"] == "87.66"
    target.refresh_from_db()
    assert target.posted_minor == 1234
    assert api("GET", f"/v1/transfers/{body['id']}").json()["reference"] == "rent"


def test_a_refused_transfer_is_a_problem_and_writes_nothing(api, alice):
    source = account(owner=alice, balance_minor=500)
    target = account()
    postings_before = Posting.objects.count()

    response = api(
        "POST",
        "/v1/transfers",
        {
            "from_account": str(source.public_id),
            "to_account": str(target.public_id),
            "amount": "5.01",
            "currency": "EUR",
        },
    )

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "insufficient_funds"
    assert Posting.objects.count() == postings_before
    source.refresh_from_db()
    assert (source.posted_minor, source.version) == (500, 1)


@pytest.mark.parametrize(
    ("amount", "currency"), [("12.345", "EUR"), ("-1.00", "EUR"), ("1e3", "EUR"), ("12.3", "JPY"), ("NaN", "EUR")]
)
def test_malformed_amounts_are_refused_before_anything_runs(api, alice, amount, currency):
    source = account(owner=alice, balance_minor=10_000, currency=currency)
    target = account(currency=currency)

    response = api(
        "POST",
        "/v1/transfers",
        {
            "from_account": str(source.public_id),
            "to_account": str(target.public_id),
            "amount": amount,
            "currency": currency,
        },
    )

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_amount"
    assert not Transfer.objects.filter(kind="transfer").exists()


@pytest.mark.parametrize("amount", [0.01, 1, 12345678901234567.89])
def test_an_amount_sent_as_a_json_number_is_refused_not_converted(api, alice, amount):
    """A JSON number is a float by the time it arrives: money is written as a decimal string."""
    source, target = account(owner=alice, balance_minor=10_000), account()

    response = api(
        "POST",
        "/v1/transfers",
        {
            "from_account": str(source.public_id),
            "to_account": str(target.public_id),
            "amount": amount,
            "currency": "EUR",
        },
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "amount"
    assert not Transfer.objects.filter(kind="transfer").exists()


def test_moving_money_from_someone_elses_account_is_a_404(api):
    stranger = account(balance_minor=10_000)

    response = api(
        "POST",
        "/v1/transfers",
        {
            "from_account": str(stranger.public_id),
            "to_account": str(account().public_id),
            "amount": "1.00",
            "currency": "EUR",
        },
    )

    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"
    assert str(stranger.public_id) not in response.content.decode()


def test_the_same_key_replays_and_moves_money_once(api, alice):
    source = account(owner=alice, balance_minor=10_000)
    body = {
        "from_account": str(source.public_id),
        "to_account": str(account().public_id),
        "amount": "1.00",
        "currency": "EUR",
    }

    first = api("POST", "/v1/transfers", body, key="pay-1")
    second = api("POST", "/v1/transfers", body, key="pay-1")
    other = api("POST", "/v1/transfers", {**body, "amount": "2.00"}, key="pay-1")
    missing = api("POST", "/v1/transfers", body, key=None)

    assert (first.status_code, second.status_code, other.status_code, missing.status_code) == (201, 201, 422, 400)
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    source.refresh_from_db()
    assert source.posted_minor == 9_900


def test_large_amounts_need_step_up(api, alice):
    source = account(owner=alice, balance_minor=500_000)

    response = api(
        "POST",
        "/v1/transfers",
        {
            "from_account": str(source.public_id),
            "to_account": str(account().public_id),
            "amount": "1000.01",
            "currency": "EUR",
        },
    )

    assert response.status_code == 401
    assert 'error="insufficient_user_authentication"' in response["WWW-Authenticate"]
    source.refresh_from_db()
    assert source.posted_minor == 500_000


def test_entries_balance_as_of_and_csv_statement(api, alice):
    source = account(owner=alice, balance_minor=10_000)
    before = timezone.now()
    api(
        "POST",
        "/v1/transfers",
        {
            "from_account": str(source.public_id),
            "to_account": str(account().public_id),
            "amount": "2.50",
            "currency": "EUR",
            "reference": "=cmd()",
        },
    )

    entries = api("GET", f"/v1/accounts/{source.public_id}/entries").json()
    as_of = api("GET", f"/v1/accounts/{source.public_id}/entries?as_of={before.isoformat().replace('+00:00', 'Z')}")
    statement = api("GET", f"/v1/accounts/{source.public_id}/statement.csv")

    assert [e["amount"] for e in entries["results"]] == ["-2.50", "100.00"]
    assert entries["results"][0]["balance_after"] == "97.50"
    assert as_of.json()["balance_as_of"]["balance"] == "100.00"
    assert statement["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(statement.streaming_content).decode())))
    assert len(rows) == 2
    assert not any(value.startswith("=") for row in rows for value in row.values())


def test_the_payer_holds_and_the_payee_captures_in_parts_then_voids(api, client, alice):
    source = account(owner=alice, balance_minor=10_000)
    merchant_user = customer()
    merchant = account(owner=merchant_user)
    merchant_token = issue_token(application=mobile_client(), user=merchant_user, scope=SCOPES)

    def as_merchant(path: str, body: dict | None = None):
        return client.post(
            path,
            data=json.dumps(body or {}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {merchant_token}",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        )

    hold = api(
        "POST",
        "/v1/holds",
        {
            "account": str(source.public_id),
            "destination": str(merchant.public_id),
            "amount": "30.00",
            "currency": "EUR",
        },
    ).json()
    by_payer = api("POST", f"/v1/holds/{hold['id']}/capture", {"amount": "10.00"})
    voided_by_payer = api("POST", f"/v1/holds/{hold['id']}/void")
    captured = as_merchant(f"/v1/holds/{hold['id']}/capture", {"amount": "10.00"})
    voided = as_merchant(f"/v1/holds/{hold['id']}/void")

    # The payer cannot capture its own hold (a two-step self-transfer) nor take back the promise.
    assert (by_payer.status_code, by_payer.json()["code"]) == (404, "hold_not_found")
    assert (voided_by_payer.status_code, voided_by_payer.json()["code"]) == (404, "hold_not_found")
    assert captured.status_code == 201
    assert voided.json()["status"] == "voided"
    balances = api("GET", f"/v1/accounts/{source.public_id}").json()
    assert (balances["posted"], balances["held"], balances["available"]) == ("90.00", "0.00", "90.00")


def test_credit_charge_against_a_credit_line(api, alice):
    line = account(owner=alice, kind=LedgerAccount.Kind.CREDIT_LINE, credit_limit_minor=50_000)

    charged = api("POST", "/v1/credit/charge", {"account": str(line.public_id), "amount": "120.00", "currency": "EUR"})
    too_much = api("POST", "/v1/credit/charge", {"account": str(line.public_id), "amount": "400.00", "currency": "EUR"})

    assert charged.status_code == 201
    assert too_much.json()["code"] == "insufficient_funds"
    assert api("GET", f"/v1/accounts/{line.public_id}").json()["available_to_spend"] == "380.00"


def test_only_the_payee_may_refund(api, client, alice):
    payer = customer()
    paid = account(owner=payer, balance_minor=10_000)
    mine = account(owner=alice)
    from ledger.services import transfer_create
    from ledger.tests.factories import TEST_ACTOR

    transfer = transfer_create(
        from_public_id=paid.public_id,
        to_public_id=mine.public_id,
        amount_minor=1_000,
        currency="EUR",
        reference="x",
        initiated_by=payer,
        actor=TEST_ACTOR,
    )

    refund = api("POST", f"/v1/transfers/{transfer.public_id}/reverse", {"amount": "4.00", "reason": "partial refund"})

    assert refund.status_code == 201, refund.content
    assert refund.json()["kind"] == "reversal"
    paid.refresh_from_db()
    assert paid.posted_minor == 9_400
