"""Four-eyes requests and staff invitations the database login forges are refused or alerted (issue 12, the
insider reviews' findings).

The runtime role can write `accounts_approvalrequest` rows and set the
transaction setting the access-change triggers read, so a forged "applied"
request made an insider superuser on record as approved. Requests now carry
a MAC of the request (checked before anyone approves) and of the applied
decision (checked by the alert job), under a key the database does not hold.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from accounts.access_changes.authorization import APPROVAL_SETTING
from accounts.access_changes.services import access_changes_alert
from accounts.approvals.exceptions import ApprovalNotAuthentic, ApprovalNotPending
from accounts.approvals.models import ApprovalRequest
from accounts.approvals.services import approval_request_approve, change_hash_of
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


def _genuine_applied_access_grant() -> tuple[ApprovalRequest, User]:
    """Bob really gets `operations` through four eyes."""
    from accounts.approvals.kinds_access import staff_access_change_request

    maker, checker, bob = _staff("security_admin"), _staff("security_admin"), _staff()
    approval = staff_access_change_request(
        user=bob, roles=["operations"], permissions=[], is_active=True, is_staff=True, is_superuser=False,
        requested_by=maker, reason="new desk",
    )  # fmt: skip
    approval_request_approve(
        approval_id=approval.public_id, approver=checker, change_hash=approval.change_hash,
        mfa_verified_at=timezone.now() - timedelta(seconds=5), reason="ok",
    )  # fmt: skip
    return ApprovalRequest.objects.get(pk=approval.pk), bob


def test_a_genuine_approval_re_pointed_at_the_insider_for_one_transaction_is_alerted(runtime):
    """The re-review's finding 1: the request is real and restored afterwards; the change is still not its."""
    approval, bob = _genuine_applied_access_grant()
    insider = User.objects.create_user(email="insider2@fintech.example", password=None)
    with runtime.cursor() as cursor:
        cursor.execute("UPDATE accounts_approvalrequest SET subject_id = %s WHERE id = %s", [insider.pk, approval.pk])
        cursor.execute("SELECT set_config(%s, %s, true)", [APPROVAL_SETTING, str(approval.public_id)])
        cursor.execute("UPDATE accounts_user SET is_staff = true, is_superuser = true WHERE id = %s", [insider.pk])
        cursor.execute("UPDATE accounts_approvalrequest SET subject_id = %s WHERE id = %s", [bob.pk, approval.pk])
    runtime.commit()
    [event] = AuditEvent.objects.filter(event_type="access.changed", object_id=str(insider.public_id))
    assert event.payload["approved"] is True  # the trigger saw the request about this user, in this transaction

    access_changes_alert()
    [alert] = _alerts_about(insider)
    assert "flags_changed" in alert.payload["summary"]
    # The real grant, applied by the service, stays quiet (bob's creation without a request is alerted, as ever).
    assert not [a for a in _alerts_about(bob) if "not authentic" in a.payload["summary"]]


def _forged_invitation(runtime, *, purpose: str, approval_id, user_id=None) -> str:
    import hashlib
    import secrets

    token = secrets.token_urlsafe(32)
    with runtime.cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_staffinvitation (public_id, purpose, email, roles, token_hash, approval_id,"
            " created_at, expires_at, accepted_at, user_id) VALUES (gen_random_uuid(), %s, %s, %s, %s, %s, now(),"
            " now() + interval '1 day', NULL, %s)",
            [purpose, f"evil.{secrets.token_hex(3)}@fintech.example", ["security_admin"],
             hashlib.sha256(token.encode()).hexdigest(), approval_id, user_id],
        )  # fmt: skip
    runtime.commit()
    return token


