"""The compliance officers' review queue: read-only, no PII, decisions only through the service, on POST."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from accounts.models import User
from accounts.services import staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa
from audit.models import AuditEvent
from ledger.models import ReviewCase, Transfer, TransferRule
from ledger.tests.factories import account, customer, generous_limits, send

pytestmark = pytest.mark.django_db

ALICE_EMAIL = "alice.review@example.com"
REASON = "Case 4711: source of funds documented"
LIST_URL = reverse("admin:ledger_reviewcase_changelist")


def change_url(case: ReviewCase) -> str:
    return reverse("admin:ledger_reviewcase_change", args=[case.pk])


def decide_url(case: ReviewCase) -> str:
    return reverse("admin:ledger_reviewcase_decide", args=[case.pk])


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def held():
    """A 200.00 EUR transfer held by a `hold_for_review` rule: the pending movement and its open case."""
    generous_limits()
    TransferRule.objects.create(
        name="hold big EUR",
        kind="review_threshold",
        currency="EUR",
        threshold_minor=100_00,
        action="hold_for_review",
    )
    alice = customer()
    alice.email = ALICE_EMAIL
    alice.save(update_fields=["email"])
    source = account(owner=alice, balance_minor=1_000_00)
    destination = account()
    pending = send(source, destination, 200_00)
    return pending, ReviewCase.objects.get(), source


@pytest.fixture
def officer() -> User:
    return staff_create(email="olivia@fintech.example", password=None, roles=["compliance_officer"])


@pytest.fixture
def officer_client(client, officer) -> Client:
    force_login_with_mfa(client, officer)
    return client


@pytest.fixture
def viewer_client() -> Client:
    """Staff who may read the queue but not decide."""
    viewer = staff_create(email="victor@fintech.example", password=None, roles=[])
    viewer.user_permissions.add(Permission.objects.get(content_type__app_label="ledger", codename="view_reviewcase"))
    client = Client()
    force_login_with_mfa(client, viewer)
    return client


def test_the_queue_shows_the_case_in_major_units_and_no_email(officer_client, held):
    _, case, _ = held

    listing = officer_client.get(LIST_URL)
    detail = officer_client.get(change_url(case))

    assert listing.status_code == 200
    body = listing.content.decode()
    assert str(case.public_id) in body
    assert "200.00 EUR" in body
    assert "hold big EUR" in body
    assert ALICE_EMAIL not in body
    assert detail.status_code == 200
    assert str(case.subject.public_id) in detail.content.decode()
    assert ALICE_EMAIL not in detail.content.decode()
    assert decide_url(case) in detail.content.decode()


def test_the_queue_filters_by_rule_age_and_status(officer_client, held):
    _, case, _ = held

    by_rule = officer_client.get(LIST_URL, {"rule": "hold big EUR"})
    other_rule = officer_client.get(LIST_URL, {"rule": "test review threshold EUR"})
    old = officer_client.get(LIST_URL, {"age": "24h"})
    open_cases = officer_client.get(LIST_URL, {"status__exact": "open"})

    assert str(case.public_id) in by_rule.content.decode()
    assert str(case.public_id) not in other_rule.content.decode()
    assert str(case.public_id) not in old.content.decode()
    assert str(case.public_id) in open_cases.content.decode()


def test_nobody_adds_changes_or_deletes_a_case_in_the_admin(client, held):
    _, case, _ = held
    force_login_with_mfa(client, User.objects.create_superuser("root@fintech.example", "correct horse battery"))

    assert client.get(reverse("admin:ledger_reviewcase_add")).status_code == 403
    assert client.post(change_url(case), {"status": "approved"}).status_code == 403
    assert client.post(reverse("admin:ledger_reviewcase_delete", args=[case.pk]), {"post": "yes"}).status_code == 403
    case.refresh_from_db()
    assert case.status == ReviewCase.Status.OPEN


def test_an_officer_approves_a_held_transfer(officer_client, officer, held):
    pending, case, source = held

    response = officer_client.post(
        decide_url(case), {"decision": "approve", "reason": REASON}, HTTP_USER_AGENT="review-browser/1.0"
    )

    assert response.status_code == 302
    assert response.url == change_url(case)
    assert any("approved" in message for message in messages_of(response))
    case.refresh_from_db()
    assert case.status == ReviewCase.Status.APPROVED
    assert case.decided_by == officer
    assert case.decision_reason == REASON
    assert Transfer.objects.filter(public_id=pending.public_id).count() == 1
    event = AuditEvent.objects.get(event_type="ledger.review_case.approved")
    assert event.actor_staff == str(officer.public_id)
    assert (event.source_ip, event.user_agent) == ("127.0.0.1", "review-browser/1.0")  # found in review: empty
    assert event.object_id == str(case.public_id)
    source.refresh_from_db()
    assert source.held_minor == 0


def test_a_second_decision_is_refused_with_a_message(officer_client, held):
    pending, case, _ = held
    officer_client.post(decide_url(case), {"decision": "approve", "reason": REASON})

    again = officer_client.post(decide_url(case), {"decision": "approve", "reason": REASON}, follow=True)

    assert again.status_code == 200
    assert "The review case has already been decided" in messages_of(again)
    assert Transfer.objects.filter(public_id=pending.public_id).count() == 1
    assert AuditEvent.objects.filter(event_type="ledger.review_case.approved").count() == 1


def test_an_officer_rejects_and_the_money_is_released(officer_client, held):
    pending, case, source = held
    source.refresh_from_db()
    assert source.held_minor == 200_00

    response = officer_client.post(decide_url(case), {"decision": "reject", "reason": REASON})

    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == ReviewCase.Status.REJECTED
    source.refresh_from_db()
    assert source.held_minor == 0
    assert not Transfer.objects.filter(public_id=pending.public_id).exists()
    assert AuditEvent.objects.filter(event_type="ledger.review_case.rejected").count() == 1


def test_a_reason_is_required(officer_client, held):
    _, case, _ = held

    response = officer_client.post(decide_url(case), {"decision": "approve", "reason": ""})

    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    case.refresh_from_db()
    assert case.status == ReviewCase.Status.OPEN


def test_a_card_number_in_the_reason_is_refused_by_the_service(officer_client, held):
    _, case, _ = held

    response = officer_client.post(
        decide_url(case), {"decision": "approve", "reason": "card 4111 1111 1111 1111"}, follow=True
    )

    assert response.status_code == 200
    assert len(messages_of(response)) == 1
    case.refresh_from_db()
    assert case.status == ReviewCase.Status.OPEN


def test_staff_without_the_decide_permission_get_403(viewer_client, held):
    pending, case, _ = held

    listing = viewer_client.get(LIST_URL)
    page = viewer_client.get(decide_url(case))
    post = viewer_client.post(decide_url(case), {"decision": "approve", "reason": REASON})

    assert listing.status_code == 200
    assert decide_url(case) not in viewer_client.get(change_url(case)).content.decode()
    assert page.status_code == 403
    assert post.status_code == 403
    case.refresh_from_db()
    assert case.status == ReviewCase.Status.OPEN
    assert not Transfer.objects.filter(public_id=pending.public_id).exists()


def test_get_shows_the_form_and_never_decides(officer_client, held):
    pending, case, _ = held

    response = officer_client.get(decide_url(case), {"decision": "approve", "reason": REASON})

    assert response.status_code == 200
    assert 'id="decide_form"' in response.content.decode()
    case.refresh_from_db()
    assert case.status == ReviewCase.Status.OPEN
    assert not Transfer.objects.filter(public_id=pending.public_id).exists()


def test_an_approved_case_leads_to_the_transfer_and_is_found_by_the_id_the_customer_was_given(officer_client, held):
    """Found in review: an approved held case showed "Transfer: None" and the customer's id found nothing."""
    pending, case, _ = held
    by_promised_id = officer_client.get(LIST_URL, {"q": str(pending.public_id)}).content.decode()

    officer_client.post(decide_url(case), {"decision": "approve", "reason": REASON})

    case.refresh_from_db()
    assert case.transfer == Transfer.objects.get(public_id=pending.public_id)
    assert str(case.public_id) in by_promised_id
    assert str(pending.public_id) in officer_client.get(change_url(case)).content.decode()


