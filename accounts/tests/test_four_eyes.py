"""Four eyes on staff access (ADR 0015), through the real admin logged in with MFA.

A role grant stays pending until a second staff member approves; the
requester's and the subject's approvals are refused; an approval of a changed
target is void; a stale second factor or a different change hash is refused;
two approvers racing apply it once; every step is in the trail.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import Client
from django.utils import timezone

from accounts.approvals.exceptions import ApprovalNotPending
from accounts.approvals.kinds_access import staff_access_change_request
from accounts.approvals.models import ApprovalRequest
from accounts.approvals.services import approval_request_approve, approval_requests_expire
from accounts.mfa.session import MFA_VERIFIED_AT_SESSION_KEY
from accounts.models import User
from accounts.services import staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa
from audit.models import AuditEvent
from fintech.problems import DomainError
from ledger.tests.test_concurrency import run_threads


def _staff(*roles: str) -> User:
    return staff_create(email=f"staff.{uuid.uuid4().hex[:10]}@fintech.example", password=None, roles=list(roles))


def _admin(user: User) -> Client:
    client = Client()
    force_login_with_mfa(client, user)
    return client


def _roles(user: User) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


def _ask(client: Client, subject: User, roles: list[str], reason: str = "joins the compliance team"):
    return client.post(
        f"/admin/accounts/approvalrequest/access/{subject.public_id}/",
        {"roles": roles, "permissions": "", "is_active": "on", "is_staff": "on", "reason": reason},
    )


def _decide(client: Client, approval: ApprovalRequest, decision: str = "approve", **fields):
    data = {"decision": decision, "change_hash": approval.change_hash, "reason": "checked with HR", "code": ""}
    data.update(fields)
    return client.post(f"/admin/accounts/approvalrequest/{approval.pk}/decide/", data)


def _events(approval: ApprovalRequest) -> list[str]:
    return list(
        AuditEvent.objects.filter(object_type="accounts.approvalrequest", object_id=str(approval.public_id))
        .order_by("id")
        .values_list("event_type", flat=True)
    )


@pytest.mark.django_db
def test_a_role_grant_waits_for_a_second_security_admin_and_neither_requester_nor_subject_may_approve():
    maker, checker = _staff("security_admin"), _staff("security_admin")
    subject = _staff("security_admin")  # holds the approval permission itself: still may not approve its own grant
    maker_client = _admin(maker)

    response = _ask(maker_client, subject, ["compliance_officer", "security_admin"])
    assert response.status_code == 302, response.content[:500]
    approval = ApprovalRequest.objects.get(target_id=str(subject.public_id))
    assert approval.status == "pending" and approval.subject == subject and approval.requested_by == maker
    assert _roles(subject) == ["security_admin"], "nothing changes before a second person approves"

    _decide(maker_client, approval)
    _decide(_admin(subject), approval)
    approval.refresh_from_db()
    assert approval.status == "pending" and _roles(subject) == ["security_admin"]
    refusals = AuditEvent.objects.filter(event_type="approval.refused", object_id=str(approval.public_id))
    assert sorted(refusals.values_list("payload__code", flat=True)) == ["approval_by_requester_or_subject"] * 2

    response = _decide(_admin(checker), approval)
    assert response.status_code == 302
    approval.refresh_from_db()
    assert approval.status == "applied" and approval.decided_by == checker
    assert _roles(subject) == ["compliance_officer", "security_admin"]
    assert _events(approval)[0] == "approval.requested" and _events(approval)[-1] == "approval.applied"
    applied = AuditEvent.objects.get(event_type="approval.applied", object_id=str(approval.public_id))
    assert applied.actor_staff == str(checker.public_id) and applied.payload["requested_by"] == str(maker.public_id)


@pytest.mark.django_db
def test_the_admin_has_no_direct_way_to_change_roles_and_operations_cannot_ask():
    operations, subject = _staff("operations"), _staff()
    response = _ask(_admin(operations), subject, ["compliance_officer"])
    assert response.status_code == 403
    assert not ApprovalRequest.objects.exists()


@pytest.mark.django_db
def test_an_approval_of_a_changed_target_is_void_and_changes_nothing():
    maker, checker, subject = _staff("security_admin"), _staff("security_admin"), _staff()
    approval = staff_access_change_request(
        user=subject, roles=["operations"], permissions=[], is_active=True, is_staff=True, is_superuser=False,
        requested_by=maker, reason="new operator",
    )  # fmt: skip
    subject.groups.add(Group.objects.get(name="compliance_officer"))  # changed meanwhile, some other way

    _decide(_admin(checker), approval)
    approval.refresh_from_db()
    assert approval.status == "void" and approval.result == {"reason": "target_changed"}
    assert _roles(subject) == ["compliance_officer"]
    assert "approval.void" in _events(approval)


@pytest.mark.django_db
def test_a_stale_second_factor_or_another_change_hash_is_refused_and_a_current_code_is_accepted():
    maker, checker, subject = _staff("security_admin"), _staff("security_admin"), _staff()
    approval = staff_access_change_request(
        user=subject, roles=["operations"], permissions=[], is_active=True, is_staff=True, is_superuser=False,
        requested_by=maker, reason="new operator",
    )  # fmt: skip
    client = _admin(checker)
    session = client.session
    session[MFA_VERIFIED_AT_SESSION_KEY] = (timezone.now() - timedelta(minutes=6)).isoformat()
    session.save()

    _decide(client, approval)
    _decide(client, approval, change_hash="0" * 64, code="")
    approval.refresh_from_db()
    assert approval.status == "pending" and _roles(subject) == []
    codes = AuditEvent.objects.filter(event_type="approval.refused", object_id=str(approval.public_id))
    assert sorted(codes.values_list("payload__code", flat=True)) == ["approval_second_factor_stale"] * 2

    fresh = _admin(checker)
    _decide(fresh, approval, change_hash="0" * 64)
    approval.refresh_from_db()
    assert approval.status == "pending"
    assert AuditEvent.objects.filter(
        payload__code="approval_change_mismatch", object_id=str(approval.public_id)
    ).exists()


@pytest.mark.django_db(transaction=True)
def test_two_approvers_racing_apply_the_change_once():
    maker, subject = _staff("security_admin"), _staff()
    checkers = [_staff("security_admin"), _staff("security_admin")]
    approval = staff_access_change_request(
        user=subject, roles=["operations"], permissions=[], is_active=True, is_staff=True, is_superuser=False,
        requested_by=maker, reason="new operator",
    )  # fmt: skip

    def approve(index: int) -> str:
        try:
            approval_request_approve(
                approval_id=approval.public_id,
                approver=checkers[index],
                change_hash=approval.change_hash,
                mfa_verified_at=timezone.now(),
            )
        except ApprovalNotPending:
            return "not_pending"
        return "applied"

    assert sorted(run_threads(2, approve)) == ["applied", "not_pending"]
    assert AuditEvent.objects.filter(event_type="approval.applied", object_id=str(approval.public_id)).count() == 1
    assert _roles(subject) == ["operations"]


@pytest.mark.django_db
def test_requests_expire_and_an_expired_request_cannot_be_approved():
    maker, checker, subject = _staff("security_admin"), _staff("security_admin"), _staff()
    approval = staff_access_change_request(
        user=subject, roles=["operations"], permissions=[], is_active=True, is_staff=True, is_superuser=False,
        requested_by=maker, reason="new operator",
    )  # fmt: skip
    ApprovalRequest.objects.filter(pk=approval.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(DomainError) as refused:
        approval_request_approve(
            approval_id=approval.public_id, approver=checker, change_hash=approval.change_hash,
            mfa_verified_at=timezone.now(),
        )  # fmt: skip
    assert refused.value.code == "approval_expired"
    assert approval_requests_expire() == 1
    approval.refresh_from_db()
    assert approval.status == "expired" and _roles(subject) == []


@pytest.mark.django_db
def test_the_database_refuses_a_requester_deciding_their_own_request():
    maker, subject = _staff("security_admin"), _staff()
    approval = staff_access_change_request(
        user=subject, roles=["operations"], permissions=[], is_active=True, is_staff=True, is_superuser=False,
        requested_by=maker, reason="new operator",
    )  # fmt: skip
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        ApprovalRequest.objects.filter(pk=approval.pk).update(decided_by=maker, decided_at=timezone.now())


@pytest.mark.django_db
def test_a_partner_client_policy_change_from_the_admin_waits_for_a_second_security_admin():
    from accounts.approvals.services import approval_request_approve as approve
    from accounts.models import OAuthClientPolicy
    from accounts.oauth.clients import oauth_client_register_partner
    from audit.services.events import Actor

    application, _ = oauth_client_register_partner(
        name="Acme four eyes", can_introspect=False, actor=Actor.system("test")
    )
    policy = OAuthClientPolicy.objects.get(application=application)
    maker, checker = _staff("security_admin"), _staff("security_admin")
    response = _admin(maker).post(
        f"/admin/accounts/oauthclientpolicy/{policy.pk}/change/",
        {"can_introspect": "on", "webhook_url": "", "detokenize_token_types": "card",
         "four_eyes_reason": "partner contract signed"},
    )  # fmt: skip
    assert response.status_code == 302, response.content[:2000]
    policy.refresh_from_db()
    assert policy.detokenize_token_types == [] and not policy.can_introspect
    approval = ApprovalRequest.objects.get(kind="oauth.client_policy")
    approve(approval_id=approval.public_id, approver=checker, change_hash=approval.change_hash,
            mfa_verified_at=timezone.now())  # fmt: skip
    policy.refresh_from_db()
    assert policy.detokenize_token_types == ["card"] and policy.can_introspect


@pytest.mark.django_db
def test_the_person_page_leads_to_the_requests_and_the_request_pages_record_them(mailoutbox):
    from accounts.services import customer_create

    security, operations = _staff("security_admin"), _staff("operations")
    colleague = _staff("operations")
    customer = customer_create(email=f"c.{uuid.uuid4().hex[:8]}@example.com", password=None)
    security_client, operations_client = _admin(security), _admin(operations)

    page = security_client.get(f"/admin/accounts/user/{colleague.pk}/change/").content.decode()
    assert f"/admin/accounts/approvalrequest/access/{colleague.public_id}/" in page
    assert f"/admin/accounts/approvalrequest/ask/staff-second-factor/{colleague.public_id}/" in page
    customer_page = operations_client.get(f"/admin/accounts/user/{customer.pk}/change/").content.decode()
    assert f"/ask/customer-second-factor/{customer.public_id}/" in customer_page

    invited = security_client.post(
        "/admin/accounts/approvalrequest/ask/invite/",
        {"email": "New.Hire@Fintech.Example", "roles": ["operations"], "reason": "joins ops on Monday"},
    )
    reset = operations_client.post(
        f"/admin/accounts/approvalrequest/ask/customer-second-factor/{customer.public_id}/",
        {"reason": "passport checked on a video call, ticket 42"},
    )
    wrong_door = operations_client.post(
        f"/admin/accounts/approvalrequest/ask/customer-second-factor/{colleague.public_id}/", {"reason": "x"}
    )
    assert invited.status_code == 302 and reset.status_code == 302 and wrong_door.status_code == 404
    kinds = sorted(ApprovalRequest.objects.values_list("kind", flat=True))
    assert kinds == ["customer.second_factor_reset", "staff.invite"]
    invite = ApprovalRequest.objects.get(kind="staff.invite")
    assert "new.hire@fintech.example" not in json.dumps(invite.change) + invite.summary  # no email in clear
    assert mailoutbox == []  # nothing is sent before a second security admin approves
    assert operations_client.post("/admin/accounts/approvalrequest/ask/invite/", {}).status_code == 403


@pytest.mark.django_db
def test_every_four_eyes_admin_page_shows_the_reason_field_its_save_requires():
    """Found in review with a browser: the profile page left the required reason out, so Save never worked."""
    from django.contrib import admin as django_admin

    from accounts.approvals.change_admin import FourEyesChangeAdmin
    from accounts.oauth.clients import oauth_client_register_partner
    from accounts.services import customer_create
    from audit.services.events import Actor

    customer_create(email=f"c.{uuid.uuid4().hex[:8]}@example.com", password=None)
    oauth_client_register_partner(name="Acme reason", can_introspect=False, actor=Actor.system("test"))
    superuser = _staff()
    User.objects.filter(pk=superuser.pk).update(is_superuser=True)
    client = _admin(User.objects.get(pk=superuser.pk))
    checked = []
    for model, model_admin in django_admin.site._registry.items():
        if not isinstance(model_admin, FourEyesChangeAdmin):
            continue
        row = model.objects.order_by("pk").first()
        assert row is not None, model
        page = client.get(f"/admin/{model._meta.app_label}/{model._meta.model_name}/{row.pk}/change/")
        assert page.status_code == 200 and 'name="four_eyes_reason"' in page.content.decode(), model
        checked.append(model._meta.model_name)
    assert {"customerprofile", "transferlimit", "transferrule", "oauthclientpolicy"} <= set(checked)


@pytest.mark.django_db
def test_a_role_definition_cannot_be_edited_in_the_admin_even_by_a_superuser():
    """Roles are code (accounts/roles.py): editing a group's permissions would change every holder at once."""
    from django.contrib.auth.models import Permission

    superuser = _staff()
    User.objects.filter(pk=superuser.pk).update(is_superuser=True)
    client = _admin(User.objects.get(pk=superuser.pk))
    operations = Group.objects.get(name="operations")
    before = set(operations.permissions.values_list("pk", flat=True))
    unmask = Permission.objects.get(content_type__app_label="audit", codename="unmask_pii")

    page = client.get(f"/admin/auth/group/{operations.pk}/change/")
    forged = client.post(
        f"/admin/auth/group/{operations.pk}/change/", {"name": "operations", "permissions": [*before, unmask.pk]}
    )

    assert page.status_code == 200 and forged.status_code == 403
    assert set(operations.permissions.values_list("pk", flat=True)) == before
    assert client.post("/admin/auth/group/add/", {"name": "shadow"}).status_code == 403
    assert not Group.objects.filter(name="shadow").exists()
