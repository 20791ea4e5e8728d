"""Step-up (RFC 9470) on every money-moving endpoint, per currency, through the real API stack.

The token comes from the real authorization-code flow, so the step-up check
finds the login behind it (`OAuthSession`); "stepping up" stamps that login's
`mfa_verified_at`, as the authorization endpoint does after a second factor.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import OAuthSession
from accounts.oauth.row_macs import oauth_session_macs_store
from accounts.tests.oauth_helpers import exchange_code, mobile_client, obtain_code, pkce_pair
from fintech.models import IdempotencyRecord
from ledger.models import Hold, LedgerAccount, Transfer
from ledger.services import hold_create, transfer_create
from ledger.tests.conftest import LedgerSnapshot
from ledger.tests.factories import TEST_ACTOR, account, customer, generous_limits

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
    client.force_login(alice)
    app = mobile_client()
    verifier, challenge = pkce_pair()
    code = obtain_code(client, app, challenge, scope=SCOPES)["code"]
    token = exchange_code(client, app, code, verifier).json()["access_token"]
    client.logout()  # from here on only the bearer token speaks for alice

    def call(path: str, body: dict | None = None, key: str | None = None):
        return client.post(
            path,
            data=json.dumps(body or {}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
            HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex,
        )

    return call


def step_up() -> None:
    """What a second factor at the authorization endpoint leaves behind for the token's login."""
    assert OAuthSession.objects.update(mfa_verified_at=timezone.now()) == 1
    oauth_session_macs_store(OAuthSession.objects.all())  # the server MACs the sessions it writes (issue 12)


def assert_step_up_challenge(response) -> None:
    assert response.status_code == 401, response.content
    assert response.json()["code"] == "step_up_required"
    assert 'error="insufficient_user_authentication"' in response["WWW-Authenticate"]


def transfer_body(source: LedgerAccount, destination: LedgerAccount, amount: str) -> dict:
    return {
        "from_account": str(source.public_id),
        "to_account": str(destination.public_id),
        "amount": amount,
        "currency": source.currency,
    }


@pytest.mark.parametrize(
    ("currency", "at_threshold", "above"),
    [("EUR", "1000.00", "1000.01"), ("JPY", "150000", "150001"), ("KWD", "300.000", "300.001")],
)
def test_a_transfer_needs_step_up_only_above_its_currencys_threshold(api, alice, currency, at_threshold, above):
    source, destination = account(owner=alice, currency=currency, balance_minor=10**9), account(currency=currency)

    assert api("/v1/transfers", transfer_body(source, destination, at_threshold)).status_code == 201
    before = LedgerSnapshot.take()
    assert_step_up_challenge(api("/v1/transfers", transfer_body(source, destination, above)))
    assert LedgerSnapshot.take() == before


def test_a_currency_without_a_threshold_needs_step_up_for_the_smallest_amount(api, alice, settings):
    settings.STEP_UP_THRESHOLDS_MINOR = {"EUR": 1_000_00}
    source, destination = account(owner=alice, currency="USD", balance_minor=10_000), account(currency="USD")

    assert_step_up_challenge(api("/v1/transfers", transfer_body(source, destination, "0.01")))
    step_up()
    assert api("/v1/transfers", transfer_body(source, destination, "0.01")).status_code == 201


def test_holds_and_credit_charges_above_the_threshold_need_step_up(api, alice):
    source = account(owner=alice, balance_minor=5_000_00)
    line = account(owner=alice, kind=LedgerAccount.Kind.CREDIT_LINE, credit_limit_minor=5_000_00)
    hold = {"account": str(source.public_id), "destination": str(account().public_id), "currency": "EUR"}
    charge = {"account": str(line.public_id), "currency": "EUR"}
    before = LedgerSnapshot.take()

    assert_step_up_challenge(api("/v1/holds", {**hold, "amount": "1000.01"}))
    assert_step_up_challenge(api("/v1/credit/charge", {**charge, "amount": "1000.01"}))
    assert LedgerSnapshot.take() == before
    assert api("/v1/holds", {**hold, "amount": "1000.00"}).status_code == 201
    assert api("/v1/credit/charge", {**charge, "amount": "1000.00"}).status_code == 201


