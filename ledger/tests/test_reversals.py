"""transfer_reverse: full or partial, linked to the original, never more than the original in total."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction

from audit.models import AuditEvent
from ledger.exceptions import (
    AccountNotActive,
    InsufficientFunds,
    InvalidAmount,
    ReasonRequired,
    ReversalExceedsOriginal,
    TransferAlreadyReversed,
    TransferNotReversible,
)
from ledger.invariants import ledger_verify
from ledger.models import Transfer
from ledger.services import account_status_change, transfer_create, transfer_reverse
from ledger.tests.factories import TEST_ACTOR, account, as_ledger_definer

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid():
    """Alice paid Bob 100.00; Alice has 400.00 left, Bob 100.00."""
    alice = account(balance_minor=500_00)
    bob = account()
    transfer = transfer_create(
        from_public_id=alice.public_id,
        to_public_id=bob.public_id,
        amount_minor=100_00,
        currency="EUR",
        reference="invoice 7",
        initiated_by=alice.owner,
        actor=TEST_ACTOR,
    )
    return alice, bob, transfer


def posted(account_) -> int:
    account_.refresh_from_db()
    return account_.posted_minor


def test_a_full_reversal_gives_everything_back(paid):
    alice, bob, original = paid

    reversal = transfer_reverse(transfer=original, reason="duplicate payment", actor=TEST_ACTOR)

    assert (posted(alice), posted(bob)) == (500_00, 0)
    assert (reversal.kind, reversal.amount_minor, reversal.reverses_id, reversal.reference) == (
        "reversal",
        100_00,
        original.id,
        "duplicate payment",
    )
    assert sorted(reversal.postings.values_list("account_id", "amount_minor")) == sorted(
        [(alice.id, 100_00), (bob.id, -100_00)]
    )
    original.refresh_from_db()
    assert original.reversed_minor == 100_00
    event = AuditEvent.objects.get(event_type="ledger.transfer.reversed")
    assert event.payload["reverses"] == str(original.public_id)
    assert event.payload["reason"] == "duplicate payment"
    assert event.payload["reversed_minor_total"] == 100_00
    assert ledger_verify() == []


def test_partial_reversals_add_up_to_the_original_and_no_further(paid, nothing_written):
    alice, bob, original = paid

    transfer_reverse(transfer=original, amount_minor=30_00, reason="partial refund", actor=TEST_ACTOR)
    transfer_reverse(transfer=original, amount_minor=50_00, reason="partial refund", actor=TEST_ACTOR)
    guard = nothing_written()
    with pytest.raises(ReversalExceedsOriginal) as error:
        transfer_reverse(transfer=original, amount_minor=20_01, reason="too much", actor=TEST_ACTOR)
    assert (error.value.code, error.value.status, error.value.extra) == (
        "reversal_exceeds_original",
        422,
        {"reversible_minor": 20_00},
    )
    guard.check()

    last = transfer_reverse(transfer=original, reason="rest", actor=TEST_ACTOR)  # None: all that remains

    assert last.amount_minor == 20_00
    assert (posted(alice), posted(bob)) == (500_00, 0)
    assert original.reversed_minor == 100_00
    assert Transfer.objects.filter(reverses=original).count() == 3
    with pytest.raises(TransferAlreadyReversed) as error:
        transfer_reverse(transfer=original, reason="again", actor=TEST_ACTOR)
    assert (error.value.code, error.value.status) == ("transfer_already_reversed", 409)
    assert ledger_verify() == []


def test_a_stale_copy_of_the_original_cannot_reverse_twice(paid):
    _, _, original = paid
    stale = Transfer.objects.get(pk=original.pk)
    transfer_reverse(transfer=original, reason="refund", actor=TEST_ACTOR)

    with pytest.raises(TransferAlreadyReversed):
        transfer_reverse(transfer=stale, amount_minor=1, reason="refund again", actor=TEST_ACTOR)


def test_a_reversal_is_never_reversed(paid, nothing_written):
    _, _, original = paid
    reversal = transfer_reverse(transfer=original, amount_minor=10_00, reason="refund", actor=TEST_ACTOR)
    guard = nothing_written()

    with pytest.raises(TransferNotReversible) as error:
        transfer_reverse(transfer=reversal, reason="undo refund", actor=TEST_ACTOR)

    assert (error.value.code, error.value.status) == ("transfer_not_reversible", 422)
    guard.check()


def test_the_receiver_must_still_have_the_money(paid, nothing_written):
    _, bob, original = paid
    carol = account()
    transfer_create(
        from_public_id=bob.public_id,
        to_public_id=carol.public_id,
        amount_minor=90_00,
        currency="EUR",
        reference="spent",
        initiated_by=bob.owner,
        actor=TEST_ACTOR,
    )
    guard = nothing_written()

    with pytest.raises(InsufficientFunds):
        transfer_reverse(transfer=original, reason="fraud", actor=TEST_ACTOR)

    guard.check()
    transfer_reverse(transfer=original, amount_minor=10_00, reason="fraud, what is left", actor=TEST_ACTOR)
    assert posted(bob) == 0


def test_blocked_accounts_may_take_part_in_a_reversal(paid):
    """Reversing fraud out of a blocked account is the very case reversals exist for."""
    alice, bob, original = paid
    account_status_change(account=bob, status="blocked", reason="fraud", actor=TEST_ACTOR)
    account_status_change(account=alice, status="blocked", reason="under review", actor=TEST_ACTOR)

    transfer_reverse(transfer=original, amount_minor=60_00, reason="fraud", actor=TEST_ACTOR)

    assert (posted(alice), posted(bob)) == (460_00, 40_00)


def test_a_reversal_touching_a_closed_account_is_refused(nothing_written):
    alice = account(balance_minor=100_00)
    bob = account()
    original = transfer_create(
        from_public_id=alice.public_id,
        to_public_id=bob.public_id,
        amount_minor=10_00,
        currency="EUR",
        reference="x",
        initiated_by=alice.owner,
        actor=TEST_ACTOR,
    )
    transfer_create(
        from_public_id=alice.public_id,
        to_public_id=bob.public_id,
        amount_minor=90_00,
        currency="EUR",
        reference="x",
        initiated_by=alice.owner,
        actor=TEST_ACTOR,
    )
    account_status_change(account=alice, status="closed", reason="customer left", actor=TEST_ACTOR)
    guard = nothing_written()

    with pytest.raises(AccountNotActive):
        transfer_reverse(transfer=original, reason="refund", actor=TEST_ACTOR)

    guard.check()


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_reason_is_required(paid, reason, nothing_written):
    _, _, original = paid
    guard = nothing_written()

    with pytest.raises(ReasonRequired) as error:
        transfer_reverse(transfer=original, reason=reason, actor=TEST_ACTOR)

    assert (error.value.code, error.value.status) == ("reason_required", 422)
    guard.check()


def test_reversal_amounts_are_validated(paid, nothing_written):
    _, _, original = paid
    guard = nothing_written()

    with pytest.raises(InvalidAmount):
        transfer_reverse(transfer=original, amount_minor=0, reason="refund", actor=TEST_ACTOR)

    guard.check()


def test_the_database_refuses_reversing_more_than_the_amount(paid):
    _, _, original = paid

    with pytest.raises(IntegrityError, match="ledger_transfer_reversed_lte_amount"), as_ledger_definer():
        Transfer.objects.filter(pk=original.pk).update(reversed_minor=100_01)


def test_the_database_refuses_any_other_change_to_a_transfer(paid):
    _, _, original = paid

    for statement in (
        "UPDATE ledger_transfer SET amount_minor = 1 WHERE id = %s",
        "UPDATE ledger_transfer SET reference = 'changed' WHERE id = %s",
        "UPDATE ledger_transfer SET reversed_minor = reversed_minor - 1 WHERE id = %s",
        "DELETE FROM ledger_transfer WHERE id = %s",
    ):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, [original.pk])

    original.refresh_from_db()
    assert (original.amount_minor, original.reference, original.reversed_minor) == (100_00, "invoice 7", 0)
