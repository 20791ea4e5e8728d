"""Every door to "money leaves a customer" has the same lock: each /v1 route, through the real HTTP stack.

Two controls, tried on every money-moving route as the customer behind the token:
a blocked customer (refused with `account_not_active`, except the refund back along the original
path, the one named exception) and a spent daily limit (refused with `limit_daily_exceeded`, except
the capture, whose hold counted when it reserved the money). Each refusal writes no money row and
leaves an `api.call` audit record with its status.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import CustomerProfile
from accounts.tests.access_matrix import issue_token
from accounts.tests.oauth_helpers import mobile_client
from audit.models import AuditEvent
from ledger.models import SpendCounter
from ledger.services import hold_create
from ledger.tests.conftest import LedgerSnapshot
from ledger.tests.factories import TEST_ACTOR, account, customer, no_rules, send

pytestmark = pytest.mark.django_db
SCOPES = "accounts:read accounts:write transfers:read transfers:write"


@pytest.fixture
def doors(client):
    """alice's five doors, with everything each needs set up before the control applies."""
    no_rules()
    alice, bob = customer(), customer()
    current = account(owner=alice, balance_minor=20_000_00)
    line = account(owner=alice, kind="credit_line", credit_limit_minor=20_000_00)
    bobs = account(owner=bob, balance_minor=20_000_00)
    received = send(bobs, current, 100_00)  # what alice may refund
    to_alice = hold_create(
        account=bobs,
        destination=current,
        amount_minor=100_00,
        currency="EUR",
        reference="booking",
        expires_at=timezone.now() + timedelta(days=1),
        created_by=bob,
        actor=TEST_ACTOR,
    )  # what alice, the payee, may capture
    token = issue_token(application=mobile_client(), user=alice, scope=SCOPES)
    money = {"amount": "10.00", "currency": "EUR"}
    routes = {
        "transfer": (
            "/v1/transfers",
            {**money, "from_account": str(current.public_id), "to_account": str(bobs.public_id)},
        ),
        "hold": ("/v1/holds", {**money, "account": str(current.public_id), "destination": str(bobs.public_id)}),
        "credit_charge": ("/v1/credit/charge", {**money, "account": str(line.public_id)}),
        "capture": (f"/v1/holds/{to_alice.public_id}/capture", {"amount": "10.00"}),
        "refund": (f"/v1/transfers/{received.public_id}/reverse", {"amount": "10.00", "reason": "refund"}),
    }

    def post(door: str):
        path, body = routes[door]
        return client.post(
            path,
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        )

    def spend_the_day() -> None:
        """The seeded standard limit: 10,000.00 EUR a day, sent for real in two 5,000.00 transfers."""
        send(current, bobs, 5_000_00)
        send(current, bobs, 5_000_00)

    post.alice, post.spend_the_day = alice, spend_the_day
    return post


def _refused_on_record(response, code: str) -> None:
    assert (response.status_code, response.json()["code"]) == (422, code)
    record = AuditEvent.objects.filter(event_type="api.call").latest("id")
    assert (record.outcome, record.payload["status"]) == ("failure", 422)


@pytest.mark.parametrize("door", ["transfer", "hold", "credit_charge", "capture"])
def test_a_blocked_customer_is_refused_at_every_door(doors, door):
    CustomerProfile.objects.filter(user=doors.alice).update(status="blocked")
    before = LedgerSnapshot.take()

    response = doors(door)

    _refused_on_record(response, "account_not_active")
    assert LedgerSnapshot.take() == before


def test_a_blocked_customer_may_still_refund_along_the_original_path(doors):
    CustomerProfile.objects.filter(user=doors.alice).update(status="blocked")

    assert doors("refund").status_code == 201


@pytest.mark.parametrize("door", ["transfer", "hold", "credit_charge", "refund"])
def test_a_spent_daily_limit_is_refused_at_every_door(doors, door):
    doors.spend_the_day()
    before = LedgerSnapshot.take()

    response = doors(door)

    _refused_on_record(response, "limit_daily_exceeded")
    assert LedgerSnapshot.take() == before


def test_a_capture_is_not_counted_again_when_the_payees_limit_is_spent(doors):
    doors.spend_the_day()

    assert doors("capture").status_code == 201
    assert SpendCounter.objects.get(owner=doors.alice).outgoing_minor == 10_000_00
