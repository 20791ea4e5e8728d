"""The customer profile in the admin: staff block at once, unblock with a second person, never re-point it.

A profile carries the customer's identity: the national ID's vault token, the
phone's blind index and PII bound to the owner's public id (ADR 0013).
Re-pointing the row at another user would hand that user someone else's
national ID and "identity captured" status, so the owner is read-only.
"""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.utils import timezone

from accounts.approvals.models import ApprovalRequest
from accounts.approvals.services import approval_request_approve
from accounts.models import CustomerProfile
from accounts.services import customer_create, staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa
from audit.models import AuditEvent


@pytest.mark.django_db
def test_operations_staff_change_the_status_but_cannot_repoint_a_profile_at_another_user():
    victim = customer_create(email=f"victim.{uuid.uuid4().hex[:8]}@example.com", password=None)
    other = customer_create(email=f"other.{uuid.uuid4().hex[:8]}@example.com", password=None)
    profile = CustomerProfile.objects.get(user=victim)
    other_profile = CustomerProfile.objects.get(user=other)
    other_profile.delete()  # the OneToOne target is free, so only the admin's field rules can refuse
    staff = staff_create(email=f"ops.{uuid.uuid4().hex[:8]}@fintech.example", password=None, roles=["operations"])
    client = Client()
    force_login_with_mfa(client, staff)
    url = f"/admin/accounts/customerprofile/{profile.pk}/change/"

    blocked = client.post(url, {"user": other.pk, "tier": "standard", "status": "blocked", "four_eyes_reason": "fraud"})
    assert blocked.status_code == 302, blocked.content.decode()[:2000]
    profile.refresh_from_db()
    assert (profile.user_id, profile.tier, profile.status) == (victim.pk, "standard", "blocked")
    event = AuditEvent.objects.get(event_type="customer.blocked", object_id=str(victim.public_id))
    assert event.actor_staff == str(staff.public_id) and event.payload["reason"] == "fraud"

    # Unblocking and tier changes take a second person (ADR 0015): only a request is recorded.
    asked = client.post(url, {"tier": "premium", "status": "active", "four_eyes_reason": "cleared by compliance"})
    assert asked.status_code == 302 and "/admin/accounts/approvalrequest/" in asked["Location"]
    profile.refresh_from_db()
    assert (profile.tier, profile.status) == ("standard", "blocked")
    approval = ApprovalRequest.objects.get(kind="customer.profile")
    assert approval.change == {"tier": "premium", "status": "active"} and approval.subject == victim

    officer = staff_create(
        email=f"co.{uuid.uuid4().hex[:8]}@fintech.example", password=None, roles=["compliance_officer"]
    )
    approval_request_approve(
        approval_id=approval.public_id, approver=officer, change_hash=approval.change_hash,
        mfa_verified_at=timezone.now(),
    )  # fmt: skip
    profile.refresh_from_db()
    assert (profile.user_id, profile.tier, profile.status) == (victim.pk, "premium", "active")


@pytest.mark.django_db
def test_reopening_a_closed_customer_takes_a_second_person_even_as_blocked():
    """Found in review: closed -> blocked went through at once, by one person."""
    customer = customer_create(email=f"closed.{uuid.uuid4().hex[:8]}@example.com", password=None)
    CustomerProfile.objects.filter(user=customer).update(status="closed")
    profile = CustomerProfile.objects.get(user=customer)
    staff = staff_create(email=f"ops.{uuid.uuid4().hex[:8]}@fintech.example", password=None, roles=["operations"])
    client = Client()
    force_login_with_mfa(client, staff)

    response = client.post(
        f"/admin/accounts/customerprofile/{profile.pk}/change/",
        {"tier": "standard", "status": "blocked", "four_eyes_reason": "customer asked to come back"},
    )

    assert response.status_code == 302 and "/admin/accounts/approvalrequest/" in response["Location"]
    profile.refresh_from_db()
    assert profile.status == "closed"
    assert ApprovalRequest.objects.get(kind="customer.profile").change == {"status": "blocked", "tier": "standard"}