@pytest.fixture
def received(alice):
    """1,500.00 EUR alice received: what she may refund."""
    payer = account(balance_minor=2_000_00)
    return transfer_create(
        from_public_id=payer.public_id,
        to_public_id=account(owner=alice).public_id,
        amount_minor=1_500_00,
        currency="EUR",
        reference="invoice 7",
        initiated_by=payer.owner,
        actor=TEST_ACTOR,
    )


def test_a_refund_above_the_threshold_needs_step_up_and_a_small_one_does_not(api, received):
    before = LedgerSnapshot.take()

    assert_step_up_challenge(api(f"/v1/transfers/{received.public_id}/reverse", {"amount": "1000.01", "reason": "x"}))
    assert_step_up_challenge(api(f"/v1/transfers/{received.public_id}/reverse", {"reason": "all of it"}))
    assert LedgerSnapshot.take() == before
    small = api(f"/v1/transfers/{received.public_id}/reverse", {"amount": "600.00", "reason": "part"})
    assert small.status_code == 201, small.content
    # What remains (900.00) is under the threshold: the full refund now passes without a second factor.
    assert api(f"/v1/transfers/{received.public_id}/reverse", {"reason": "the rest"}).status_code == 201


def test_a_refused_refund_is_not_replayed_after_stepping_up_with_the_same_key(api, received):
    body = {"amount": "1200.00", "reason": "returned goods"}

    refused = api(f"/v1/transfers/{received.public_id}/reverse", body, key="refund-1")
    step_up()
    retried = api(f"/v1/transfers/{received.public_id}/reverse", body, key="refund-1")
    again = api(f"/v1/transfers/{received.public_id}/reverse", body, key="refund-1")

    assert_step_up_challenge(refused)
    assert retried.status_code == 201, retried.content
    assert "Idempotent-Replayed" not in retried
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == retried.json()
    assert Transfer.objects.filter(kind=Transfer.Kind.REVERSAL).count() == 1
    assert IdempotencyRecord.objects.count() == 1


@pytest.fixture
def held(alice):
    """A 2,000.00 EUR hold a guest placed for alice's account: alice (the payee) captures it."""
    guest = account(balance_minor=3_000_00)
    return hold_create(
        account=guest,
        destination=account(owner=alice),
        amount_minor=2_000_00,
        currency="EUR",
        reference="hotel",
        expires_at=timezone.now() + timedelta(days=1),
        created_by=guest.owner,
        actor=TEST_ACTOR,
    )


def test_a_capture_above_the_threshold_needs_step_up_before_anything_moves(api, held):
    before = LedgerSnapshot.take()

    assert_step_up_challenge(api(f"/v1/holds/{held.public_id}/capture", {"amount": "1000.01"}))
    assert_step_up_challenge(api(f"/v1/holds/{held.public_id}/capture", {}))  # all of it: 2,000.00
    assert LedgerSnapshot.take() == before
    assert IdempotencyRecord.objects.count() == 0


def test_a_refused_capture_is_not_replayed_after_stepping_up_with_the_same_key(api, held):
    refused = api(f"/v1/holds/{held.public_id}/capture", {"amount": "1500.00"}, key="capture-1")
    step_up()
    retried = api(f"/v1/holds/{held.public_id}/capture", {"amount": "1500.00"}, key="capture-1")

    assert_step_up_challenge(refused)
    assert retried.status_code == 201, retried.content
    assert "Idempotent-Replayed" not in retried
    held.refresh_from_db()
    assert held.captured_minor == 1_500_00
    assert Hold.objects.count() == 1
