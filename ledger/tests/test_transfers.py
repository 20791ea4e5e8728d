"""transfer_create: the happy path with exact values, then every refusal, each leaving nothing behind."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditEvent
from ledger import notifications
from ledger.exceptions import (
    AccountNotActive,
    AccountNotFound,
    CurrencyMismatch,
    InsufficientFunds,
    InvalidAmount,
    InvalidReference,
    SameAccount,
    UnknownCurrency,
)
from ledger.invariants import ledger_verify
from ledger.models import LedgerAccount, Posting
from ledger.services import account_status_change, hold_create
from ledger.tests.factories import TEST_ACTOR, account, customer, generous_limits, send

pytestmark = pytest.mark.django_db


def test_a_transfer_moves_money_with_two_balanced_postings(monkeypatch):
    alice = account(balance_minor=100_00)
    bob = account(balance_minor=5_00)
    hook_calls = []
    monkeypatch.setattr(
        notifications, "transfer_posted", lambda transfer: hook_calls.append((transfer, connection.in_atomic_block))
    )

    transfer = send(alice, bob, 25_00)

    alice.refresh_from_db()
    bob.refresh_from_db()
    assert (alice.posted_minor, alice.held_minor, alice.version) == (75_00, 0, 2)
    assert (bob.posted_minor, bob.held_minor, bob.version) == (30_00, 0, 2)
    assert transfer.kind == "transfer"
    assert (transfer.amount_minor, transfer.currency, transfer.reference) == (25_00, "EUR", "rent")
    assert transfer.initiated_by == alice.owner
    assert transfer.client_id == "mobile-app"
    assert (transfer.flagged_for_review, transfer.review_reasons, transfer.reversed_minor) == (False, [], 0)
    postings = list(transfer.postings.order_by("account_id").values_list("account_id", "amount_minor", "currency"))
    assert postings == [(alice.id, -25_00, "EUR"), (bob.id, 25_00, "EUR")]
    assert Posting.objects.get(transfer=transfer, account=alice).balance_after_minor == 75_00
    assert Posting.objects.get(transfer=transfer, account=alice).account_version == 2
    assert Posting.objects.get(transfer=transfer, account=bob).balance_after_minor == 30_00

    event = AuditEvent.objects.get(event_type="ledger.transfer.posted")
    assert event.object_id == str(transfer.public_id)
    assert event.actor_client == "system:ledger-tests"
    assert event.payload["amount_minor"] == 25_00
    assert event.payload["postings"] == [
        {"account": str(alice.public_id), "amount_minor": -25_00},
        {"account": str(bob.public_id), "amount_minor": 25_00},
    ]
    assert hook_calls == [(transfer, True)]
    assert ledger_verify() == []


def test_the_notification_hook_runs_inside_the_transaction(monkeypatch, nothing_written):
    """If the (future) outbox insert fails, the transfer must not commit without it."""
    alice = account(balance_minor=100_00)
    bob = account()

    def outbox_down(transfer):
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(notifications, "transfer_posted", outbox_down)
    guard = nothing_written()

    with pytest.raises(RuntimeError, match="outbox"), transaction.atomic():
        send(alice, bob, 1_00)

    guard.check()


def test_all_of_the_available_balance_can_be_sent_and_not_a_cent_more(nothing_written):
    alice = account(balance_minor=10_00)
    bob = account()
    send(alice, bob, 10_00)
    guard = nothing_written()

    with pytest.raises(InsufficientFunds) as error:
        send(alice, bob, 1)

    assert (error.value.code, error.value.status) == ("insufficient_funds", 422)
    guard.check()


def test_a_credit_line_may_go_down_to_its_limit():
    generous_limits()
    owner = customer()
    line = account(owner=owner, kind="credit_line", credit_limit_minor=500_00, balance_minor=20_00)
    shop = account()

    send(line, shop, 520_00)

    line.refresh_from_db()
    assert (line.posted_minor, line.available_minor) == (-500_00, -500_00)
    with pytest.raises(InsufficientFunds):
        send(line, shop, 1)
    assert ledger_verify() == []


def test_held_money_is_not_available_for_transfers():
    alice = account(balance_minor=100_00)
    merchant = account()
    hold_create(
        account=alice,
        destination=merchant,
        amount_minor=80_00,
        currency="EUR",
        reference="hotel",
        expires_at=timezone.now() + timedelta(days=1),
        created_by=alice.owner,
        actor=TEST_ACTOR,
    )
    alice.refresh_from_db()

    with pytest.raises(InsufficientFunds):
        send(alice, merchant, 20_01)
    send(alice, merchant, 20_00)


def test_accounts_in_other_currencies_are_refused(nothing_written):
    alice = account(balance_minor=100_00)
    dollars = account(currency="USD")
    euros = account()
    guard = nothing_written()

    with pytest.raises(CurrencyMismatch) as error:
        send(alice, dollars, 1_00)
    with pytest.raises(CurrencyMismatch):
        send(alice, euros, 1_00, currency="USD")

    assert (error.value.code, error.value.status) == ("currency_mismatch", 422)
    guard.check()


def test_sending_to_the_same_account_is_refused(nothing_written):
    alice = account(balance_minor=100_00)
    guard = nothing_written()

    with pytest.raises(SameAccount) as error:
        send(alice, alice, 1_00)

    assert (error.value.code, error.value.status) == ("same_account", 422)
    guard.check()


def test_only_the_owner_may_debit_an_account(nothing_written):
    alice = account(balance_minor=100_00)
    mallory = customer()
    mallorys_account = account(owner=mallory)
    guard = nothing_written()

    with pytest.raises(AccountNotFound) as error:
        send(alice, mallorys_account, 1_00, initiated_by=mallory)

    assert (error.value.code, error.value.status) == ("account_not_found", 404)
    guard.check()


@pytest.mark.parametrize("side", ["source", "destination"])
@pytest.mark.parametrize("status", ["blocked", "closed"])
def test_blocked_or_closed_accounts_neither_send_nor_receive(side, status, nothing_written):
    # A closed account is empty (closing needs a zero balance), so a closed source starts empty.
    source = account(balance_minor=0 if (side, status) == ("source", "closed") else 100_00)
    destination = account()
    target = source if side == "source" else destination
    target = account_status_change(account=target, status=status, reason="compliance", actor=TEST_ACTOR)
    source, destination = (target, destination) if side == "source" else (source, target)
    guard = nothing_written()

    # A destination that cannot receive is indistinguishable from one that does not exist (no probing).
    expected = AccountNotActive if side == "source" else AccountNotFound
    with pytest.raises(expected) as error:
        send(source, destination, 1_00)

    assert (error.value.code, error.value.status) == (expected.code, expected.status)
    guard.check()


def test_an_account_blocked_after_it_was_read_is_refused(nothing_written):
    alice = account(balance_minor=100_00)
    bob = account()
    stale_bob = LedgerAccount.objects.get(pk=bob.pk)
    account_status_change(account=bob, status="blocked", reason="fraud", actor=TEST_ACTOR)
    guard = nothing_written()

    with pytest.raises(AccountNotFound):
        send(alice, stale_bob, 1_00)

    guard.check()


def test_a_blocked_customer_cannot_send(nothing_written):
    alice = account(owner=customer(status="blocked"), balance_minor=100_00)
    bob = account()
    guard = nothing_written()

    with pytest.raises(AccountNotActive):
        send(alice, bob, 1_00)

    guard.check()


@pytest.mark.parametrize("amount", [0, -1, 1.5, True, "100", 10**15 + 1])
def test_amounts_must_be_positive_bounded_integers(amount, nothing_written):
    alice = account(balance_minor=100_00)
    bob = account()
    guard = nothing_written()

    with pytest.raises(InvalidAmount):
        send(alice, bob, amount)

    guard.check()


def test_references_and_currencies_are_validated(nothing_written):
    alice = account(balance_minor=100_00)
    bob = account()
    guard = nothing_written()

    with pytest.raises(InvalidReference):
        send(alice, bob, 1_00, reference="x" * 141)
    with pytest.raises(InvalidReference):
        send(alice, bob, 1_00, reference="line\nbreak")
    with pytest.raises(UnknownCurrency):
        send(alice, bob, 1_00, currency="XXX")

    guard.check()
