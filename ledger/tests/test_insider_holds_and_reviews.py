"""An insider with the runtime login turns a reservation into theft, or a review into a release (issue 12 review).

The attacks the review found: a hold opened on a victim's account with the
login alone (the function cannot tell who asked), then captured through the
API by its payee, the insider's own customer; and a review case "approved" by
writing its row and a matching event. Now a hold and a case decision carry the
application's MAC: the capture is refused before money moves, and
`ledger_verify` names the hold and the case.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from accounts.tests.access_matrix import issue_token
from accounts.tests.oauth_helpers import mobile_client
from ledger.exceptions import LedgerInvariantViolation
from ledger.invariants import ledger_verify
from ledger.models import Hold, ReviewCase
from ledger.services import hold_create
from ledger.tests.factories import TEST_ACTOR, account, customer, generous_limits, review_threshold

pytestmark = pytest.mark.django_db(transaction=True)
SCOPES = "accounts:read accounts:write transfers:read transfers:write"


def _hold_opened_with_the_login(runtime, victim, insider_account, amount_minor: int, *, mac: str) -> dict:
    """What the review did: the policy step's day and counter kept right, the hold opened in the victim's name."""
    with runtime.cursor() as cursor:
        cursor.execute(
            "SELECT r_refusal, r_limit_day FROM ledger_policy_check('hold', %s, %s, 'EUR', %s, clock_timestamp(),"
            " 'UTC')",
            [victim.owner_id, insider_account.owner_id, amount_minor],
        )
        refusal, limit_day = cursor.fetchone()
        assert refusal is None
        hold = {
            "public_id": str(uuid.uuid4()), "account_id": victim.pk, "destination_id": insider_account.pk,
            "currency": "EUR", "amount_minor": amount_minor, "purpose": "authorisation",
            "created_by_id": victim.owner_id, "expires_at": (timezone.now() + timedelta(days=2)).isoformat(),
            "movement_kind": "", "reference": "hotel booking", "client_id": "", "limit_day": str(limit_day),
            "time_zone": "UTC", "authorization_mac": mac,
        }  # fmt: skip
        event = {"event_type": "ledger.hold.created", "actor_user": str(victim.owner.public_id),
                 "payload": {"expires_at": hold["expires_at"], "review_reasons": []}}  # fmt: skip
        cursor.execute("SELECT ledger_hold_open(%s::jsonb, %s::jsonb)", [json.dumps(hold), json.dumps(event)])
        opened = cursor.fetchone()[0]
        cursor.execute(
            "SELECT ledger_policy_count(%s, 'EUR', %s, %s::date, now())", [victim.owner_id, amount_minor, limit_day]
        )
    runtime.commit()
    return opened


def _capture_as_payee(client, hold: Hold, payee) -> int:
    token = issue_token(application=mobile_client(), user=payee, scope=SCOPES)
    response = client.post(
        f"/v1/holds/{hold.public_id}/capture", data={}, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
    )  # fmt: skip
    return response.status_code


def _review_hold(*, amount_minor: int):
    """A hold above the review threshold (100 EUR, `hold_for_review`): (payer, payee, their accounts, the hold)."""
    generous_limits()
    review_threshold("EUR", 100_00, action="hold_for_review")
    payer, payee = customer(), customer()
    payer_account, payee_account = account(owner=payer, balance_minor=1_000_00), account(owner=payee)
    hold = hold_create(
        account=payer_account, destination=payee_account, amount_minor=amount_minor, currency="EUR",
        reference="hotel", expires_at=timezone.now() + timedelta(days=1), created_by=payer, actor=TEST_ACTOR,
    )  # fmt: skip
    return payer, payee, payer_account, payee_account, hold


def test_a_hold_opened_with_the_login_alone_is_refused_at_capture_and_named_by_ledger_verify(runtime, client):
    generous_limits()
    victim, insider = account(balance_minor=1_000_00), customer()
    insider_account = account(owner=insider)
    with pytest.raises(psycopg.Error) as missing:
        _hold_opened_with_the_login(runtime, victim, insider_account, 400_00, mac="")
    assert missing.value.sqlstate == "LG002"
    runtime.rollback()

    opened = _hold_opened_with_the_login(runtime, victim, insider_account, 400_00, mac="0" * 64)
    hold = Hold.objects.get(pk=opened["id"])

    with pytest.raises(LedgerInvariantViolation, match="carries no authorization MAC"):  # loudly; nothing moved
        _capture_as_payee(client, hold, insider)
    victim.refresh_from_db()
    insider_account.refresh_from_db()
    assert (victim.posted_minor, insider_account.posted_minor) == (1_000_00, 0)
    assert [(p.check, p.object_id) for p in ledger_verify()] == [("hold_not_authorized", str(hold.public_id))]


def test_a_review_case_approved_by_writing_its_row_releases_nothing_and_is_named(runtime, client):
    _, payee, payer_account, _, hold = _review_hold(amount_minor=300_00)
    case = ReviewCase.objects.get(hold=hold)
    officer = customer()
    with runtime.cursor() as cursor:  # the decision and its event, both written with the login
        cursor.execute(
            "UPDATE ledger_reviewcase SET status = 'approved', decided_at = now(), decided_by_id = %s,"
            " decision_reason = 'ok' WHERE id = %s",
            [officer.pk, case.pk],
        )
        cursor.execute(
            "INSERT INTO audit_auditevent (event_type, outcome, actor_user, actor_client, actor_staff, object_type,"
            " object_id, purpose, request_id, user_agent, payload) VALUES ('ledger.review_case.approved', 'success',"
            " '', '', %s, 'ledger.review_case', %s, '', '', '', '{\"reason\": \"ok\"}')",
            [str(officer.public_id), str(case.public_id)],
        )
    runtime.commit()

    with pytest.raises(LedgerInvariantViolation, match="needs its review case approved by an officer"):
        _capture_as_payee(client, hold, payee)
    payer_account.refresh_from_db()
    assert payer_account.posted_minor == 1_000_00
    assert [(p.check, p.object_id) for p in ledger_verify()] == [
        ("review_case_decision_not_authorized", str(case.public_id))
    ]


def test_holds_and_decisions_made_by_the_application_verify(client):
    """The other side: a hold opened, reviewed and approved through the services passes every check."""
    from accounts.services import staff_create
    from ledger.services import review_case_decide

    _, payee, _, _, hold = _review_hold(amount_minor=50_00 + 100_00)
    review_case_decide(
        case_public_id=ReviewCase.objects.get(hold=hold).public_id, approve=True, reason="known guest",
        officer=staff_create(email="officer@example.com", password=None, roles=["compliance_officer"]),
    )  # fmt: skip

    assert _capture_as_payee(client, hold, payee) == 201
    assert ledger_verify() == []


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE ledger_reviewcase SET kind = 'flagged_movement' WHERE id = %s",  # no longer a blocking kind
        "DELETE FROM ledger_reviewcase WHERE id = %s",  # no case at all
    ],
)
def test_a_hold_that_needs_review_releases_nothing_once_its_case_is_rekinded_or_deleted(runtime, client, tamper):
    """The re-review's finding 3: the capture used to see no blocking case and paid out."""
    _, payee, _, payee_account, hold = _review_hold(amount_minor=300_00)
    assert hold.review_required
    with runtime.cursor() as cursor:
        cursor.execute(tamper, [ReviewCase.objects.get(hold=hold).pk])
    runtime.commit()

    with pytest.raises(LedgerInvariantViolation, match="needs its review case approved"):
        _capture_as_payee(client, hold, payee)
    payee_account.refresh_from_db()
    assert payee_account.posted_minor == 0


