"""Holds: reserve, capture in parts, void, expire; held_minor always equals what active holds keep."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from ledger.exceptions import (
    AccountNotActive,
    AccountNotEmpty,
    CaptureExceedsHold,
    CurrencyMismatch,
    HoldExpired,
    HoldNotActive,
    InsufficientFunds,
    InvalidAmount,
    InvalidHoldExpiry,
    SameAccount,
)
from ledger.invariants import ledger_verify
from ledger.models import Hold, LedgerAccount, Transfer
from ledger.services import account_status_change, hold_capture, hold_create, hold_void, holds_expire
from ledger.tasks import expire_holds
from ledger.tests.factories import TEST_ACTOR, account, hold_backdate

pytestmark = pytest.mark.django_db


def hold(source: LedgerAccount, destination: LedgerAccount, amount_minor: int, **overrides) -> Hold:
    arguments = {
        "account": source,
        "destination": destination,
        "amount_minor": amount_minor,
        "currency": source.currency,
        "reference": "hotel booking",
        "expires_at": timezone.now() + timedelta(days=7),
        "created_by": source.owner,
        "actor": TEST_ACTOR,
    }
    arguments.update(overrides)
    return hold_create(**arguments)


def balances(account_: LedgerAccount) -> tuple[int, int, int]:
    account_.refresh_from_db()
    return account_.posted_minor, account_.held_minor, account_.available_minor


def test_a_hold_reserves_money_without_moving_it():
    guest = account(balance_minor=500_00)
    hotel = account()

    created = hold(guest, hotel, 300_00)

    assert balances(guest) == (500_00, 300_00, 200_00)
    assert balances(hotel) == (0, 0, 0)
    assert (created.status, created.amount_minor, created.captured_minor) == ("active", 300_00, 0)
    guest.refresh_from_db()
    assert guest.version == 2  # the deposit, then the hold
    assert Transfer.objects.filter(kind="hold_capture").count() == 0
    event = AuditEvent.objects.get(event_type="ledger.hold.created")
    assert event.object_id == str(created.public_id)
    assert event.payload["amount_minor"] == 300_00
    assert ledger_verify() == []


def test_a_hold_needs_available_money(nothing_written):
    guest = account(balance_minor=100_00)
    hotel = account()
    hold(guest, hotel, 60_00)
    guard = nothing_written()

    with pytest.raises(InsufficientFunds):
        hold(guest, hotel, 40_01)

    guard.check()


def test_a_hold_on_a_credit_line_may_use_the_credit():
    line = account(kind="credit_line", credit_limit_minor=1_000_00)
    shop = account()

    hold(line, shop, 1_000_00)

    assert balances(line) == (0, 1_000_00, -1_000_00)
    with pytest.raises(InsufficientFunds):
        hold(line, shop, 1)


def test_partial_captures_move_money_and_release_held_money_as_they_go():
    guest = account(balance_minor=500_00)
    hotel = account()
    booking = hold(guest, hotel, 300_00)

    first = hold_capture(hold=booking, captured_by=booking.destination.owner, amount_minor=100_00, actor=TEST_ACTOR)
    booking.refresh_from_db()
    assert (booking.status, booking.captured_minor, booking.remaining_minor) == ("active", 100_00, 200_00)
    assert balances(guest) == (400_00, 200_00, 200_00)
    assert balances(hotel) == (100_00, 0, 100_00)

    second = hold_capture(
        hold=booking, captured_by=booking.destination.owner, amount_minor=200_00, actor=TEST_ACTOR, reference="checkout"
    )
    booking.refresh_from_db()
    assert (booking.status, booking.captured_minor) == ("captured", 300_00)
    assert balances(guest) == (200_00, 0, 200_00)
    assert balances(hotel) == (300_00, 0, 300_00)

    assert (first.kind, first.amount_minor, first.hold_id, first.reference) == (
        "hold_capture",
        100_00,
        booking.id,
        "hotel booking",
    )
    assert (second.amount_minor, second.reference) == (200_00, "checkout")
    assert sorted(second.postings.values_list("amount_minor", flat=True)) == [-200_00, 200_00]
    assert AuditEvent.objects.filter(event_type="ledger.hold.captured").count() == 2
    assert ledger_verify() == []


def test_a_capture_cannot_exceed_what_remains(nothing_written):
    guest = account(balance_minor=500_00)
    booking = hold(guest, account(), 300_00)
    hold_capture(hold=booking, captured_by=booking.destination.owner, amount_minor=250_00, actor=TEST_ACTOR)
    guard = nothing_written()

    with pytest.raises(CaptureExceedsHold) as error:
        hold_capture(hold=booking, captured_by=booking.destination.owner, amount_minor=50_01, actor=TEST_ACTOR)

    assert (error.value.code, error.value.status) == ("capture_exceeds_hold", 422)
    guard.check()


def test_a_fully_captured_hold_is_no_longer_active(nothing_written):
    guest = account(balance_minor=500_00)
    booking = hold(guest, account(), 300_00)
    hold_capture(hold=booking, captured_by=booking.destination.owner, amount_minor=300_00, actor=TEST_ACTOR)
    guard = nothing_written()

    with pytest.raises(HoldNotActive) as error:
        hold_capture(hold=booking, captured_by=booking.destination.owner, amount_minor=1, actor=TEST_ACTOR)
    with pytest.raises(HoldNotActive):
        hold_void(hold=booking, voided_by=booking.destination.owner, actor=TEST_ACTOR)

    assert (error.value.code, error.value.status) == ("hold_not_active", 409)
    guard.check()


def test_a_void_releases_what_remains():
    guest = account(balance_minor=500_00)
    hotel = account()
    booking = hold(guest, hotel, 300_00)
    hold_capture(hold=booking, captured_by=booking.destination.owner, amount_minor=120_00, actor=TEST_ACTOR)

    voided = hold_void(hold=booking, voided_by=booking.destination.owner, reason="guest left early", actor=TEST_ACTOR)

    assert (voided.status, voided.captured_minor) == ("voided", 120_00)
    assert balances(guest) == (380_00, 0, 380_00)
    assert balances(hotel) == (120_00, 0, 120_00)
    assert AuditEvent.objects.get(event_type="ledger.hold.voided").payload["reason"] == "guest left early"
    with pytest.raises(HoldNotActive):
        hold_capture(hold=booking, captured_by=booking.destination.owner, amount_minor=1, actor=TEST_ACTOR)
    assert ledger_verify() == []


def test_overdue_holds_expire_and_release_their_money():
    guest = account(balance_minor=500_00)
    hotel = account()
    overdue = hold(guest, hotel, 100_00, expires_at=timezone.now() + timedelta(minutes=5))
    hold_capture(hold=overdue, captured_by=overdue.destination.owner, amount_minor=30_00, actor=TEST_ACTOR)
    later = hold(guest, hotel, 50_00, expires_at=timezone.now() + timedelta(days=2))
    hold_backdate(overdue, expires_at=timezone.now() - timedelta(seconds=1))  # the database's clock decides

    expired = holds_expire(now=timezone.now() + timedelta(hours=1), actor=TEST_ACTOR)

    assert expired == 1
    overdue.refresh_from_db()
    later.refresh_from_db()
    assert (overdue.status, overdue.captured_minor) == ("expired", 30_00)
    assert later.status == "active"
    assert balances(guest) == (470_00, 50_00, 420_00)
    assert AuditEvent.objects.filter(event_type="ledger.hold.expired", object_id=str(overdue.public_id)).count() == 1
    assert holds_expire(now=timezone.now() + timedelta(hours=1), actor=TEST_ACTOR) == 0  # idempotent
    assert ledger_verify() == []


def test_expiry_works_in_bounded_batches():
    guest = account(balance_minor=500_00)
    hotel = account()
    for _ in range(5):
        hold_backdate(
            hold(guest, hotel, 10_00, expires_at=timezone.now() + timedelta(minutes=1)),
            expires_at=timezone.now() - timedelta(seconds=1),
        )
    an_hour_later = timezone.now() + timedelta(hours=1)

    assert holds_expire(now=an_hour_later, actor=TEST_ACTOR, batch_size=2) == 2
    assert holds_expire(now=an_hour_later, actor=TEST_ACTOR, batch_size=2) == 2
    assert holds_expire(now=an_hour_later, actor=TEST_ACTOR, batch_size=2) == 1
    assert balances(guest) == (500_00, 0, 500_00)


def test_the_beat_task_expires_holds(monkeypatch):
    guest = account(balance_minor=500_00)
    overdue = hold(guest, account(), 100_00, expires_at=timezone.now() + timedelta(minutes=1))
    hold_backdate(overdue, expires_at=timezone.now() - timedelta(seconds=1))

    assert expire_holds.apply().get() == 1

    overdue.refresh_from_db()
    assert overdue.status == "expired"
    event = AuditEvent.objects.get(event_type="ledger.hold.expired")
    assert event.actor_client == "system:ledger.expire_holds"


def test_a_hold_past_its_expiry_cannot_be_captured_even_before_the_sweep(monkeypatch, nothing_written):
    guest = account(balance_minor=500_00)
    booking = hold(guest, account(), 100_00, expires_at=timezone.now() + timedelta(minutes=1))
    later = timezone.now() + timedelta(minutes=2)
    monkeypatch.setattr("ledger.services.holds.timezone.now", lambda: later)
    guard = nothing_written()

    with pytest.raises(HoldExpired) as error:
        hold_capture(hold=booking, captured_by=booking.destination.owner, amount_minor=1_00, actor=TEST_ACTOR)

    assert (error.value.code, error.value.status) == ("hold_expired", 409)
    guard.check()


@pytest.mark.parametrize(
    "expires_in", [timedelta(seconds=-1), timedelta(0), timedelta(days=30, seconds=1), timedelta(days=400)]
)
def test_hold_expiry_must_be_in_the_near_future(expires_in, nothing_written):
    guest = account(balance_minor=500_00)
    hotel = account()
    guard = nothing_written()

    with pytest.raises(InvalidHoldExpiry):
        hold(guest, hotel, 1_00, expires_at=timezone.now() + expires_in)

    guard.check()


def test_hold_requests_are_validated(nothing_written):
    guest = account(balance_minor=500_00)
    hotel = account()
    dollars = account(currency="USD")
    guard = nothing_written()

    with pytest.raises(SameAccount):
        hold(guest, guest, 1_00)
    with pytest.raises(CurrencyMismatch):
        hold(guest, dollars, 1_00)
    with pytest.raises(InvalidAmount):
        hold(guest, hotel, 0)

    guard.check()


def test_a_capture_into_a_blocked_destination_is_refused(nothing_written):
    guest = account(balance_minor=500_00)
    hotel = account()
    booking = hold(guest, hotel, 100_00)
    account_status_change(account=hotel, status="blocked", reason="investigation", actor=TEST_ACTOR)
    guard = nothing_written()

    with pytest.raises(AccountNotActive):
        hold_capture(hold=booking, captured_by=booking.destination.owner, amount_minor=1_00, actor=TEST_ACTOR)

    guard.check()


def test_an_account_with_active_holds_cannot_be_closed():
    guest = account()
    hold_void(hold=hold(account(balance_minor=1_00), guest, 1_00), voided_by=guest.owner, actor=TEST_ACTOR)
    line = account(kind="credit_line", credit_limit_minor=10_00)
    hold(line, guest, 5_00)

    with pytest.raises(AccountNotEmpty):
        account_status_change(account=line, status="closed", reason="customer request", actor=TEST_ACTOR)
    closed = account_status_change(account=guest, status="closed", reason="customer request", actor=TEST_ACTOR)
    assert closed.status == "closed"
