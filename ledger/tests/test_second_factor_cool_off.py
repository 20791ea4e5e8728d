"""A customer's lost second factor: a four-eyes identity check, then 24 hours without payments (ADR 0015).

Receiving keeps working; every way money leaves the customer is refused
with `second_factor_recently_reset` until the pause ends.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.approvals.exceptions import ApprovalBySelfRefused
from accounts.approvals.kinds_customers import customer_second_factor_reset_request
from accounts.approvals.services import approval_request_approve
from accounts.models import CustomerProfile
from accounts.services import staff_create
from audit.models import AuditEvent
from ledger.exceptions import SendingPausedAfterSecondFactorReset
from ledger.tests.factories import account, generous_limits, no_rules, send
from ledger.tests.test_money_controls import hold

pytestmark = pytest.mark.django_db


def _approve(approval, approver):
    return approval_request_approve(
        approval_id=approval.public_id, approver=approver, change_hash=approval.change_hash,
        mfa_verified_at=timezone.now(),
    )  # fmt: skip


def test_after_an_approved_reset_nothing_leaves_the_customer_for_24_hours(nothing_written):
    generous_limits()
    no_rules()
    alice, bob = account(balance_minor=1_000_00), account(balance_minor=1_000_00)
    TOTPDevice.objects.create(user=alice.owner, name="lost phone", confirmed=True)
    operator = staff_create(email="ops.reset@example.com", password=None, roles=["operations"])
    officer = staff_create(email="officer.reset@example.com", password=None, roles=["compliance_officer"])

    approval = customer_second_factor_reset_request(
        customer=alice.owner, requested_by=operator, reason="video call, passport checked, ticket 881"
    )
    with pytest.raises(ApprovalBySelfRefused):
        _approve(approval, operator)
    assert TOTPDevice.objects.filter(user=alice.owner).exists()

    _approve(approval, officer)
    profile = CustomerProfile.objects.get(user=alice.owner)
    assert not TOTPDevice.objects.filter(user=alice.owner).exists()
    assert timedelta(hours=23, minutes=59) < profile.sending_paused_until - timezone.now() <= timedelta(hours=24)
    assert AuditEvent.objects.filter(event_type="customer.second_factor_reset", actor_staff=str(officer.public_id))

    guard = nothing_written()
    with pytest.raises(SendingPausedAfterSecondFactorReset) as refused:
        send(alice, bob, 1_00)
    assert refused.value.extra["resets_at"]
    with pytest.raises(SendingPausedAfterSecondFactorReset):
        hold(alice, bob, 1_00)
    guard.check()

    send(bob, alice, 5_00)  # receiving still works
    CustomerProfile.objects.filter(pk=profile.pk).update(sending_paused_until=timezone.now() - timedelta(seconds=1))
    send(alice, bob, 1_00)
