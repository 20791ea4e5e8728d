"""Reads scoped to their owner: someone else's account is simply not found."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from ledger.exceptions import AccountNotFound, HoldNotFound, TransferNotFound
from ledger.models import Posting
from ledger.selectors import (
    STATEMENT_COLUMNS,
    account_balance_as_of,
    account_entries,
    account_get,
    accounts_list,
    hold_get_as_payee,
    statement_rows,
    transfer_destination_get,
    transfer_get,
)
from ledger.services import (
    account_status_change,
    deposit_from_funding,
    hold_create,
    platform_account_get_or_create,
    transfer_create,
)
from ledger.tests.factories import TEST_ACTOR, account, customer

pytestmark = pytest.mark.django_db


def test_an_owner_gets_their_own_account_and_nobody_elses():
    alice, mallory = customer(), customer()
    mine = account(owner=alice)
    funding = platform_account_get_or_create(purpose="funding", currency="EUR", actor=TEST_ACTOR)

    assert account_get(owner=alice, public_id=str(mine.public_id)) == mine
    assert account_get(owner=alice, public_id=mine.public_id) == mine
    for owner, public_id in [
        (mallory, mine.public_id),
        (alice, funding.public_id),
        (alice, uuid.uuid4()),
        (alice, "not-a-uuid"),
        (alice, None),
        (None, mine.public_id),
    ]:
        with pytest.raises(AccountNotFound):
            account_get(owner=owner, public_id=public_id)


def test_accounts_list_shows_only_the_owners_accounts_oldest_first():
    alice = customer()
    first = account(owner=alice)
    second = account(owner=alice, currency="USD")
    account()  # someone else's

    assert list(accounts_list(owner=alice)) == [first, second]


def test_destinations_are_any_active_customer_account():
    bob = account()
    blocked = account()
    account_status_change(account=blocked, status="blocked", reason="x", actor=TEST_ACTOR)
    funding = platform_account_get_or_create(purpose="funding", currency="EUR", actor=TEST_ACTOR)

    assert transfer_destination_get(public_id=bob.public_id) == bob
    for public_id in (blocked.public_id, funding.public_id, uuid.uuid4(), "junk"):
        with pytest.raises(AccountNotFound):
            transfer_destination_get(public_id=public_id)


def test_holds_and_transfers_are_visible_to_the_parties_only():
    alice = account(balance_minor=100_00)
    bob = account()
    mallory = customer()
    transfer = transfer_create(
        from_public_id=alice.public_id,
        to_public_id=bob.public_id,
        amount_minor=10_00,
        currency="EUR",
        reference="x",
        initiated_by=alice.owner,
        actor=TEST_ACTOR,
    )
    hold = hold_create(
        account=alice,
        destination=bob,
        amount_minor=5_00,
        currency="EUR",
        reference="x",
        expires_at=timezone.now() + timedelta(days=1),
        created_by=alice.owner,
        actor=TEST_ACTOR,
    )

    assert transfer_get(owner=alice.owner, public_id=transfer.public_id) == transfer
    assert transfer_get(owner=bob.owner, public_id=transfer.public_id) == transfer
    assert hold_get_as_payee(owner=bob.owner, public_id=hold.public_id) == hold
    with pytest.raises(TransferNotFound):
        transfer_get(owner=mallory, public_id=transfer.public_id)
    with pytest.raises(HoldNotFound):
        hold_get_as_payee(owner=mallory, public_id=hold.public_id)
    with pytest.raises(HoldNotFound):
        hold_get_as_payee(owner=alice.owner, public_id=hold.public_id)  # the payer neither captures nor voids


def _history():
    """Alice: +100.00 deposit, -30.00 transfer, +5.00 deposit; returns her account and posting times."""
    alice = account()
    bob = account()
    deposit_from_funding(account=alice, amount_minor=100_00, reason="x", actor=TEST_ACTOR)
    transfer_create(
        from_public_id=alice.public_id,
        to_public_id=bob.public_id,
        amount_minor=30_00,
        currency="EUR",
        reference="=HYPERLINK(evil)",
        initiated_by=alice.owner,
        actor=TEST_ACTOR,
    )
    deposit_from_funding(account=alice, amount_minor=5_00, reason="x", actor=TEST_ACTOR)
    times = list(Posting.objects.filter(account=alice).order_by("account_version").values_list("created_at", flat=True))
    return alice, times


def test_balance_as_of_any_moment_comes_from_the_postings():
    alice, (t1, t2, t3) = _history()
    micro = timedelta(microseconds=1)

    assert account_balance_as_of(account=alice, at=t1 - micro) == 0
    assert account_balance_as_of(account=alice, at=t1) == 100_00
    assert account_balance_as_of(account=alice, at=t2 - micro) == 100_00
    assert account_balance_as_of(account=alice, at=t2) == 70_00
    assert account_balance_as_of(account=alice, at=t3) == 75_00
    assert account_balance_as_of(account=alice, at=timezone.now() + timedelta(days=1)) == 75_00


def test_entries_are_newest_first_and_can_stop_at_a_moment():
    alice, (t1, t2, _) = _history()

    assert [entry.amount_minor for entry in account_entries(account=alice)] == [5_00, -30_00, 100_00]
    assert [entry.amount_minor for entry in account_entries(account=alice, as_of=t2)] == [-30_00, 100_00]
    assert [entry.transfer.kind for entry in account_entries(account=alice, as_of=t1)] == ["deposit"]


def test_statement_rows_are_exact_and_safe_to_open_in_a_spreadsheet():
    alice, (t1, _, t3) = _history()

    rows = list(statement_rows(account=alice, start=t1, end=t3 + timedelta(microseconds=1)))

    assert [(row["kind"], row["amount"], row["balance_after"], row["currency"]) for row in rows] == [
        ("deposit", "100.00", "100.00", "EUR"),
        ("transfer", "-30.00", "70.00", "EUR"),
        ("deposit", "5.00", "75.00", "EUR"),
    ]
    assert rows[1]["reference"] == "'=HYPERLINK(evil)"
    output = io.StringIO()
    writer = csv.DictWriter(output, fieldnames=STATEMENT_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    assert output.getvalue().splitlines()[0] == "booked_at,transfer,kind,reference,amount,currency,balance_after"


def test_statements_are_bounded(settings):
    alice, (t1, _, t3) = _history()
    settings.LEDGER_STATEMENT_MAX_ROWS = 2

    with pytest.raises(ValueError, match="at most 2 rows"):
        list(statement_rows(account=alice, start=t1, end=t3 + timedelta(seconds=1)))
    with pytest.raises(ValueError, match="366 days"):
        list(statement_rows(account=alice, start=t1, end=t1 + timedelta(days=367)))