def test_a_staff_invitation_written_with_the_login_is_refused_whatever_it_rides_on(runtime):
    """The re-review's finding 2 (a join riding any applied request) and its twin (a re-enrolment link for a real
    staff member: their password and second factor chosen by the insider)."""
    from accounts.invitations.selectors import (
        invitation_by_token_hash,
        invitation_refusal_reason,
        invitation_token_hash,
    )

    approval, bob = _genuine_applied_access_grant()
    join = _forged_invitation(runtime, purpose="join", approval_id=approval.pk)
    takeover = _forged_invitation(runtime, purpose="reenrol", approval_id=None, user_id=bob.pk)
    for token in (join, takeover):
        invitation = invitation_by_token_hash(invitation_token_hash(token))
        assert invitation is not None
        assert invitation_refusal_reason(invitation) == "not_authentic"


def _refused_as_runtime(runtime, statement: str, params=()) -> str:
    with pytest.raises(psycopg.Error) as error, runtime.cursor() as cursor:
        cursor.execute(statement, params)
    runtime.rollback()
    return error.value.sqlstate


def test_what_a_permission_or_a_role_is_cannot_be_rewritten_with_the_login(runtime):
    """The third review's finding 2: swapping codenames handed one role's power to another, with no event."""
    for statement in (
        "UPDATE auth_permission SET codename = 'tmp_swap' WHERE codename = 'decide_reviewcase'",
        "UPDATE auth_group SET name = 'operations2' WHERE name = 'operations'",
        "UPDATE django_content_type SET model = 'x' WHERE app_label = 'ledger' AND model = 'reviewcase'",
        "INSERT INTO auth_permission (name, content_type_id, codename) SELECT 'x', id, 'x' FROM django_content_type"
        " LIMIT 1",
    ):
        assert _refused_as_runtime(runtime, statement) == "42501", statement


def test_a_marker_inserted_to_silence_an_unapproved_grant_silences_nothing(runtime):
    """The third review's finding 3: the job used to skip any event that had a marker row."""
    insider = User.objects.create_user(email="insider3@fintech.example", password=None)
    with runtime.cursor() as cursor:
        cursor.execute("UPDATE accounts_user SET is_staff = true, is_superuser = true WHERE id = %s", [insider.pk])
        cursor.execute(
            "INSERT INTO accounts_accesschangealert (event_id, alerted_at) SELECT id, now() FROM audit_auditevent"
            " WHERE event_type = 'access.changed' AND object_id = %s",
            [str(insider.public_id)],
        )
    runtime.commit()

    access_changes_alert()
    assert len(_alerts_about(insider)) == 1
    access_changes_alert()
    assert len(_alerts_about(insider)) == 1  # once: the job's own marker is genuine


def test_a_decided_request_set_back_to_pending_cannot_be_approved_again(runtime):
    """The third review's finding 4: an applied deposit request reset to pending posted a second deposit."""
    approval, _bob = _genuine_applied_access_grant()
    with runtime.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_approvalrequest SET status = 'pending', decided_by_id = NULL, decided_at = NULL,"
            " result = '{}' WHERE id = %s",
            [approval.pk],
        )
    runtime.commit()
    assert _refused_as_runtime(runtime, "DELETE FROM accounts_approvaldecision") == "42501"

    again = ApprovalRequest.objects.get(pk=approval.pk)
    with pytest.raises(ApprovalNotPending):
        approval_request_approve(
            approval_id=again.public_id, approver=_staff("security_admin"), change_hash=again.change_hash,
            mfa_verified_at=timezone.now() - timedelta(seconds=5), reason="again",
        )  # fmt: skip


def test_an_email_changed_with_the_login_is_on_record_and_alerted(runtime):
    """The third review's finding 1: a changed email redirects the password reset (an account taken over)."""
    victim = User.objects.create_user(email="victim@fintech.example", password=None)
    with runtime.cursor() as cursor:
        cursor.execute("UPDATE accounts_user SET email = 'mallory@evil.example' WHERE id = %s", [victim.pk])
    runtime.commit()
    [event] = AuditEvent.objects.filter(event_type="access.changed", object_id=str(victim.public_id))
    assert event.payload["change"] == "email_changed" and "evil" not in str(event.payload)

    access_changes_alert()
    [alert] = _alerts_about(victim)
    assert "email_changed" in alert.payload["summary"]