def test_a_refused_decision_keeps_what_the_officer_typed_but_never_a_card_number(officer_client, held):
    from accounts.models import CustomerProfile

    _, case, _ = held
    CustomerProfile.objects.filter(user=case.subject).update(status="blocked")  # approval is refused now

    refused = officer_client.post(decide_url(case), {"decision": "approve", "reason": "Case 4711: all in order"})
    with_card = officer_client.post(decide_url(case), {"decision": "reject", "reason": "card 4111 1111 1111 1111"})

    assert refused.status_code == 200
    assert "Case 4711: all in order" in refused.content.decode()  # back in the form, not thrown away
    assert "can only be rejected" in refused.content.decode()
    assert with_card.status_code == 200
    assert "4111 1111 1111 1111" not in with_card.content.decode()
    assert "contains a card number" in with_card.content.decode()


def test_the_decision_page_says_what_a_decision_does_for_the_kind_of_case(officer_client, held):
    _, case, _ = held

    page = officer_client.get(decide_url(case)).content.decode()

    assert "nothing is posted yet" in page


def test_the_queue_filters_by_amount_in_major_units(officer_client, held):
    _, case, _ = held  # 200.00 EUR

    over_100 = officer_client.get(LIST_URL, {"amount_at_least": "1000"}).content.decode()

    assert str(case.public_id) not in over_100
    assert "200.00 EUR" in officer_client.get(LIST_URL).content.decode()


