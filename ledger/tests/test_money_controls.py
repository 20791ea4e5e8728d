"""One policy step for every outgoing movement (ADR 0014): each former bypass, refused with the transfer's code.

Seeded limits: standard EUR 5,000.00 per movement and 10,000.00 per business day; velocity: more than 10
movements a minute is refused. Every refusal leaves nothing written.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.models import CustomerProfile
from accounts.services import staff_create
from audit.models import AuditEvent
from ledger.exceptions import (
    AccountNotActive,
    HoldNotActive,
    LimitDailyExceeded,
    LimitNotConfigured,
    LimitPerTransferExceeded,
    ReviewCaseAlreadyDecided,
    ReviewDecisionForbidden,
    ReviewDecisionNotAllowed,
    VelocityExceeded,
)
from ledger.invariants import ledger_verify
from ledger.models import Hold, ReviewCase, SpendCounter, Transfer, TransferRule
from ledger.services import (
    PendingMovement,
    credit_charge,
    hold_capture,
    hold_create,
    hold_void,
    holds_expire,
    review_case_decide,
    transfer_reverse,
)
from ledger.tests.factories import TEST_ACTOR, account, customer, hold_backdate, send

pytestmark = pytest.mark.django_db


def hold(source, destination, amount_minor, **overrides):
    arguments = {
        "account": source,
        "destination": destination,
        "amount_minor": amount_minor,
        "currency": source.currency,
        "reference": "booking",
        "expires_at": timezone.now() + timedelta(days=1),
        "created_by": source.owner,
        "actor": TEST_ACTOR,
    }
    arguments.update(overrides)
    return hold_create(**arguments)


def sent_today(owner) -> int:
    counter = SpendCounter.objects.filter(owner=owner, currency="EUR").order_by("-business_day").first()
    return counter.outgoing_minor if counter else 0


def block(user) -> None:
    CustomerProfile.objects.filter(user=user).update(status="blocked")


# --- the bypasses, each refused with the code a transfer gets -------------------------------------


def test_a_hold_over_the_per_movement_limit_is_refused(nothing_written):
    alice, merchant = account(balance_minor=20_000_00), account()
    guard = nothing_written()

    with pytest.raises(LimitPerTransferExceeded):
        hold(alice, merchant, 5_000_01)

    guard.check()


def test_holds_after_the_daily_limit_are_refused_and_holds_count_towards_it(nothing_written):
    alice, merchant = account(balance_minor=30_000_00), account()
    send(alice, merchant, 5_000_00)
    hold(alice, merchant, 5_000_00)  # 10,000.00 reserved or sent today
    guard = nothing_written()

    with pytest.raises(LimitDailyExceeded):
        hold(alice, merchant, 1)
    with pytest.raises(LimitDailyExceeded):
        send(alice, merchant, 1)

    guard.check()
    assert sent_today(alice.owner) == 10_000_00


def test_velocity_counts_holds_as_movements(nothing_written):
    alice, merchant = account(balance_minor=1_000_00), account()
    for _ in range(5):
        send(alice, merchant, 1_00)
        hold(alice, merchant, 1_00)
    guard = nothing_written()

    with pytest.raises(VelocityExceeded):
        hold(alice, merchant, 1_00)
    with pytest.raises(VelocityExceeded):
        send(alice, merchant, 1_00)

    guard.check()


def test_a_blocked_customer_neither_holds_nor_receives_a_hold(nothing_written):
    alice, bob = account(balance_minor=1_000_00), account(balance_minor=1_000_00)
    block(bob.owner)
    guard = nothing_written()

    with pytest.raises(AccountNotActive):
        hold(bob, alice, 1_00)
    with pytest.raises(AccountNotActive):
        hold(alice, bob, 1_00)

    guard.check()


def test_a_blocked_payers_hold_stays_reserved_capture_is_refused_void_releases(nothing_written):
    alice, merchant = account(balance_minor=1_000_00), account()
    booking = hold(alice, merchant, 300_00)
    block(alice.owner)
    guard = nothing_written()

    with pytest.raises(AccountNotActive):
        hold_capture(hold=booking, captured_by=merchant.owner, amount_minor=100_00, actor=TEST_ACTOR)
    guard.check()

    hold_void(hold=booking, voided_by=merchant.owner, actor=TEST_ACTOR)
    alice.refresh_from_db()
    assert (alice.held_minor, sent_today(alice.owner)) == (0, 0)


def test_a_blocked_payee_cannot_capture():
    alice, merchant = account(balance_minor=1_000_00), account()
    booking = hold(alice, merchant, 300_00)
    block(merchant.owner)

    with pytest.raises(AccountNotActive):
        hold_capture(hold=booking, captured_by=merchant.owner, amount_minor=100_00, actor=TEST_ACTOR)


def test_a_credit_charge_passes_the_same_policy(nothing_written):
    line = account(kind="credit_line", credit_limit_minor=20_000_00)
    with pytest.raises(LimitPerTransferExceeded):
        credit_charge(account=line, amount_minor=5_000_01, currency="EUR", reference="x", actor=TEST_ACTOR)
    credit_charge(account=line, amount_minor=5_000_00, currency="EUR", reference="x", actor=TEST_ACTOR)
    send(account(owner=line.owner, balance_minor=5_000_00), account(), 5_000_00)
    guard = nothing_written()

    with pytest.raises(LimitDailyExceeded):
        credit_charge(account=line, amount_minor=1, currency="EUR", reference="x", actor=TEST_ACTOR)
    block(line.owner)
    with pytest.raises(AccountNotActive):
        credit_charge(account=line, amount_minor=1, currency="EUR", reference="x", actor=TEST_ACTOR)

    guard.check()


def test_a_refund_counts_against_the_refunders_daily_limit_and_a_blocked_refunder_may_refund():
    payer, payee = account(balance_minor=5_000_00), account(balance_minor=10_000_00)
    paid = send(payer, payee, 5_000_00)
    send(payee, account(), 5_000_00)
    send(payee, account(), 4_000_00)  # 9,000.00 of the payee's 10,000.00 today

    with pytest.raises(LimitDailyExceeded):
        transfer_reverse(transfer=paid, amount_minor=1_000_01, reason="refund", actor=TEST_ACTOR)
    block(payee.owner)
    block(payer.owner)
    transfer_reverse(transfer=paid, amount_minor=1_000_00, reason="refund", actor=TEST_ACTOR)

    assert sent_today(payee.owner) == 10_000_00


def test_no_review_threshold_for_a_currency_means_no_movement(nothing_written):
    TransferRule.objects.filter(kind="review_threshold", currency="EUR").update(active=False)
    alice, bob = account(balance_minor=100_00), account()
    guard = nothing_written()

    with pytest.raises(LimitNotConfigured):
        send(alice, bob, 1_00)
    with pytest.raises(LimitNotConfigured):
        hold(alice, bob, 1_00)

    guard.check()


# --- how a hold counts -------------------------------------------------------------------------


def test_a_hold_counts_once_at_creation_and_gives_back_what_it_did_not_capture():
    alice, merchant = account(balance_minor=20_000_00), account()
    booking = hold(alice, merchant, 5_000_00)
    hold_capture(hold=booking, captured_by=merchant.owner, amount_minor=2_000_00, actor=TEST_ACTOR)
    assert sent_today(alice.owner) == 5_000_00  # the capture did not count again

    hold_void(hold=booking, voided_by=merchant.owner, actor=TEST_ACTOR)
    assert sent_today(alice.owner) == 2_000_00
    send(alice, merchant, 5_000_00)
    send(alice, merchant, 3_000_00)  # exactly 10,000.00
    assert ledger_verify() == []


def test_an_expired_hold_gives_back_its_day_not_today(monkeypatch):
    alice, merchant = account(balance_minor=20_000_00), account()
    booking = hold(alice, merchant, 4_000_00, expires_at=timezone.now() + timedelta(hours=1))
    reserved_on = Hold.objects.get(pk=booking.pk).limit_day
    hold_backdate(booking, expires_at=timezone.now() - timedelta(seconds=1))

    holds_expire(now=timezone.now() + timedelta(days=2), actor=TEST_ACTOR)

    counter = SpendCounter.objects.get(owner=alice.owner, currency="EUR", business_day=reserved_on)
    assert counter.outgoing_minor == 0
    assert ledger_verify() == []


def test_the_business_day_follows_the_configured_time_zone_on_a_daylight_saving_day(settings, monkeypatch):
    """Europe/Berlin, 28 March 2027: clocks go forward, so the business day runs 23:00Z to 22:00Z (23 hours)."""
    settings.LEDGER_LIMIT_TIME_ZONE = "Europe/Berlin"
    alice = account(balance_minor=30_000_00)
    late_on_the_short_day = datetime(2027, 3, 28, 21, 30, tzinfo=UTC)  # 23:30 CEST, still the 28th
    monkeypatch.setattr("ledger.services.transfers.timezone.now", lambda: late_on_the_short_day)
    send(alice, account(), 5_000_00)
    send(alice, account(), 5_000_00)

    with pytest.raises(LimitDailyExceeded) as refused:
        send(alice, account(), 1)

    assert refused.value.extra["resets_at"] == "2027-03-28T22:00:00+00:00"  # midnight CEST, 23 hours after 23:00Z
    next_day = datetime(2027, 3, 28, 22, 0, 1, tzinfo=UTC)
    monkeypatch.setattr("ledger.services.transfers.timezone.now", lambda: next_day)
    send(alice, account(), 5_000_00)
    assert set(SpendCounter.objects.filter(owner=alice.owner).values_list("business_day", "outgoing_minor")) == {
        (date(2027, 3, 28), 10_000_00),
        (date(2027, 3, 29), 5_000_00),
    }


# --- review cases ------------------------------------------------------------------------------


@pytest.fixture
def hold_large_eur():
    return TransferRule.objects.create(
        name="hold EUR 2,000.00 or more",
        kind="review_threshold",
        currency="EUR",
        threshold_minor=2_000_00,
        action="hold_for_review",
    )


@pytest.fixture
def officer():
    return staff_create(email="officer@example.com", password=None, roles=["compliance_officer"])


def test_a_held_transfer_posts_nothing_until_approved_then_posts_under_the_promised_id(hold_large_eur, officer):
    alice, bob = account(balance_minor=5_000_00), account()

    pending = send(alice, bob, 3_000_00)

    assert isinstance(pending, PendingMovement)
    alice.refresh_from_db()
    assert (alice.posted_minor, alice.held_minor) == (5_000_00, 3_000_00)
    assert not Transfer.objects.filter(public_id=pending.public_id).exists()
    case = ReviewCase.objects.get()
    assert (case.kind, case.status, case.reasons) == ("held_movement", "open", ["hold EUR 2,000.00 or more"])

    review_case_decide(case_public_id=case.public_id, approve=True, reason="source of funds checked", officer=officer)

    posted = Transfer.objects.get(public_id=pending.public_id)
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert (posted.kind, posted.amount_minor, alice.posted_minor, alice.held_minor, bob.posted_minor) == (
        "transfer",
        3_000_00,
        2_000_00,
        0,
        3_000_00,
    )
    event = AuditEvent.objects.get(event_type="ledger.review_case.approved")
    assert event.actor_staff == str(officer.public_id)
    assert ledger_verify() == []
    with pytest.raises(ReviewCaseAlreadyDecided):
        review_case_decide(case_public_id=case.public_id, approve=False, reason="too late", officer=officer)


def test_a_rejected_held_transfer_releases_the_money_and_the_daily_limit(hold_large_eur, officer):
    alice, bob = account(balance_minor=5_000_00), account()
    pending = send(alice, bob, 3_000_00)
    case = ReviewCase.objects.get()

    review_case_decide(case_public_id=case.public_id, approve=False, reason="no explanation", officer=officer)

    alice.refresh_from_db()
    assert (alice.posted_minor, alice.held_minor, sent_today(alice.owner)) == (5_000_00, 0, 0)
    assert not Transfer.objects.filter(public_id=pending.public_id).exists()
    assert Hold.objects.get(transfer_public_id=pending.public_id).status == "voided"
    assert ledger_verify() == []


def test_a_blocked_customers_case_can_only_be_rejected(hold_large_eur, officer):
    alice, bob = account(balance_minor=5_000_00), account()
    send(alice, bob, 3_000_00)
    case = ReviewCase.objects.get()
    block(alice.owner)

    with pytest.raises(ReviewDecisionNotAllowed):
        review_case_decide(case_public_id=case.public_id, approve=True, reason="ok", officer=officer)
    review_case_decide(case_public_id=case.public_id, approve=False, reason="blocked", officer=officer)


def test_a_held_authorisation_cannot_be_captured_until_approved(hold_large_eur, officer):
    """The payee is told what any uncapturable hold says (`hold_not_active`), never that a review holds it."""
    alice, merchant = account(balance_minor=5_000_00), account()
    booking = hold(alice, merchant, 3_000_00)
    case = ReviewCase.objects.get(hold=booking)

    with pytest.raises(HoldNotActive):
        hold_capture(hold=booking, captured_by=merchant.owner, amount_minor=1_00, actor=TEST_ACTOR)
    review_case_decide(case_public_id=case.public_id, approve=True, reason="known merchant", officer=officer)
    hold_capture(hold=booking, captured_by=merchant.owner, amount_minor=1_00, actor=TEST_ACTOR)


def test_a_flag_rule_posts_and_opens_a_case_that_never_reverses_it(officer):
    business = account(owner=customer(tier="business"), balance_minor=50_000_00)
    flagged = send(business, account(), 10_000_00)
    case = ReviewCase.objects.get(transfer_id=flagged.pk)

    review_case_decide(case_public_id=case.public_id, approve=False, reason="suspicious", officer=officer)

    assert Transfer.objects.get(pk=flagged.pk).reversed_minor == 0


def test_ledger_verify_names_a_counter_that_does_not_match_the_movements():
    alice = account(balance_minor=1_000_00)
    send(alice, account(), 10_00)
    SpendCounter.objects.filter(owner=alice.owner).update(outgoing_minor=1)

    problems = ledger_verify()

    assert [problem.check for problem in problems] == ["spend_counter_not_sum_of_movements"]


def test_a_held_credit_charge_writes_what_a_held_transfer_writes(officer):
    """Parity: the Python branch (credit charge) and the SQL branch (transfer) of hold_for_review write the same."""
    TransferRule.objects.create(
        name="hold everything EUR", kind="review_threshold", currency="EUR", threshold_minor=1, action="hold_for_review"
    )
    alice, bob = account(balance_minor=1_000_00), account()
    line = account(owner=alice.owner, kind="credit_line", credit_limit_minor=1_000_00)

    by_sql = send(alice, bob, 100_00)
    by_python = credit_charge(
        account=line,
        amount_minor=100_00,
        currency="EUR",
        reference="rent",
        initiated_by=alice.owner,
        client_id="mobile-app",
        actor=TEST_ACTOR,
    )

    fields = (
        "purpose",
        "status",
        "amount_minor",
        "captured_minor",
        "currency",
        "reference",
        "created_by_id",
        "client_id",
        "limit_day",
        "expires_at",
    )
    sql_hold = Hold.objects.filter(transfer_public_id=by_sql.public_id).values(*fields, "movement_kind").get()
    python_hold = Hold.objects.filter(transfer_public_id=by_python.public_id).values(*fields, "movement_kind").get()
    assert {**sql_hold, "movement_kind": None} == {**python_hold, "movement_kind": None}
    assert (sql_hold["movement_kind"], python_hold["movement_kind"]) == ("transfer", "credit_charge")
    events = {
        event.event_type: event.payload for event in AuditEvent.objects.filter(event_type__endswith=".held_for_review")
    }
    sql_event, python_event = events["ledger.transfer.held_for_review"], events["ledger.credit_charge.held_for_review"]
    assert sorted(sql_event) == sorted(python_event)
    assert {key: sql_event[key] for key in ("amount_minor", "currency", "reference", "review_reasons")} == {
        key: python_event[key] for key in ("amount_minor", "currency", "reference", "review_reasons")
    }
    cases = ReviewCase.objects.order_by("id").values_list("kind", "status", "amount_minor", "reasons")
    assert list(cases) == [("held_movement", "open", 100_00, ["hold everything EUR"])] * 2


def test_an_undecided_case_is_escalated_once_through_the_alert_service_and_never_approved(hold_large_eur, settings):
    from django.contrib.auth.models import Group

    from ledger.models import OutboxMessage
    from ledger.services import review_cases_escalate

    settings.LEDGER_REVIEW_ESCALATE_AFTER_HOURS = 24
    officer_user = customer()
    officer_user.groups.add(Group.objects.get_or_create(name="compliance_officer")[0])
    alice, bob = account(balance_minor=5_000_00), account()
    send(alice, bob, 3_000_00)
    case = ReviewCase.objects.get()

    assert review_cases_escalate(now=timezone.now() + timedelta(hours=23)) == 0
    assert review_cases_escalate(now=timezone.now() + timedelta(hours=25)) == 1
    assert review_cases_escalate(now=timezone.now() + timedelta(hours=48)) == 0  # once per case

    case.refresh_from_db()
    assert (case.status, case.escalated_at is not None) == ("open", True)
    alert = AuditEvent.objects.get(event_type="alert.raised")
    assert (alert.object_id, alert.payload["kind"], alert.payload["role"]) == (
        str(case.public_id),
        "review_case_overdue",
        "compliance_officer",
    )
    email = OutboxMessage.objects.get(topic="alert.raised")
    assert (email.recipient_user_id, email.payload["object"]) == (officer_user.pk, str(case.public_id))


def test_only_an_officer_with_the_permission_decides_and_never_their_own_case(hold_large_eur, officer):
    """The permission lives in the service, so every door that decides a case (admin or any later one) has it."""
    operations = staff_create(email="ops@example.com", password=None, roles=["operations"])
    alice, bob = account(owner=officer, balance_minor=5_000_00), account()
    CustomerProfile.objects.create(user=officer, tier="standard")
    send(alice, bob, 3_000_00)  # the officer is also a customer here, and is the subject
    case = ReviewCase.objects.get()

    for who in (operations, officer):
        with pytest.raises(ReviewDecisionForbidden):
            review_case_decide(case_public_id=case.public_id, approve=True, reason="looks fine", officer=who)

    case.refresh_from_db()
    assert case.status == "open"
    assert not AuditEvent.objects.filter(event_type__startswith="ledger.review_case.a").exists()


def test_an_approved_transfer_is_posted_with_the_audit_payload_and_outbox_rows_of_an_immediate_one(officer):
    """Parity: the SQL path (`ledger_transfer_create`) and the Python path an approval takes write the same rows."""
    from ledger.models import OutboxMessage

    alice, bob = account(balance_minor=5_000_00), account()
    immediate = send(alice, bob, 100_00)
    TransferRule.objects.create(
        name="hold all EUR", kind="review_threshold", currency="EUR", threshold_minor=1, action="hold_for_review"
    )
    pending = send(alice, bob, 100_00)
    review_case_decide(
        case_public_id=ReviewCase.objects.get().public_id, approve=True, reason="checked", officer=officer
    )

    def posted(public_id):
        payload = AuditEvent.objects.get(event_type="ledger.transfer.posted", object_id=str(public_id)).payload
        payload.pop("approved_review_hold", None)
        payload.pop("transfer")
        for posting in payload["postings"]:
            posting.pop("account")
        messages = OutboxMessage.objects.filter(payload__transfer=str(public_id)).order_by("recipient_user_id")
        rows = [
            (m.topic, m.channel, m.recipient_user_id, {k: v for k, v in m.payload.items() if k != "transfer"})
            for m in messages
        ]
        return payload, rows

    assert posted(immediate.public_id) == posted(pending.public_id)
    assert len(posted(immediate.public_id)[1]) == 2  # an email to the payer and one to the payee


def test_an_officer_who_receives_the_money_may_not_decide_its_case(hold_large_eur, officer):
    """Found in review: only the subject (payer) was checked; the payee is just as interested."""
    CustomerProfile.objects.create(user=officer, tier="standard")
    alice, officers_account = account(balance_minor=5_000_00), account(owner=officer)
    send(alice, officers_account, 3_000_00)

    with pytest.raises(ReviewDecisionForbidden):
        review_case_decide(
            case_public_id=ReviewCase.objects.get().public_id, approve=True, reason="fine", officer=officer
        )


def test_capturing_all_that_remains_is_decided_under_the_lock(nothing_written):
    """Found in review: "no amount" was read before the lock, so a finished hold answered invalid_amount."""
    alice, merchant = account(balance_minor=1_000_00), account()
    booking = hold(alice, merchant, 300_00)
    hold_capture(hold=booking, captured_by=merchant.owner, amount_minor=100_00, actor=TEST_ACTOR)

    rest = hold_capture(hold=booking, captured_by=merchant.owner, amount_minor=None, actor=TEST_ACTOR)
    guard = nothing_written()

    assert rest.amount_minor == 200_00
    with pytest.raises(HoldNotActive):
        hold_capture(hold=booking, captured_by=merchant.owner, amount_minor=None, actor=TEST_ACTOR)
    guard.check()


def test_a_customer_cannot_refund_a_deposit_or_a_credit_charge(nothing_written):
    """Found in review: a (blocked) customer could send money back to the platform's funding account."""
    from ledger.exceptions import TransferNotReversible
    from ledger.services import deposit_from_funding

    alice = account()
    deposit = deposit_from_funding(account=alice, amount_minor=100_00, reason="funding", actor=TEST_ACTOR)
    guard = nothing_written()

    with pytest.raises(TransferNotReversible):
        transfer_reverse(
            transfer=deposit, amount_minor=1_00, reason="give back", initiated_by=alice.owner, actor=TEST_ACTOR
        )
    guard.check()
