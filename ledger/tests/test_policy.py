"""Limits and risk rules on customer transfers, as seeded by migration and as changed by operators.

Seeded: standard EUR 5,000.00 per transfer and 10,000.00 per UTC day; a 10,000.00 EUR review
threshold (flag); more than 10 transfers a minute (refuse).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from ledger.exceptions import (
    LimitDailyExceeded,
    LimitNotConfigured,
    LimitPerTransferExceeded,
    TransferRefusedByRule,
    VelocityExceeded,
)
from ledger.models import TransferLimit, TransferRule
from ledger.tests.factories import account, customer, send

pytestmark = pytest.mark.django_db


# --- limits (seeded: standard EUR 5,000.00 per transfer, 10,000.00 per UTC day) ---------------


def test_the_per_transfer_limit_of_the_tier(nothing_written):
    alice = account(balance_minor=20_000_00)
    bob = account()
    send(alice, bob, 5_000_00)
    guard = nothing_written()

    with pytest.raises(LimitPerTransferExceeded) as error:
        send(alice, bob, 5_000_01)

    assert (error.value.code, error.value.status) == ("limit_per_transfer_exceeded", 422)
    assert error.value.extra == {"limit": "5000.00", "limit_minor": 5_000_00, "currency": "EUR"}
    guard.check()


def test_a_premium_customer_may_send_more_at_once():
    alice = account(owner=customer(tier="premium"), balance_minor=30_000_00)

    send(alice, account(), 25_000_00)

    with pytest.raises(LimitPerTransferExceeded):
        send(alice, account(), 25_000_01)


def test_the_daily_limit_counts_everything_the_owner_sent_today_from_any_account(nothing_written):
    owner = customer()
    current = account(owner=owner, balance_minor=20_000_00)
    savings = account(owner=owner, balance_minor=20_000_00)
    bob = account()
    send(current, bob, 5_000_00)
    send(savings, bob, 4_999_99)
    send(current, bob, 1)  # exactly 10,000.00 today
    guard = nothing_written()

    with pytest.raises(LimitDailyExceeded) as error:
        send(savings, bob, 1)

    assert (error.value.code, error.value.status) == ("limit_daily_exceeded", 422)
    assert error.value.extra == {
        "limit": "10000.00",
        "remaining": "0.00",
        "limit_minor": 10_000_00,
        "remaining_minor": 0,
        "currency": "EUR",
        "resets_at": f"{(timezone.now() + timedelta(days=1)).date().isoformat()}T00:00:00+00:00",
    }
    guard.check()


def test_incoming_money_and_other_currencies_do_not_count_towards_the_daily_limit():
    owner = customer()
    euros = account(owner=owner, balance_minor=20_000_00)
    dollars = account(owner=owner, currency="USD", balance_minor=20_000_00)
    send(euros, account(), 5_000_00)
    send(dollars, account(currency="USD"), 5_000_00)
    send(account(balance_minor=5_000_00), euros, 5_000_00)

    send(euros, account(), 5_000_00)  # 10,000.00 EUR today: still within


def test_the_daily_limit_starts_again_at_midnight_utc(monkeypatch):
    alice = account(balance_minor=20_000_00)
    send(alice, account(), 5_000_00)
    send(alice, account(), 5_000_00)
    with pytest.raises(LimitDailyExceeded):
        send(alice, account(), 1_00)

    tomorrow = timezone.now() + timedelta(days=1)
    monkeypatch.setattr("ledger.services.transfers.timezone.now", lambda: tomorrow)
    send(alice, account(), 5_000_00)


def test_no_limit_configured_means_no_transfer(nothing_written):
    alice = account(currency="CHF", balance_minor=100_00)
    bob = account(currency="CHF")
    guard = nothing_written()

    with pytest.raises(LimitNotConfigured) as error:
        send(alice, bob, 1_00)

    assert (error.value.code, error.value.status) == ("limit_not_configured", 422)
    guard.check()


# --- rules (seeded: 10,000.00 EUR or more -> flag; more than 10 a minute -> refuse) -----------


def test_a_large_transfer_is_flagged_for_review():
    business = account(owner=customer(tier="business"), balance_minor=50_000_00)

    below = send(business, account(), 9_999_99)
    at = send(business, account(), 10_000_00)

    assert (below.flagged_for_review, below.review_reasons) == (False, [])
    assert at.flagged_for_review is True
    assert at.review_reasons == ["Review transfers of 10,000.00 EUR or more"]
    event = AuditEvent.objects.get(event_type="ledger.transfer.posted", object_id=str(at.public_id))
    assert event.payload["review_reasons"] == ["Review transfers of 10,000.00 EUR or more"]


def test_the_threshold_rule_is_per_currency():
    business = account(owner=customer(tier="business"), currency="USD", balance_minor=50_000_00)
    TransferRule.objects.filter(kind="review_threshold", currency="USD").update(threshold_minor=20_000_00)

    assert send(business, account(currency="USD"), 10_000_00).flagged_for_review is False  # the EUR rule is not USD's
    assert send(business, account(currency="USD"), 20_000_00).review_reasons == [
        "Review transfers of 10,000.00 USD or more"  # the seeded name; its threshold was raised above
    ]


def test_a_refusing_threshold_rule_refuses(nothing_written):
    TransferRule.objects.create(
        name="no large GBP", kind="review_threshold", currency="GBP", threshold_minor=1_000_00, action="refuse"
    )
    alice = account(currency="GBP", balance_minor=2_000_00)
    bob = account(currency="GBP")
    guard = nothing_written()

    with pytest.raises(TransferRefusedByRule) as error:
        send(alice, bob, 1_000_00)

    assert (error.value.code, error.value.status) == ("transfer_refused_by_rule", 422)
    guard.check()


def test_the_eleventh_transfer_within_a_minute_is_refused(nothing_written):
    alice = account(balance_minor=1_000_00)
    bob = account()
    for _ in range(10):
        send(alice, bob, 1_00)
    guard = nothing_written()

    with pytest.raises(VelocityExceeded) as error:
        send(alice, bob, 1_00)

    assert (error.value.code, error.value.status) == ("velocity_exceeded", 429)
    # The current minute leaves the (conservative) window at the start of the minute after next.
    assert 60 < int(error.value.headers["Retry-After"]) <= 120
    guard.check()


def test_a_burst_across_a_minute_boundary_does_not_get_past_velocity(monkeypatch, nothing_written):
    """Found in review: with calendar-minute buckets, 10 at :59 and 10 at :01 passed a 10-a-minute rule."""
    alice, bob = account(balance_minor=1_000_00), account()
    boundary = (timezone.now() + timedelta(minutes=5)).replace(second=0, microsecond=0)
    monkeypatch.setattr("ledger.services.transfers.timezone.now", lambda: boundary - timedelta(seconds=1))
    for _ in range(10):
        send(alice, bob, 1_00)
    monkeypatch.setattr("ledger.services.transfers.timezone.now", lambda: boundary + timedelta(seconds=1))
    guard = nothing_written()

    with pytest.raises(VelocityExceeded):
        send(alice, bob, 1_00)

    guard.check()


def test_velocity_counts_only_recent_transfers(monkeypatch):
    alice = account(balance_minor=1_000_00)
    for _ in range(10):
        send(alice, account(), 1_00)

    later = timezone.now() + timedelta(minutes=2)
    monkeypatch.setattr("ledger.services.transfers.timezone.now", lambda: later)

    send(alice, account(), 1_00)


def test_an_inactive_rule_does_nothing():
    TransferRule.objects.filter(kind="velocity").update(active=False)
    alice = account(balance_minor=1_000_00)

    for _ in range(12):
        send(alice, account(), 1_00)

    alice.refresh_from_db()
    assert alice.posted_minor == 988_00


def test_limits_and_rules_are_seeded_by_migration():

    limits = {
        (limit.tier, limit.currency): (limit.per_transfer_max_minor, limit.daily_outgoing_max_minor)
        for limit in TransferLimit.objects.all()
    }
    assert limits[("standard", "EUR")] == (5_000_00, 10_000_00)
    assert limits[("business", "GBP")] == (100_000_00, 250_000_00)
    assert {(tier, currency) for tier, currency in limits} >= {
        (tier, currency) for tier in ("standard", "premium", "business") for currency in ("EUR", "USD", "GBP")
    }
    rules = {rule.kind: rule for rule in TransferRule.objects.all()}
    assert (rules["review_threshold"].threshold_minor, rules["review_threshold"].action) == (10_000_00, "flag")
    assert (rules["velocity"].max_count, rules["velocity"].window_minutes, rules["velocity"].action) == (
        10,
        1,
        "refuse",
    )
