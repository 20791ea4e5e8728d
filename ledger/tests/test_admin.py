"""Operations staff read money rows and edit limits; nobody edits money in the admin."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import User
from accounts.services import staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa
from ledger.currencies import format_amount
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


def test_operations_enter_rule_thresholds_and_limits_in_major_units(client):
    """Found in review: "30.00" typed into a minor-units field saved a threshold of 0.30 EUR, silently.

    Saving asks for the change (four eyes, ADR 0015): rows change only when a second operator approves.
    """
    from accounts.approvals.models import ApprovalRequest
    from accounts.approvals.services import approval_request_approve
    from ledger.models import TransferRule

    operator = staff_create(email="ops2@example.com", password=None, roles=["operations"])
    checker = staff_create(email="ops3@example.com", password=None, roles=["operations"])
    force_login_with_mfa(client, operator)
    rule = TransferRule.objects.get(kind="review_threshold", currency="EUR")
    limit = TransferLimit.objects.get(tier="standard", currency="EUR")
    before = (rule.threshold_minor, limit.per_transfer_max_minor, limit.daily_outgoing_max_minor)
    rule_form = {
        "name": rule.name,
        "kind": rule.kind,
        "currency": "EUR",
        "action": "flag",
        "active": "on",
        "max_count": "",
        "window_minutes": "",
        "four_eyes_reason": "quarterly review of thresholds",
    }

    shown = client.get(f"/admin/ledger/transferrule/{rule.pk}/change/").content.decode()
    too_precise = client.post(f"/admin/ledger/transferrule/{rule.pk}/change/", {**rule_form, "threshold": "30.001"})
    no_reason = client.post(
        f"/admin/ledger/transferrule/{rule.pk}/change/", {**rule_form, "threshold": "30.00", "four_eyes_reason": ""}
    )
    unchanged = client.post(
        f"/admin/ledger/transferlimit/{limit.pk}/change/",
        {"tier": "standard", "currency": "EUR", "per_transfer_max": format_amount(limit.per_transfer_max_minor, "EUR"),
         "daily_outgoing_max": format_amount(limit.daily_outgoing_max_minor, "EUR"), "four_eyes_reason": "no-op"},
    )  # fmt: skip
    assert unchanged.status_code == 302 and "/approvalrequest/" not in unchanged["Location"]  # found in review
    requests_after_refusals = ApprovalRequest.objects.count()
    saved = client.post(f"/admin/ledger/transferrule/{rule.pk}/change/", {**rule_form, "threshold": "30.00"})
    limit_saved = client.post(
        f"/admin/ledger/transferlimit/{limit.pk}/change/",
        {"tier": "standard", "currency": "EUR", "per_transfer_max": "4000.50", "daily_outgoing_max": "9000",
         "four_eyes_reason": "quarterly review of limits"},
    )  # fmt: skip

    assert 'value="10000.00"' in shown
    assert too_precise.status_code == 200 and "at most 2 decimal places" in too_precise.content.decode()
    assert no_reason.status_code == 200 and requests_after_refusals == 0
    assert saved.status_code == 302 and limit_saved.status_code == 302
    assert "/admin/accounts/approvalrequest/" in saved["Location"]
    rule.refresh_from_db()
    limit.refresh_from_db()
    assert (rule.threshold_minor, limit.per_transfer_max_minor, limit.daily_outgoing_max_minor) == before
    requests = list(ApprovalRequest.objects.order_by("id"))
    assert [r.kind for r in requests] == ["ledger.transfer_rule", "ledger.transfer_limit"]
    assert "threshold 10000.00 EUR -> 30.00 EUR" in requests[0].summary  # the approver reads major units
    assert "per_transfer_max" in requests[1].summary and "-> 4000.50 EUR" in requests[1].summary
    for approval in requests:
        approval_request_approve(
            approval_id=approval.public_id, approver=checker, change_hash=approval.change_hash,
            mfa_verified_at=timezone.now(),
        )  # fmt: skip
    rule.refresh_from_db()
    limit.refresh_from_db()
    listing = client.get("/admin/ledger/transferlimit/").content.decode()
    assert rule.threshold_minor == 30_00
    assert (limit.per_transfer_max_minor, limit.daily_outgoing_max_minor) == (4_000_50, 9_000_00)
    assert "4,000.50 EUR" in listing
