"""Manual deposits name an authenticated operator, and one operator alone moves only so much (ADR 0015).

Above FOUR_EYES_DEPOSIT_THRESHOLDS a deposit is a request a second operator
approves in the admin; the operator's deposits of the day together are
bounded by FOUR_EYES_DEPOSIT_DAILY_TOTALS, so splitting does not get round it,
not even with deposits racing each other.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from accounts.approvals.models import ApprovalRequest
from accounts.tests.mfa_helpers import force_login_with_mfa
from accounts.tests.operator_helpers import operator_create, operator_stdin
from audit.models import AuditEvent
from ledger.models import Transfer
from ledger.services.four_eyes import deposit_by_operator
from ledger.tests.factories import account
from ledger.tests.test_concurrency import run_threads

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _amounts(settings):
    settings.FOUR_EYES_DEPOSIT_THRESHOLDS_MINOR = {"EUR": 1000_00}
    settings.FOUR_EYES_DEPOSIT_DAILY_TOTALS_MINOR = {"EUR": 1500_00}


def _run(user, *arguments: str) -> str:
    stdout = io.StringIO()
    call_command("ledger_deposit", *arguments, stdout=stdout, stderr=io.StringIO(), stdin=operator_stdin(user))
    return stdout.getvalue()


def test_without_an_authenticated_operator_nothing_is_deposited():
    alice = account()
    with pytest.raises(CommandError, match="operator authentication failed"):
        call_command(
            "ledger_deposit", str(alice.public_id), "10.00", "--reason", "wire 1",
            stdin=io.StringIO(""), stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip
    outsider = operator_create(email="norole@example.com")  # staff, authenticated, but no deposit permission
    with pytest.raises(CommandError, match=r"does not hold accounts\.deposit_from_funding"):
        _run(outsider, str(alice.public_id), "10.00", "--reason", "wire 1")
    assert not Transfer.objects.filter(kind="deposit").exists()


def test_above_the_amount_the_command_only_asks_and_a_second_operator_posts_it_from_the_admin():
    maker = operator_create(email="maker@example.com", roles=["operations"])
    checker = operator_create(email="checker@example.com", roles=["operations"])
    alice = account()

    printed = _run(maker, str(alice.public_id), "1000.01", "--reason", "wire 77")
    assert printed.startswith("not deposited yet: 1000.01 EUR")
    approval = ApprovalRequest.objects.get(kind="ledger.deposit")
    alice.refresh_from_db()
    assert alice.posted_minor == 0 and not Transfer.objects.filter(kind="deposit").exists()

    decision = {"decision": "approve", "change_hash": approval.change_hash, "reason": "", "code": ""}
    maker_client, checker_client = Client(), Client()
    force_login_with_mfa(maker_client, maker)
    force_login_with_mfa(checker_client, checker)
    maker_client.post(f"/admin/accounts/approvalrequest/{approval.pk}/decide/", decision)
    approval.refresh_from_db()
    assert approval.status == "pending"

    response = checker_client.post(f"/admin/accounts/approvalrequest/{approval.pk}/decide/", decision)
    assert response.status_code == 302
    approval.refresh_from_db()
    alice.refresh_from_db()
    assert approval.status == "applied" and alice.posted_minor == 1000_01
    transfer = Transfer.objects.get(kind="deposit")
    assert approval.result == {"transfer": str(transfer.public_id)} and transfer.initiated_by == maker
    posted = AuditEvent.objects.get(event_type="ledger.deposit.posted")
    assert posted.actor_staff == str(checker.public_id)


def test_small_deposits_post_at_once_but_not_past_the_daily_total():
    maker = operator_create(email="maker@example.com", roles=["operations"])
    alice = account()

    assert _run(maker, str(alice.public_id), "900.00", "--reason", "wire 1").startswith("deposited 900.00 EUR")
    assert _run(maker, str(alice.public_id), "600.01", "--reason", "wire 2").startswith("not deposited yet")
    assert _run(maker, str(alice.public_id), "600.00", "--reason", "wire 3").startswith("deposited 600.00 EUR")
    alice.refresh_from_db()
    assert alice.posted_minor == 1500_00
    event = AuditEvent.objects.filter(event_type="ledger.deposit.posted").first()
    assert event.actor_staff == str(maker.public_id) and not event.actor_client


@pytest.mark.django_db(transaction=True)
def test_one_operators_racing_deposits_never_pass_the_daily_total_together():
    maker = operator_create(email="racer@example.com", roles=["operations"])
    alice = account()

    def deposit(index: int) -> str:
        outcome = deposit_by_operator(account=alice, amount_minor=900_00, reason=f"wire {index}", operator=maker)
        return "request" if isinstance(outcome, ApprovalRequest) else "posted"

    assert sorted(run_threads(2, deposit)) == ["posted", "request"]
    alice.refresh_from_db()
    assert alice.posted_minor == 900_00
