"""Model changes of sensitive models: logged by django-auditlog, masked whole, attributed, sealed."""

from __future__ import annotations

import pytest
from auditlog.models import LogEntry

from accounts.models import CustomerProfile, User
from accounts.services import customer_create
from accounts.tests.mfa_helpers import force_login_with_mfa
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def security_admin(client):
    admin = User.objects.create_superuser(email="root@example.com", password=None)
    force_login_with_mfa(client, admin)
    return admin


def test_an_admin_change_is_attributed_masked_and_mirrored_into_the_trail(client, security_admin):
    customer = customer_create(email="old.address@example.com", password=None)
    profile = customer.customer_profile

    response = client.post(
        f"/admin/accounts/customerprofile/{profile.pk}/change/",
        {"tier": "standard", "status": "blocked", "four_eyes_reason": "fraud report 17"},  # immediate: blocking
        HTTP_X_FORWARDED_FOR="6.6.6.6",  # a client-supplied header must not become the address
    )

    assert response.status_code == 302
    entry = LogEntry.objects.get_for_object(profile).latest("timestamp")
    assert entry.actor == security_admin
    assert entry.actor_email is None
    assert entry.remote_addr == "127.0.0.1"
    assert entry.changes_dict["status"] == ["active", "blocked"]
    mirrored = AuditEvent.objects.filter(event_type="model.changed", object_type="accounts.customerprofile").last()
    assert mirrored.object_id == str(profile.pk)
    assert mirrored.actor_staff == str(security_admin.public_id)
    assert mirrored.payload["changes"]["status"] == ["active", "blocked"]
    assert mirrored.source_ip == "127.0.0.1"


def test_an_email_change_is_masked_entirely_everywhere():
    customer = customer_create(email="first.address@example.com", password=None)

    customer.email = "second.address@example.com"
    customer.save()

    entry = LogEntry.objects.get_for_object(customer).latest("timestamp")
    assert entry.changes_dict["email"] == ["****", "****"]
    assert "address@example.com" not in entry.object_repr
    trail = " ".join(str(payload) for payload in AuditEvent.objects.values_list("payload", flat=True))
    assert "first.address" not in trail
    assert "second.address" not in trail


def test_password_hashes_are_never_logged():
    customer = customer_create(email="pw@example.com", password="a long enough password")

    customer.set_password("another long password")
    customer.save()

    entries = LogEntry.objects.get_for_object(customer)
    assert all("password" not in entry.changes_dict for entry in entries)
    assert CustomerProfile.objects.count() == 1


def test_a_change_made_through_the_api_names_the_token_holder_as_actor(client):
    """An account opened through the API: the ledger function's own event names the token's user and client
    (accounts change only inside the functions, ADR 0016, so auditlog's ORM signals never see them)."""
    from oauth2_provider.models import Application

    from accounts.tests.access_matrix import issue_token
    from accounts.tests.oauth_helpers import mobile_client
    from ledger.models import LedgerAccount

    customer = customer_create(email="api.actor@example.com", password=None)
    app = mobile_client()
    token = issue_token(application=app, user=customer, scope="accounts:write")

    response = client.post(
        "/v1/accounts",
        data={"currency": "EUR"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_IDEMPOTENCY_KEY="open-1",
        HTTP_X_FORWARDED_FOR="6.6.6.6",
    )

    assert response.status_code == 201
    account = LedgerAccount.objects.get(public_id=response.json()["id"])
    opened = AuditEvent.objects.get(event_type="ledger.account.opened", object_id=str(account.public_id))
    assert (opened.actor_user, opened.actor_client) == (str(customer.public_id), app.client_id)
    assert Application.objects.filter(client_id=opened.actor_client).exists()
    call = AuditEvent.objects.get(event_type="api.call", actor_user=str(customer.public_id))
    assert call.source_ip == "127.0.0.1"  # the untrusted X-Forwarded-For is not taken for the address
