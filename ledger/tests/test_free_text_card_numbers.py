"""No card number in free text: the ledger API refuses it before the idempotency record, the services after.

A refusal through the API must store nothing (no movement, no idempotency
record, so a retry with the same key and a clean body goes through); the
services refuse again for every other caller (commands, tasks, admin).
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass

import pytest
from django.core.management import CommandError, call_command

from accounts.tests.access_matrix import issue_token
from accounts.tests.oauth_helpers import mobile_client
from fintech.free_text import ReferenceContainsCardNumber
from fintech.idempotency import idempotency_key_digest
from fintech.models import IdempotencyRecord
from ledger.free_text_scan import stored_card_numbers
from ledger.models import Hold, LedgerAccount, Transfer
from ledger.services import account_status_change, hold_void, transfer_reverse
from ledger.tests.factories import TEST_ACTOR, account, customer, generous_limits, no_rules, send

pytestmark = pytest.mark.django_db
SCOPES = "accounts:read accounts:write transfers:read transfers:write"
CARD_IN_TEXT = [
    "card 5105 1051 0510 5100 refund",
    "4111-1111-1111-1111",
    "invoice 42 paid by 4111111111111111 on friday",
]


@pytest.fixture(autouse=True)
def limits():
    generous_limits()
    no_rules()


@pytest.fixture
def alice():
    return customer()


@pytest.fixture
def api(client, alice):
    token = issue_token(application=mobile_client(), user=alice, scope=SCOPES)

    def call(path: str, body: dict, key: str):
        return client.post(
            path,
            data=json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    return call


@dataclass(frozen=True)
class MoneyCall:
    """One money-moving endpoint: its path, a body with the free-text field set, and what it would create."""

    path: str
    body: dict
    free_text_field: str
    created: type  # the model a success writes one more row of

    def with_text(self, text: str) -> dict:
        return {**self.body, self.free_text_field: text}


def transfer_call(alice) -> MoneyCall:
    source = account(owner=alice, balance_minor=10_000)
    body = {"from_account": str(source.public_id), "to_account": str(account().public_id), "amount": "10.00",
            "currency": "EUR"}  # fmt: skip
    return MoneyCall("/v1/transfers", body, "reference", Transfer)


def hold_call(alice) -> MoneyCall:
    source = account(owner=alice, balance_minor=10_000)
    body = {"account": str(source.public_id), "destination": str(account().public_id), "amount": "10.00",
            "currency": "EUR"}  # fmt: skip
    return MoneyCall("/v1/holds", body, "reference", Hold)


def credit_charge_call(alice) -> MoneyCall:
    line = account(owner=alice, kind=LedgerAccount.Kind.CREDIT_LINE, credit_limit_minor=50_000)
    body = {"account": str(line.public_id), "amount": "10.00", "currency": "EUR"}
    return MoneyCall("/v1/credit/charge", body, "reference", Transfer)


def refund_call(alice) -> MoneyCall:
    payer = customer()
    received = send(account(owner=payer, balance_minor=10_000), account(owner=alice), 1_000, initiated_by=payer)
    return MoneyCall(f"/v1/transfers/{received.public_id}/reverse", {"amount": "4.00"}, "reason", Transfer)


MONEY_CALLS = [transfer_call, hold_call, credit_charge_call, refund_call]


@pytest.mark.parametrize("make_call", MONEY_CALLS, ids=lambda make: make.__name__)
@pytest.mark.parametrize("text", CARD_IN_TEXT)
def test_a_card_in_free_text_is_refused_before_anything_is_stored(api, alice, make_call, text):
    call = make_call(alice)
    key = f"card-{uuid.uuid4().hex}"
    rows_before = call.created.objects.count()

    refused = api(call.path, call.with_text(text), key)

    assert refused.status_code == 422, refused.content
    assert refused["Content-Type"] == "application/problem+json"
    body = refused.json()
    assert body["code"] == "reference_contains_card_number"
    assert body["errors"][0]["field"] == call.free_text_field
    assert text not in refused.content.decode()
    assert call.created.objects.count() == rows_before
    assert not IdempotencyRecord.objects.filter(key=idempotency_key_digest(key)).exists()
    assert list(stored_card_numbers()) == []  # nor in the api.call audit row, nor anywhere else


@pytest.mark.parametrize("make_call", MONEY_CALLS, ids=lambda make: make.__name__)
def test_a_retry_with_the_same_key_and_a_clean_text_goes_through(api, alice, make_call):
    call = make_call(alice)
    key = f"card-{uuid.uuid4().hex}"
    rows_before = call.created.objects.count()

    refused = api(call.path, call.with_text("card 4111 1111 1111 1111"), key)
    retried = api(call.path, call.with_text("invoice 9999 9999 9999 9995"), key)

    assert (refused.status_code, retried.status_code) == (422, 201), retried.content
    assert "Idempotent-Replayed" not in retried
    assert call.created.objects.count() == rows_before + 1
    assert IdempotencyRecord.objects.get(key=idempotency_key_digest(key)).response_status == 201


# --- the services refuse too, for callers that are not the API --------------------------------


def test_the_deposit_command_refuses_a_reason_holding_a_card(nothing_written):
    alice = account()
    guard = nothing_written()

    with pytest.raises(CommandError, match="reference_contains_card_number"):
        call_command(
            "ledger_deposit", str(alice.public_id), "10.00", "--reason", "wire for 4111 1111 1111 1111",
            stdout=io.StringIO(),
        )  # fmt: skip

    guard.check()


def test_a_transfer_reference_holding_a_card_is_refused_by_the_service(nothing_written):
    source, destination = account(balance_minor=10_000), account()
    guard = nothing_written()

    with pytest.raises(ReferenceContainsCardNumber) as refused:
        send(source, destination, 1_00, reference="paid with 5105-1051-0510-5100")

    assert refused.value.extra["errors"][0]["field"] == "reference"
    guard.check()


def test_reasons_holding_a_card_are_refused_by_the_services(nothing_written):
    alice = customer()
    mine = account(owner=alice)
    received = send(account(balance_minor=10_000), mine, 1_00)
    guard = nothing_written()

    with pytest.raises(ReferenceContainsCardNumber) as refund_refused:
        transfer_reverse(
            transfer=received, amount_minor=None, reason="4111111111111111", actor=TEST_ACTOR, initiated_by=alice
        )
    with pytest.raises(ReferenceContainsCardNumber) as status_change_refused:
        account_status_change(account=mine, status="blocked", reason="card 4111 1111 1111 1111", actor=TEST_ACTOR)

    assert refund_refused.value.extra["errors"][0]["field"] == "reason"
    assert status_change_refused.value.extra["errors"][0]["field"] == "reason"
    guard.check()


def test_a_void_reason_holding_a_card_is_refused(api, alice):
    source = account(owner=alice, balance_minor=10_000)
    created = api(
        "/v1/holds",
        {"account": str(source.public_id), "destination": str(account().public_id), "amount": "5.00",
         "currency": "EUR"},
        uuid.uuid4().hex,
    )  # fmt: skip
    hold = Hold.objects.get(public_id=created.json()["id"])

    with pytest.raises(ReferenceContainsCardNumber):
        hold_void(hold=hold, voided_by=hold.destination.owner, reason="card 4111 1111 1111 1111", actor=TEST_ACTOR)

    hold.refresh_from_db()
    assert hold.status == Hold.Status.ACTIVE
