"""Staff detokenization in the admin: a Django permission per token type, enforced by the real vault process."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.services import staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa
from audit.models import AuditEvent
from audit.services.events import Actor
from tokenvault.client import vault_client
from tokenvault.tests.conftest import VISA

LIVE = pytest.mark.django_db(transaction=True, databases=["default", "vault"])
URL = "/admin/tokenvault/vaultrecord/"
FORM = {"purpose": "fraud_investigation", "reason": "case FR-2231 chargeback"}


def staff_client(email: str, *codenames: str) -> tuple[Client, str]:
    staff = staff_create(email=email, password=None, roles=[])
    for codename in codenames:
        staff.user_permissions.add(Permission.objects.get(content_type__app_label="tokenvault", codename=codename))
    client = Client()
    force_login_with_mfa(client, staff)
    return client, str(staff.public_id)


@LIVE
def test_staff_with_the_card_permission_reads_a_card_and_the_vault_records_it(vault_live):
    client, public_id = staff_client("cards.reader@fintech.example", "detokenize_card")
    token = vault_client().tokenize(token_type="card", value=VISA, actor=Actor.system("test")).token

    page = client.get(URL)
    response = client.post(URL, {**FORM, "tokens": f"{token}\n"})

    assert page.status_code == 200
    assert response.status_code == 200
    assert VISA in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    read = AuditEvent.objects.get(object_id=token, event_type="pii.read")
    assert (read.actor_staff, read.purpose, read.payload["reason"]) == (
        public_id,
        "fraud_investigation",
        "case FR-2231 chargeback",
    )


@LIVE
def test_staff_without_the_national_id_permission_is_refused_by_the_vault_and_the_denial_recorded(vault_live):
    client, public_id = staff_client("cards.only@fintech.example", "detokenize_card")
    token = vault_client().tokenize(token_type="national_id", value="JK445566L", actor=Actor.system("test")).token

    response = client.post(URL, {**FORM, "tokens": token})

    body = response.content.decode()
    assert response.status_code == 200
    assert "vault_detokenize_forbidden" in body and "JK445566L" not in body
    denial = AuditEvent.objects.get(object_id=token, event_type="vault.detokenize")
    assert (denial.outcome, denial.actor_staff) == ("denied", public_id)


@pytest.mark.django_db
def test_staff_without_any_detokenize_permission_gets_no_page():
    client, _ = staff_client("no.vault@fintech.example")

    response = client.get(URL)
    index = client.get("/admin/")

    assert response.status_code == 403
    assert URL not in index.content.decode()
