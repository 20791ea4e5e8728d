"""ledger_verify and the management commands: a sound ledger passes, every kind of damage is named."""

from __future__ import annotations

import io
from contextlib import nullcontext
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from ledger.invariants import ledger_verify
from ledger.models import Hold, LedgerAccount, Posting, SpendCounter, Transfer
from ledger.services import hold_capture, hold_create, transfer_create, transfer_reverse
from ledger.tests.factories import (
    TEST_ACTOR,
    account,
    as_ledger_definer,
    generous_limits,
    no_rules,
    transfer_written_directly,
)


def sql(statement: str, params: list | None = None, *, as_owner: bool = False) -> None:
    """Damage done behind the functions' back: only their owner role may (a superuser's power, not the web's)."""
    owners_statement = as_owner or statement.startswith("ALTER TABLE")  # the owner disables triggers, visibly
    with nullcontext() if owners_statement else as_ledger_definer(), connection.cursor() as cursor:
        if owners_statement:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE refuses to run with checks pending
        cursor.execute(statement, params or [])


def busy_ledger() -> tuple[LedgerAccount, LedgerAccount, Transfer]:
    """A bit of everything: deposits, a transfer, a partial reversal, a hold with a capture, a credit line."""
    alice = account(balance_minor=500_00)
    bob = account(balance_minor=10_00)
    line = account(kind="credit_line", credit_limit_minor=100_00)
    paid = transfer_create(
        from_public_id=alice.public_id,
        to_public_id=bob.public_id,
        amount_minor=120_00,
        currency="EUR",
        reference="x",
        initiated_by=alice.owner,
        actor=TEST_ACTOR,
    )
    transfer_reverse(transfer=paid, amount_minor=20_00, reason="partial refund", actor=TEST_ACTOR)
    booking = hold_create(
        account=line,
        destination=bob,
        amount_minor=80_00,
        currency="EUR",
        reference="x",
        expires_at=timezone.now() + timedelta(days=1),
        created_by=line.owner,
        actor=TEST_ACTOR,
    )
    hold_capture(hold=booking, captured_by=booking.destination.owner, amount_minor=30_00, actor=TEST_ACTOR)
    return alice, bob, paid


def run_verify() -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command("ledger_verify", stdout=stdout, stderr=stderr)
    except CommandError as error:
        return error.returncode, stdout.getvalue(), stderr.getvalue()
    return 0, stdout.getvalue(), stderr.getvalue()


@pytest.mark.django_db
def test_a_sound_ledger_passes():
    busy_ledger()

    counts = [model.objects.count() for model in (LedgerAccount, Transfer, Posting, Hold, SpendCounter)]

    assert ledger_verify() == []
    assert run_verify() == (
        0,
        "checked {:,} accounts, {:,} transfers, {:,} postings, {:,} holds, {:,} spend counters\n".format(*counts)
        + "ledger verification PASSED\n",
        "",
    )
    assert counts[2] == 2 * counts[1] and counts[4] >= 1  # what it says it checked is what is there


@pytest.mark.django_db
def test_a_balance_changed_behind_the_ledgers_back_is_named():
    alice, _, _ = busy_ledger()
    sql("UPDATE ledger_ledgeraccount SET posted_minor = posted_minor + 1 WHERE id = %s", [alice.pk])

    problems = ledger_verify()

    assert {(p.check, p.object_id) for p in problems} == {
        ("posted_not_sum_of_postings", str(alice.public_id)),
        ("posted_not_last_balance", str(alice.public_id)),
    }
    code, _, stderr = run_verify()
    assert code == 1
    assert f"posted_not_sum_of_postings: account {alice.public_id}: posted 40001 but postings sum to 40000" in stderr


@pytest.mark.django_db
def test_an_edited_posting_is_named_with_its_transfer_and_account():
    alice, _, paid = busy_ledger()
    posting = Posting.objects.get(transfer=paid, account=alice)
    sql("ALTER TABLE ledger_posting DISABLE TRIGGER ledger_posting_write_once")  # what only the owner can do
    sql("ALTER TABLE ledger_posting DISABLE TRIGGER ledger_posting_money_guard")
    sql("UPDATE ledger_posting SET amount_minor = amount_minor - 1 WHERE id = %s", [posting.pk], as_owner=True)

    checks = {(p.check, p.object_type, p.object_id) for p in ledger_verify()}

    assert ("transfer_unbalanced", "transfer", str(paid.public_id)) in checks
    assert ("posted_not_sum_of_postings", "account", str(alice.public_id)) in checks
    assert ("balance_chain_broken", "account", str(alice.public_id)) in checks


@pytest.mark.django_db
def test_held_money_without_a_hold_is_named():
    alice, _, _ = busy_ledger()
    sql("UPDATE ledger_ledgeraccount SET held_minor = 1 WHERE id = %s", [alice.pk])

    assert [(p.check, p.object_id, p.detail) for p in ledger_verify()] == [
        ("held_not_sum_of_holds", str(alice.public_id), "held 1 but active holds keep 0")
    ]


@pytest.mark.django_db
def test_a_version_that_went_backwards_is_named():
    alice, _, _ = busy_ledger()
    sql("UPDATE ledger_ledgeraccount SET version = 1 WHERE id = %s", [alice.pk])

    assert [(p.check, p.object_id) for p in ledger_verify()] == [("version_inconsistent", str(alice.public_id))]


