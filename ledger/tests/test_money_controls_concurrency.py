"""Races at the money controls (ADR 0014), real threads on real PostgreSQL.

The daily limit is exact because every outgoing movement of an owner locks that owner's spend counter
row for the day until COMMIT; one review decision wins because the case row is locked after the hold.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.services import roles_sync, staff_create
from audit.models import AuditEvent
from ledger.invariants import ledger_verify
from ledger.models import Hold, LedgerAccount, ReviewCase, SpendCounter, Transfer, TransferLimit, TransferRule
from ledger.services import hold_capture, hold_create, review_case_decide, review_cases_escalate
from ledger.tests.factories import TEST_ACTOR, account, customer, generous_limits, no_rules, send
from ledger.tests.test_concurrency import run_threads

pytestmark = pytest.mark.django_db(transaction=True)


def test_racing_holds_transfers_and_captures_never_pass_the_daily_limit_by_a_cent():
    """12 threads, 4 accounts of one owner: transfers and holds of 1,500.00 (and captures of earlier holds)."""
    no_rules()
    TransferLimit.objects.update_or_create(
        tier="standard",
        currency="EUR",
        defaults={"per_transfer_max_minor": 5_000_00, "daily_outgoing_max_minor": 10_000_00},
    )
    owner = customer()
    sources = [account(owner=owner, balance_minor=5_000_00) for _ in range(4)]
    merchant = account()
    earlier = hold_create(
        account=sources[0],
        destination=merchant,
        amount_minor=1_000_00,
        currency="EUR",
        reference="earlier",
        expires_at=timezone.now() + timedelta(days=1),
        created_by=owner,
        actor=TEST_ACTOR,
    )

    def work(index: int) -> str:
        try:
            if index % 3 == 0:
                hold_capture(hold=earlier, captured_by=merchant.owner, amount_minor=100_00, actor=TEST_ACTOR)
                return "captured"
            if index % 3 == 1:
                hold_create(
                    account=sources[index % 4],
                    destination=merchant,
                    amount_minor=1_500_00,
                    currency="EUR",
                    reference="race",
                    expires_at=timezone.now() + timedelta(days=1),
                    created_by=owner,
                    actor=TEST_ACTOR,
                )
                return "held"
            send(sources[index % 4], merchant, 1_500_00)
            return "sent"
        except Exception as error:
            return getattr(error, "code", repr(error))

    outcomes = Counter(run_threads(12, work))

    counted = SpendCounter.objects.get(owner=owner, currency="EUR").outgoing_minor
    moved_or_reserved = 1_000_00 + 1_500_00 * (outcomes["held"] + outcomes["sent"])
    assert counted == moved_or_reserved <= 10_000_00
    assert outcomes["held"] + outcomes["sent"] == 6  # 9,000.00 + the earlier 1,000.00: exactly the limit
    assert outcomes["captured"] == 4  # captures never count again, and are not refused for the limit
    assert outcomes["limit_daily_exceeded"] == 2
    assert ledger_verify() == []


def test_two_officers_deciding_one_case_at_once_produce_one_decision():
    generous_limits()
    no_rules()
    TransferRule.objects.create(
        name="hold everything", kind="review_threshold", currency="EUR", threshold_minor=1, action="hold_for_review"
    )
    alice, bob = account(balance_minor=1_000_00), account()
    pending = send(alice, bob, 500_00)
    case = ReviewCase.objects.get()
    roles_sync()  # a transactional test starts from flushed tables: the roles are gone
    officers = [
        staff_create(email=f"officer{index}@example.com", password=None, roles=["compliance_officer"])
        for index in range(6)
    ]

    def work(index: int) -> str:
        try:
            with transaction.atomic():
                review_case_decide(
                    case_public_id=case.public_id, approve=index % 2 == 0, reason="checked", officer=officers[index]
                )
            return "decided"
        except Exception as error:
            return getattr(error, "code", repr(error))

    outcomes = Counter(run_threads(6, work))

    assert outcomes == Counter({"decided": 1, "review_case_already_decided": 5})
    case.refresh_from_db()
    posted = Transfer.objects.filter(public_id=pending.public_id).count()
    assert posted == (1 if case.status == "approved" else 0)
    assert Hold.objects.get(transfer_public_id=pending.public_id).status == ("captured" if posted else "voided")
    assert LedgerAccount.objects.get(pk=alice.pk).held_minor == 0
    assert ledger_verify() == []


def test_racing_escalation_runs_alert_once_per_case():
    """Several beat workers at once: the conditional update on escalated_at lets one run alert per case."""
    generous_limits()
    no_rules()
    TransferRule.objects.create(
        name="hold everything", kind="review_threshold", currency="EUR", threshold_minor=1, action="hold_for_review"
    )
    for _ in range(3):
        send(account(balance_minor=100_00), account(), 10_00)
    later = timezone.now() + timedelta(hours=25)

    escalated = run_threads(6, lambda index: review_cases_escalate(now=later))

    assert sum(escalated) == 3
    assert AuditEvent.objects.filter(event_type="alert.raised").count() == 3
    assert ReviewCase.objects.filter(status="open", escalated_at__isnull=False).count() == 3


def test_racing_captures_of_one_hold_never_take_more_than_it_holds():
    """8 payee captures of 100.00 on a 350.00 hold: three win; then 6 racing for "all that remains": one wins."""
    generous_limits()
    no_rules()
    payer, payee = account(balance_minor=1_000_00), account()
    booking = hold_create(
        account=payer,
        destination=payee,
        amount_minor=350_00,
        currency="EUR",
        reference="race",
        expires_at=timezone.now() + timedelta(days=1),
        created_by=payer.owner,
        actor=TEST_ACTOR,
    )

    def capture(amount_minor):
        def work(index: int) -> str:
            try:
                hold_capture(hold=booking, captured_by=payee.owner, amount_minor=amount_minor, actor=TEST_ACTOR)
            except Exception as error:
                return getattr(error, "code", repr(error))
            return "captured"

        return work

    parts = Counter(run_threads(8, capture(100_00)))
    rest = Counter(run_threads(6, capture(None)))

    assert parts == Counter({"captured": 3, "capture_exceeds_hold": 5})
    assert rest == Counter({"captured": 1, "hold_not_active": 5})  # the winner took the last 50.00
    assert Hold.objects.get(pk=booking.pk).captured_minor == 350_00
    assert Transfer.objects.filter(kind="hold_capture", amount_minor=50_00).count() == 1
    assert ledger_verify() == []
