"""An insider holding the web process's database login (the runtime role) against the money (issue 12, ADR 0016).

Each test connects as the runtime role, the way a leaked DATABASE_URL would,
and tries what the issue lists: money created or moved by writing rows, a
hold re-pointed, inserted or voided behind the ledger's back, the guard
switched off, the functions' helpers called directly, the functions fed a
movement of the wrong shape. Each is refused by the database. What the
functions do allow is recorded: a movement made through one is in the audit
trail, built from its own rows, and `ledger_verify` finds it consistent.
Damage only a superuser could do is `test_invariants.py`'s: ledger_verify names it.
"""

from __future__ import annotations

import json
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from ledger.invariants import ledger_verify
from ledger.models import Hold, LedgerAccount, Posting, Transfer
from ledger.services import deposit_from_funding, hold_create, platform_account_get_or_create
from ledger.tests.factories import TEST_ACTOR, account, generous_limits, transfer_written_directly

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def victim_and_insider():
    generous_limits()
    victim, insider = account(balance_minor=1_000_00), account()
    booking = hold_create(
        account=victim,
        destination=account(),
        amount_minor=100_00,
        currency="EUR",
        reference="hotel",
        expires_at=timezone.now() + timedelta(days=1),
        created_by=victim.owner,
        actor=TEST_ACTOR,
    )
    return victim, insider, booking


def _refused(runtime, statement: str, params=(), *, sqlstate: str) -> None:
    with pytest.raises(psycopg.Error) as error, runtime.cursor() as cursor:
        cursor.execute(statement, params)
    assert error.value.sqlstate == sqlstate, error.value
    runtime.rollback()


def _ledger_unchanged(before: list) -> None:
    assert _ledger_state() == before
    assert ledger_verify() == []


def _ledger_state() -> list:
    return [
        list(LedgerAccount.objects.order_by("id").values_list("id", "posted_minor", "held_minor", "version", "status")),
        list(Transfer.objects.order_by("id").values_list("id", "amount_minor", "reversed_minor")),
        Posting.objects.count(),
        list(Hold.objects.order_by("id").values_list("id", "destination_id", "amount_minor", "status")),
    ]


def test_rows_written_straight_into_the_money_tables_are_refused(runtime, victim_and_insider):
    victim, insider, booking = victim_and_insider
    funding = platform_account_get_or_create(purpose="funding", currency="EUR", actor=TEST_ACTOR)
    before = _ledger_state()

    for source in (funding, victim):  # money created from the platform; a customer's money taken
        with pytest.raises(psycopg.errors.InsufficientPrivilege), runtime.cursor() as cursor:
            transfer_written_directly(source, insider, 500_00, cursor=cursor)
        runtime.rollback()
    for statement, params in [
        ("UPDATE ledger_ledgeraccount SET posted_minor = posted_minor + 1 WHERE id = %s", [insider.pk]),
        ("UPDATE ledger_hold SET destination_id = %s WHERE id = %s", [insider.pk, booking.pk]),  # re-pointed
        ("UPDATE ledger_hold SET amount_minor = 1 WHERE id = %s", [booking.pk]),
        ("UPDATE ledger_hold SET status = 'voided' WHERE id = %s", [booking.pk]),
        ("DELETE FROM ledger_hold WHERE id = %s", [booking.pk]),
        ("UPDATE ledger_transfer SET reversed_minor = 0 WHERE id = %s", [Transfer.objects.first().pk]),
        ("INSERT INTO ledger_ledgeraccount (public_id, kind, purpose, status, currency, credit_limit_minor,"
         " posted_minor, held_minor, version) VALUES (gen_random_uuid(), 'platform', 'fees', 'active', 'USD', 0,"
         " 0, 0, 0)", []),
        ("INSERT INTO ledger_hold (public_id, account_id, destination_id, currency, amount_minor, captured_minor,"
         " status, purpose, reference, client_id, movement_kind) VALUES (gen_random_uuid(), %s, %s, 'EUR', 1, 0,"
         " 'active', 'authorisation', '', '', '')", [victim.pk, insider.pk]),
        ("TRUNCATE ledger_hold CASCADE", []),
    ]:  # fmt: skip
        _refused(runtime, statement, params, sqlstate="42501")

    _ledger_unchanged(before)


