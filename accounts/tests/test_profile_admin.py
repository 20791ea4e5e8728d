"""The customer profile in the admin: staff may change tier and status, never whose profile it is.

A profile carries the customer's identity: the national ID's vault token, the
phone's blind index and PII bound to the owner's public id (ADR 0013).
Re-pointing the row at another user would hand that user someone else's
national ID and "identity captured" status, so the owner is read-only.
"""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from accounts.models import CustomerProfile
from accounts.services import customer_create, staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa


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

    response = client.post(url, {"user": other.pk, "tier": "premium", "status": "blocked"})

    assert response.status_code == 302, response.content.decode()[:2000]
    profile.refresh_from_db()
    assert (profile.user_id, profile.tier, profile.status) == (victim.pk, "premium", "blocked")
