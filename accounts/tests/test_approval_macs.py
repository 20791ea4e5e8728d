"""Four-eyes requests the database login forges are refused or alerted (issue 12, the insider review's finding 3).

The runtime role can write `accounts_approvalrequest` rows and set the
transaction setting the access-change triggers read, so a forged "applied"
request made an insider superuser on record as approved. Requests now carry
a MAC of the request (checked before anyone approves) and of the applied
decision (checked by the alert job), under a key the database does not hold.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.access_changes.services import access_changes_alert
from accounts.approvals.exceptions import ApprovalNotAuthentic
from accounts.approvals.models import ApprovalRequest
from accounts.approvals.services import APPROVAL_SETTING, approval_request_approve, change_hash_of
from accounts.models import User
from accounts.services import staff_create
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


def _staff(*roles: str) -> User:
    return staff_create(email=f"s.{uuid.uuid4().hex[:10]}@fintech.example", password=None, roles=list(roles))


_FORGED_REQUEST = (
    "INSERT INTO accounts_approvalrequest (public_id, kind, summary, target_type, target_id, change,"
    " target_state_hash, change_hash, requested_by_id, subject_id, request_reason, requested_at, expires_at, status,"
    " decided_by_id, decided_at, decision_reason, result) VALUES (%s, 'staff.access', 'x', 'accounts.user', %s, '{}',"
    " repeat('0', 64), repeat('0', 64), %s, %s, 'x', now(), now() + interval '1 day', %s, %s, now(), '', '{}')"
)


def _alerts_about(user: User) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            event_type="alert.raised", payload__kind="access.unapproved_change", object_id=str(user.public_id)
        )
    )


def test_an_access_change_under_a_forged_applied_request_is_alerted(runtime):
    insider = User.objects.create_user(email="insider@fintech.example", password=None)
    requester, officer = _staff("security_admin"), _staff("security_admin")
    request_id = str(uuid.uuid4())
    with runtime.cursor() as cursor:
        cursor.execute(
            _FORGED_REQUEST, [request_id, str(insider.public_id), requester.pk, insider.pk, "applied", officer.pk]
        )
        cursor.execute("SELECT set_config(%s, %s, true)", [APPROVAL_SETTING, request_id])
        cursor.execute("UPDATE accounts_user SET is_staff = true, is_superuser = true WHERE id = %s", [insider.pk])
    runtime.commit()
    [event] = AuditEvent.objects.filter(event_type="access.changed", object_id=str(insider.public_id))
    assert event.payload["approved"] is True  # what the trigger could tell: the setting was there

    assert access_changes_alert() >= 1  # with the staff_create changes above, which were made without a request
    [alert] = _alerts_about(insider)
    assert "its approval is not authentic" in alert.payload["summary"]


def test_a_forged_pending_request_cannot_be_approved_by_a_real_second_person(runtime):
    subject, requester, approver = _staff("operations"), _staff("security_admin"), _staff("security_admin")
    request_id = str(uuid.uuid4())
    with runtime.cursor() as cursor:
        cursor.execute(_FORGED_REQUEST.replace("%s, %s, now(), '', '{}')", "%s, %s, NULL, '', '{}')"), [
            request_id, str(subject.public_id), requester.pk, subject.pk, "pending", None,
        ])  # fmt: skip
    runtime.commit()
    with runtime.cursor() as cursor:
        # The change hash is a plain SHA-256: the insider computes it as the service would.
        cursor.execute(
            "UPDATE accounts_approvalrequest SET change_hash = %s WHERE public_id = %s",
            [change_hash_of(ApprovalRequest.objects.get(public_id=request_id)), request_id],
        )
    runtime.commit()
    approval = ApprovalRequest.objects.get(public_id=request_id)

    with pytest.raises(ApprovalNotAuthentic):
        approval_request_approve(
            approval_id=approval.public_id, approver=approver, change_hash=approval.change_hash,
            mfa_verified_at=timezone.now() - timedelta(seconds=5), reason="looks fine",
        )  # fmt: skip
    approval.refresh_from_db()
    assert approval.status == "pending"
    assert AuditEvent.objects.filter(
        event_type="approval.refused", object_id=request_id, payload__code="approval_not_authentic"
    ).exists()