def test_the_guard_cannot_be_switched_off_nor_the_definer_role_taken(runtime, victim_and_insider):
    for statement in [
        "ALTER TABLE ledger_ledgeraccount DISABLE TRIGGER ledger_ledgeraccount_money_guard",
        f"SET ROLE {settings.LEDGER_DEFINER_ROLE}",
        "ALTER FUNCTION ledger_movement_post(jsonb, jsonb) SECURITY INVOKER",
        "CREATE OR REPLACE FUNCTION ledger_funds_ok(ledger_ledgeraccount, bigint, bigint) RETURNS boolean"
        " LANGUAGE sql AS 'SELECT true'",
    ]:
        _refused(runtime, statement, sqlstate="42501")


def test_the_functions_helpers_cannot_be_called_directly(runtime, victim_and_insider):
    _, insider, _ = victim_and_insider
    before = _ledger_state()
    _refused(
        runtime,
        "SELECT ledger_balance_move(a, 1000, 0) FROM ledger_ledgeraccount a WHERE a.id = %s",
        [insider.pk],
        sqlstate="42501",
    )
    _refused(
        runtime,
        "SELECT ledger_audit_append('{\"event_type\": \"ledger.x\"}', 'ledger.transfer', 'x', '{}')",
        sqlstate="42501",
    )
    _ledger_unchanged(before)


FORGED_MAC = "0" * 64  # the insider has no application secret: any MAC they send is a guess


def _movement(**fields) -> str:
    return json.dumps({"currency": "EUR", "reference": "", "client_id": "", "authorization_mac": FORGED_MAC, **fields})


EVENT = json.dumps({"event_type": "ledger.deposit.posted", "actor_staff": "someone", "payload": {}})


def test_the_functions_refuse_movements_of_the_wrong_shape(runtime, victim_and_insider):
    victim, insider, booking = victim_and_insider
    funding = platform_account_get_or_create(purpose="funding", currency="EUR", actor=TEST_ACTOR)
    payee = booking.destination
    before = _ledger_state()
    attempts = [
        # a "deposit" out of a customer's account
        ("deposit", victim, insider, 100_00, {}),
        # a customer transfer that skips ledger_transfer_create's ownership, policy and limits
        ("transfer", victim, insider, 100_00, {}),
        # the payer's hold captured into the insider's account, or by someone who is not the payee
        ("hold_capture", victim, insider, 10_00, {"hold_id": booking.pk, "initiated_by_id": insider.owner_id}),
        ("hold_capture", victim, payee, 10_00, {"hold_id": booking.pk, "initiated_by_id": insider.owner_id}),
        # more than the hold keeps
        ("hold_capture", victim, payee, 100_01, {"hold_id": booking.pk, "initiated_by_id": payee.owner_id}),
        # a "reversal" of the victim's funding deposit into the insider's account
        ("reversal", victim, insider, 1_00, {"reverses_id": Transfer.objects.get(kind="deposit").pk}),
        # a deposit beyond what the platform may create? no: into the platform itself
        ("deposit", funding, funding, 1_00, {}),
    ]
    for kind, debit, credit, amount, extra in attempts:
        movement = _movement(
            kind=kind, amount_minor=amount, debit_account_id=debit.pk, credit_account_id=credit.pk, **extra
        )
        _refused(runtime, "SELECT ledger_movement_post(%s::jsonb, %s::jsonb)", [movement, EVENT], sqlstate="LG002")
    for statement, params in [
        ("SELECT ledger_hold_release(%s, 'expired', %s::jsonb)", [booking.pk, EVENT]),  # before its expiry
        ("SELECT ledger_hold_open(%s::jsonb, %s::jsonb)", [
            json.dumps({"account_id": victim.pk, "destination_id": insider.pk, "currency": "EUR",
                        "amount_minor": 1_00, "purpose": "authorisation", "created_by_id": insider.owner_id,
                        "expires_at": (timezone.now() + timedelta(days=1)).isoformat(), "movement_kind": ""}),
            EVENT]),  # a hold on the victim's money in the insider's name
        ("SELECT ledger_account_open(%s::jsonb, %s::jsonb)", [
            json.dumps({"kind": "deposit", "owner_id": insider.owner_id, "currency": "EUR",
                        "credit_limit_minor": 1_000_000_00}), EVENT]),  # credit on a deposit account
        ("SELECT ledger_account_status_set(%s, 'closed', %s::jsonb)", [victim.pk, EVENT]),  # not empty
    ]:  # fmt: skip
        _refused(runtime, statement, params, sqlstate="LG002")

    _ledger_unchanged(before)