@pytest.mark.django_db
def test_an_account_below_its_limit_is_named():
    busy_ledger()
    overdrawn = account()
    sql("ALTER TABLE ledger_ledgeraccount DROP CONSTRAINT ledger_account_available_within_limit")
    sql("UPDATE ledger_ledgeraccount SET held_minor = 5 WHERE id = %s", [overdrawn.pk])

    checks = {(p.check, p.object_id) for p in ledger_verify()}

    assert ("below_credit_limit", str(overdrawn.public_id)) in checks


@pytest.mark.django_db
def test_a_reversal_total_that_does_not_add_up_is_named():
    _, _, paid = busy_ledger()
    sql("ALTER TABLE ledger_transfer DISABLE TRIGGER ledger_transfer_guard")
    sql("UPDATE ledger_transfer SET reversed_minor = 0 WHERE id = %s", [paid.pk])

    assert [(p.check, p.object_id) for p in ledger_verify()] == [("reversed_not_sum_of_reversals", str(paid.public_id))]


@pytest.mark.django_db(transaction=True)
def test_verification_runs_in_one_snapshot_and_the_deposit_command_works():
    generous_limits()
    no_rules()
    alice = account()
    assert not connection.in_atomic_block

    code, stdout, _ = _deposit(str(alice.public_id), "100.00", "--reason", "bank wire 42")

    assert code == 0
    assert stdout.startswith(f"deposited 100.00 EUR into {alice.public_id}: transfer ")
    alice.refresh_from_db()
    assert alice.posted_minor == 100_00
    event = AuditEvent.objects.get(event_type="ledger.deposit.posted")
    assert (event.actor_staff, event.payload["reason"]) == (str(_operator().public_id), "bank wire 42")
    assert ledger_verify() == []  # outside a transaction: its own REPEATABLE READ READ ONLY one
    assert run_verify()[0] == 0


@pytest.mark.django_db(transaction=True)
def test_the_deposit_command_refuses_without_a_reason_or_with_a_bad_amount():
    alice = account()
    transfers_before = Transfer.objects.count()

    with pytest.raises(CommandError, match="--reason"):
        call_command("ledger_deposit", str(alice.public_id), "100.00")
    for arguments, message in [
        ((str(alice.public_id), "100.00", "--reason", "  "), "reason_required"),
        ((str(alice.public_id), "100.001", "--reason", "x"), "invalid_amount"),
        ((str(alice.public_id), "-5", "--reason", "x"), "invalid_amount"),
        (("not-a-uuid", "1.00", "--reason", "x"), "not an account id"),
        (("00000000-0000-0000-0000-000000000000", "1.00", "--reason", "x"), "no customer account"),
    ]:
        with pytest.raises(CommandError, match=message):
            call_command("ledger_deposit", *arguments, stdout=io.StringIO())

    assert Transfer.objects.count() == transfers_before
    alice.refresh_from_db()
    assert alice.posted_minor == 0


def _operator():
    from accounts.models import User
    from accounts.tests.operator_helpers import operator_create

    user = User.objects.filter(email="depositor@example.com").first()
    return user or operator_create(email="depositor@example.com", roles=["operations"])


def _deposit(*arguments: str) -> tuple[int, str, str]:
    from accounts.tests.operator_helpers import operator_stdin

    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command("ledger_deposit", *arguments, stdout=stdout, stderr=stderr, stdin=operator_stdin(_operator()))
    except CommandError as error:
        return error.returncode, stdout.getvalue(), str(error)
    return 0, stdout.getvalue(), stderr.getvalue()


# --- issue 12: money that moved without its record in the trail, or unlike it, is named --------------


def _moved_quietly(source: LedgerAccount, destination: LedgerAccount, amount_minor: int) -> Transfer:
    """A balanced, consistent transfer with no audit event: what the definer role (a superuser) could write."""
    return Transfer.objects.get(pk=transfer_written_directly(source, destination, amount_minor))


@pytest.mark.django_db
def test_money_moved_without_an_audit_event_is_named_and_nothing_else_is_wrong():
    alice, bob, _ = busy_ledger()
    assert ledger_verify() == []

    quiet = _moved_quietly(alice, bob, 50_00)

    assert [(p.check, p.object_id, p.detail) for p in ledger_verify()] == [
        ("transfer_not_in_audit_trail", str(quiet.public_id), "moved money with no audit event describing it"),
        ("transfer_not_authorized", str(quiet.public_id), "no authorization MAC: posted without the application"),
    ]


@pytest.mark.django_db
def test_money_that_differs_from_its_audit_event_is_named_with_what_differs():
    from audit.services.events import audit_event_record

    alice, bob, _ = busy_ledger()
    quiet = _moved_quietly(alice, bob, 50_00)
    audit_event_record(  # a cover record saying less moved, to another account
        event_type="ledger.transfer.posted",
        outcome="success",
        actor=TEST_ACTOR,
        object_type="ledger.transfer",
        object_id=str(quiet.public_id),
        payload={
            "transfer": str(quiet.public_id), "kind": "transfer", "amount_minor": 5_00, "currency": "EUR",
            "postings": [{"account": str(alice.public_id), "amount_minor": -5_00},
                         {"account": str(bob.public_id), "amount_minor": 5_00}],
        },
    )  # fmt: skip

    assert [(p.check, p.object_id, p.detail) for p in ledger_verify()] == [
        ("transfer_not_in_audit_trail", str(quiet.public_id), "differs from its audit event: amount, postings"),
        ("transfer_not_authorized", str(quiet.public_id), "no authorization MAC: posted without the application"),
    ]