def test_approving_a_small_case_re_pointed_at_a_large_held_transfer_posts_nothing(runtime):
    """The re-review's finding 4: one officer approving a 200.00 case posted a 50,000.00 held transfer."""
    from accounts.services import staff_create
    from ledger.services import review_case_decide, transfer_create

    generous_limits()
    review_threshold("EUR", 100_00, action="hold_for_review")
    big_payer, small_payer, big_payee, small_payee = customer(), customer(), customer(), customer()
    accounts_ = {
        "big_from": account(owner=big_payer, balance_minor=60_000_00), "small_from": account(owner=small_payer,
        balance_minor=1_000_00), "big_to": account(owner=big_payee), "small_to": account(owner=small_payee),
    }  # fmt: skip

    def held(source, destination, amount):
        transfer_create(
            from_public_id=source.public_id, to_public_id=destination.public_id, amount_minor=amount,
            currency="EUR", reference="rent", initiated_by=source.owner, actor=TEST_ACTOR,
        )  # fmt: skip
        return ReviewCase.objects.get(hold__account=source)

    big = held(accounts_["big_from"], accounts_["big_to"], 50_000_00)
    small = held(accounts_["small_from"], accounts_["small_to"], 200_00)
    with runtime.cursor() as cursor:
        cursor.execute("DELETE FROM ledger_reviewcase WHERE id = %s", [big.pk])
        cursor.execute("UPDATE ledger_reviewcase SET hold_id = %s WHERE id = %s", [big.hold_id, small.pk])
    runtime.commit()

    officer = staff_create(email="officer@example.com", password=None, roles=["compliance_officer"])
    with pytest.raises(LedgerInvariantViolation, match="decided about another movement"):
        review_case_decide(case_public_id=small.public_id, approve=True, reason="small rent", officer=officer)
    accounts_["big_to"].refresh_from_db()
    assert accounts_["big_to"].posted_minor == 0
    assert ReviewCase.objects.get(pk=small.pk).status == "open"  # the decision rolled back with the posting


@pytest.mark.parametrize(
    ("tamper", "detail"),
    [
        ("DELETE FROM ledger_reviewcase WHERE hold_id = %s", "money left it with no review case"),
        ("UPDATE ledger_reviewcase SET status = 'open' WHERE hold_id = %s", "money left it while its case is open"),
        (
            "UPDATE ledger_reviewcase SET status = 'approved', decided_at = now(), decided_by_id = subject_id,"
            " decision_reason = 'ok', amount_minor = 1 WHERE hold_id = %s",
            "its case is about 1 EUR",
        ),
    ],
)
def test_money_out_of_a_hold_without_its_approved_review_is_named(tamper, detail):
    """What the capture path refuses, done by the functions' owner behind its back: ledger_verify names it."""
    from ledger.tests.test_invariants import sql

    _, _, _, _, hold = _review_hold(amount_minor=300_00)
    sql(tamper, [hold.pk], as_owner=True)
    sql("UPDATE ledger_hold SET captured_minor = amount_minor WHERE id = %s", [hold.pk])

    named = [(p.object_id, p.detail) for p in ledger_verify() if p.check == "hold_released_without_review"]
    assert len(named) == 1 and named[0][0] == str(hold.public_id) and named[0][1].startswith(detail)