def test_what_a_function_lets_the_login_do_is_recorded_in_the_trail_and_named_by_ledger_verify(
    runtime, victim_and_insider
):
    """The residual risk, bounded: a deposit made with the login alone moves money, with its event, but it
    carries no MAC of the application's, so ledger_verify names it; without any MAC the function refuses."""
    _, insider, _ = victim_and_insider
    funding = platform_account_get_or_create(purpose="funding", currency="EUR", actor=TEST_ACTOR)
    sides = {"debit_account_id": funding.pk, "credit_account_id": insider.pk}
    _refused(
        runtime,
        "SELECT ledger_movement_post(%s::jsonb, %s::jsonb)",
        [_movement(kind="deposit", amount_minor=5_00, authorization_mac=None, **sides), EVENT],
        sqlstate="LG002",
    )
    movement = _movement(kind="deposit", amount_minor=5_00, **sides)
    with runtime.cursor() as cursor:
        cursor.execute("SELECT ledger_movement_post(%s::jsonb, %s::jsonb)", [movement, EVENT])
        public_id = cursor.fetchone()[0]["public_id"]
    runtime.commit()

    event = AuditEvent.objects.get(event_type="ledger.deposit.posted", object_id=public_id)
    assert event.payload["amount_minor"] == 5_00
    assert event.payload["postings"] == [
        {"account": str(account.public_id), "amount_minor": amount}
        for account, amount in sorted([(funding, -5_00), (insider, 5_00)], key=lambda side: side[0].pk)
    ]
    assert [(p.check, p.object_id) for p in ledger_verify()] == [("transfer_not_authorized", public_id)]


def test_a_genuine_movements_mac_cannot_be_replayed(runtime, victim_and_insider):
    """Copied from a real deposit into the insider's account: onto a new transfer id it does not match (named
    by ledger_verify); with the same id the transfer's unique public id refuses the copy."""
    _, insider, _ = victim_and_insider
    genuine = deposit_from_funding(account=insider, amount_minor=9_00, reason="refund", actor=TEST_ACTOR)
    funding = platform_account_get_or_create(purpose="funding", currency="EUR", actor=TEST_ACTOR)
    copy = {
        "kind": "deposit", "amount_minor": 9_00, "reference": "refund", "authorization_mac": genuine.authorization_mac,
        "debit_account_id": funding.pk, "credit_account_id": insider.pk,
    }  # fmt: skip
    _refused(
        runtime,
        "SELECT ledger_movement_post(%s::jsonb, %s::jsonb)",
        [_movement(**copy, public_id=str(genuine.public_id)), EVENT],
        sqlstate="23505",
    )
    with runtime.cursor() as cursor:
        cursor.execute("SELECT ledger_movement_post(%s::jsonb, %s::jsonb)", [_movement(**copy), EVENT])
        replayed = cursor.fetchone()[0]["public_id"]
    runtime.commit()

    assert [(p.check, p.object_id) for p in ledger_verify()] == [("transfer_not_authorized", replayed)]