def test_approving_above_the_four_eyes_amount_asks_a_second_officer(officer_client, officer, held, settings):
    """ADR 0015: above FOUR_EYES_REVIEW_APPROVAL_THRESHOLDS the officer's approval is a request; a second posts it."""
    from django.utils import timezone

    from accounts.approvals.models import ApprovalRequest
    from accounts.approvals.services import approval_request_approve

    settings.FOUR_EYES_REVIEW_APPROVAL_THRESHOLDS_MINOR = {"EUR": 199_99}
    pending, case, _ = held
    response = officer_client.post(decide_url(case), {"decision": "approve", "reason": REASON})
    approval = ApprovalRequest.objects.get(kind="ledger.review_approval")
    assert response.status_code == 302 and str(approval.pk) in response["Location"]
    case.refresh_from_db()
    assert case.status == "open" and not Transfer.objects.filter(public_id=pending.public_id).exists()

    second = staff_create(email="oscar@fintech.example", password=None, roles=["compliance_officer"])
    approval_request_approve(
        approval_id=approval.public_id, approver=second, change_hash=approval.change_hash,
        mfa_verified_at=timezone.now(),
    )  # fmt: skip
    case.refresh_from_db()
    approval.refresh_from_db()
    assert approval.status == "applied" and case.status == "approved" and case.decided_by == second
    assert Transfer.objects.filter(public_id=pending.public_id).exists()


def test_the_service_refuses_a_lone_approval_above_the_four_eyes_amount(officer, held, settings):
    """Every caller, not only the admin page: review_case_decide itself refuses one officer alone."""
    from ledger.exceptions import ReviewApprovalNeedsSecondOfficer
    from ledger.services.reviews import review_case_decide

    settings.FOUR_EYES_REVIEW_APPROVAL_THRESHOLDS_MINOR = {"EUR": 199_99}
    pending, case, _ = held
    with pytest.raises(ReviewApprovalNeedsSecondOfficer):
        review_case_decide(case_public_id=case.public_id, approve=True, reason=REASON, officer=officer)
    case.refresh_from_db()
    assert case.status == "open" and not Transfer.objects.filter(public_id=pending.public_id).exists()
