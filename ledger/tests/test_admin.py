"""Operations staff read money rows and edit limits; nobody edits money in the admin."""

from __future__ import annotations

import pytest

from accounts.models import User
from accounts.services import staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa
from ledger.models import TransferLimit
from ledger.tests.factories import account

pytestmark = pytest.mark.django_db


def test_operations_see_accounts_and_edit_limits_but_cannot_change_balances(client):
    operator = staff_create(email="ops@example.com", password=None, roles=["operations"])
    force_login_with_mfa(client, operator)
    funded = account(balance_minor=5_000)
    limit = TransferLimit.objects.get(tier="standard", currency="EUR")

    listing = client.get("/admin/ledger/ledgeraccount/")
    change = client.post(f"/admin/ledger/ledgeraccount/{funded.pk}/change/", {"posted_minor": 10**9})
    edit_limit = client.get(f"/admin/ledger/transferlimit/{limit.pk}/change/")

    assert listing.status_code == 200
    assert str(funded.public_id) in listing.content.decode()
    assert change.status_code == 403
    assert edit_limit.status_code == 200
    funded.refresh_from_db()
    assert funded.posted_minor == 5_000


def test_even_a_superuser_cannot_delete_a_transfer(client):
    root = User.objects.create_superuser(email="root@example.com", password=None)
    force_login_with_mfa(client, root)
    funded = account(balance_minor=5_000)
    transfer = funded.postings.get().transfer

    response = client.post(f"/admin/ledger/transfer/{transfer.pk}/delete/", {"post": "yes"})

    assert response.status_code == 403