def test_a_customer_transfer_needs_the_applications_mac_too(runtime, victim_and_insider):
    """ledger_transfer_create (the customer's path) refuses a call without a MAC, and one with a guessed MAC
    moves the victim's money only to be named by ledger_verify."""
    victim, insider, _ = victim_and_insider
    call = (
        "SELECT r_refusal, r_status FROM ledger_transfer_create(%s, %s, %s, 5000, 'EUR', 'rent', '', now(),"
        " 'UTC', gen_random_uuid(), '50.00', '', '', '', '', 'rent', %s, gen_random_uuid(), %s)"
    )
    params = [victim.public_id, insider.public_id, victim.owner_id]
    _refused(runtime, call, [*params, None, None], sqlstate="LG002")
    with runtime.cursor() as cursor:
        cursor.execute(call, [*params, FORGED_MAC, FORGED_MAC])
        assert cursor.fetchone() == (None, "posted")
    runtime.commit()

    moved = Transfer.objects.get(kind="transfer", initiated_by=victim.owner, amount_minor=50_00)
    assert [(p.check, p.object_id) for p in ledger_verify()] == [("transfer_not_authorized", str(moved.public_id))]


def test_an_outbox_message_keeps_its_recipient_and_content_only_its_delivery_state_moves(runtime, victim_and_insider):
    from ledger.models import OutboxMessage

    message = OutboxMessage.objects.filter(channel="email").order_by("id").first()
    assert message is not None
    before = OutboxMessage.objects.values().get(pk=message.pk)
    _, insider, _ = victim_and_insider
    for statement, params in [
        ("UPDATE ledger_outboxmessage SET recipient_user_id = %s WHERE id = %s", [insider.owner_id, message.pk]),
        ("UPDATE ledger_outboxmessage SET payload = '{}' WHERE id = %s", [message.pk]),
        ("UPDATE ledger_outboxmessage SET recipient_client_id = 'insider' WHERE id = %s", [message.pk]),
        ("UPDATE ledger_outboxmessage SET topic = 'alert.raised' WHERE id = %s", [message.pk]),
        ("DELETE FROM ledger_outboxmessage WHERE id = %s", [message.pk]),
    ]:
        _refused(runtime, statement, params, sqlstate="42501")
    assert OutboxMessage.objects.values().get(pk=message.pk) == before

    with runtime.cursor() as cursor:  # what the worker needs, and all it gets
        cursor.execute("UPDATE ledger_outboxmessage SET attempts = attempts + 1 WHERE id = %s", [message.pk])
    runtime.rollback()


@pytest.mark.django_db
def test_the_deploy_check_passes_here_and_names_a_definer_that_can_log_in():
    from ledger.checks import ledger_definer_check

    assert ledger_definer_check(databases=["default"]) == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", [settings.LEDGER_DEFINER_ROLE])
        assert cursor.fetchone() == (False,)
    assert ledger_definer_check(databases=None) == []  # not asked for a database: nothing to say

    with connection.cursor() as cursor:  # rolled back with the test: the migrating login owning the functions
        cursor.execute("ALTER FUNCTION ledger_movement_post(jsonb, jsonb) OWNER TO CURRENT_USER")
    assert [error.id for error in ledger_definer_check(databases=["default"])] == ["ledger.E002"]


@pytest.mark.django_db
def test_the_definer_role_writes_no_seal_of_the_trail():
    """Its functions append events; checkpoints, seals, keys and verification results are the sealer's alone."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t FROM unnest(%s::text[]) t WHERE has_table_privilege(%s, t, 'INSERT')",
            [
                ["audit_auditcheckpoint", "audit_auditseal", "audit_auditsigningkey", "audit_auditverification"],
                settings.LEDGER_DEFINER_ROLE,
            ],
        )
        assert cursor.fetchall() == []


def test_a_review_hold_cannot_carry_money_past_the_policy_step_nor_post_without_an_approved_case(
    runtime, victim_and_insider
):
    """The attack an insider review found: a "review" hold opened in the victim's name, then posted at once."""
    victim, insider, _ = victim_and_insider
    before = _ledger_state()
    review_hold = json.dumps({
        "account_id": victim.pk, "destination_id": insider.pk, "currency": "EUR", "amount_minor": 900_00,
        "purpose": "review", "created_by_id": victim.owner_id, "movement_kind": "transfer",
        "transfer_public_id": "8f0c2f3e-7c55-4d0e-9a57-5b7f3c1d2e10", "reference": "rent", "time_zone": "UTC",
    })  # fmt: skip
    # No rule holds this transfer for review: the policy step, run by the function itself, says so.
    _refused(runtime, "SELECT ledger_hold_open(%s::jsonb, %s::jsonb)", [review_hold, EVENT], sqlstate="LG002")
    _ledger_unchanged(before)


def test_a_customer_refunds_only_a_payment_received_and_every_movement_is_announced(runtime, victim_and_insider):
    from ledger.models import OutboxMessage

    victim, insider, _ = victim_and_insider
    funding = platform_account_get_or_create(purpose="funding", currency="EUR", actor=TEST_ACTOR)
    deposit = Transfer.objects.get(kind="deposit", postings__account=victim)
    refund = _movement(
        kind="reversal", amount_minor=1_00, debit_account_id=victim.pk, credit_account_id=funding.pk,
        reverses_id=deposit.pk, initiated_by_id=victim.owner_id,
    )  # fmt: skip
    _refused(runtime, "SELECT ledger_movement_post(%s::jsonb, %s::jsonb)", [refund, EVENT], sqlstate="LG002")

    movement = _movement(kind="deposit", amount_minor=7_00, debit_account_id=funding.pk, credit_account_id=insider.pk)
    with runtime.cursor() as cursor:
        cursor.execute("SELECT ledger_movement_post(%s::jsonb, %s::jsonb)", [movement, EVENT])
        public_id = cursor.fetchone()[0]["public_id"]
    runtime.commit()
    # The customer is told, whoever called: the notification rows are the function's, not the caller's.
    assert list(
        OutboxMessage.objects.filter(payload__transfer=public_id).values_list("channel", "recipient_user_id")
    ) == [("email", insider.owner_id)]


def test_a_review_case_decided_by_writing_its_row_is_named_by_ledger_verify(runtime, victim_and_insider):
    from ledger.models import ReviewCase

    _, insider, booking = victim_and_insider
    case = ReviewCase.objects.create(
        kind="held_movement", hold=booking, subject=booking.account.owner, reasons=["x"], amount_minor=1, currency="EUR"
    )
    with runtime.cursor() as cursor:  # what the login can still write: the case, not the officer's event
        cursor.execute(
            "UPDATE ledger_reviewcase SET status = 'approved', decided_at = now(), decided_by_id = %s,"
            " decision_reason = 'ok' WHERE id = %s",
            [insider.owner_id, case.pk],
        )
    runtime.commit()

    assert [(p.check, p.object_id) for p in ledger_verify()] == [
        ("review_case_decided_without_event", str(case.public_id)),
        ("review_case_decision_not_authorized", str(case.public_id)),
    ]


def test_a_credit_charge_or_a_refund_passes_the_policy_step_inside_the_function(runtime, victim_and_insider):
    """A charge not counted on the customer's day (or a refund) is refused: limits hold for every caller."""
    line = account(kind="credit_line", credit_limit_minor=100_00)
    settlement = platform_account_get_or_create(purpose="settlement", currency="EUR", actor=TEST_ACTOR)
    before = _ledger_state()
    uncounted = _movement(
        kind="credit_charge", amount_minor=10_00, debit_account_id=line.pk, credit_account_id=settlement.pk
    )
    _refused(runtime, "SELECT ledger_movement_post(%s::jsonb, %s::jsonb)", [uncounted, EVENT], sqlstate="LG002")
    _ledger_unchanged(before)
