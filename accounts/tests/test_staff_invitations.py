"""Staff join (and re-enrol) by invitation only, through the real pages, against real PostgreSQL.

Codes are computed the way an authenticator app computes them, from the
secret the page shows. Nobody but the new staff member types their password.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.access_changes.services import access_changes_alert
from accounts.approvals.exceptions import ApprovalBySelfRefused, ApprovalVoid
from accounts.approvals.kinds_staff import staff_invite_request, staff_mfa_reset_request
from accounts.approvals.models import ApprovalRequest, StaffInvitation
from accounts.approvals.services import approval_request_approve
from accounts.invitations.exceptions import (
    InvitationAlreadyPending,
    InvitationEmailInUse,
    InvitationLinkRefused,
    InvitationStaffExists,
)
from accounts.invitations.selectors import invitation_token_hash
from accounts.invitations.services import (
    staff_invitation_accept,
    staff_invitation_issue,
    staff_invitation_password_hash,
    totp_key_new,
)
from accounts.mfa import session_mfa_verified_at
from accounts.models import User
from accounts.password_macs import password_mac_valid
from accounts.services import customer_create, staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa
from audit.models import AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("field_keys", "isolated_throttle")]

FLOW = "/accounts/staff-invitation/"
PASSWORD = "a long staff passphrase 42"
NEWCOMER = "new.analyst@fintech.example"
_LINK = re.compile(r"http://testserver(/accounts/staff-invitation/[A-Za-z0-9_-]+/)")


def _staff(*roles: str) -> User:
    user = staff_create(email=f"staff.{uuid.uuid4().hex[:10]}@fintech.example", password=None, roles=list(roles))
    TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)
    return user


def _approve(approval: ApprovalRequest, approver: User) -> ApprovalRequest:
    return approval_request_approve(
        approval_id=approval.public_id,
        approver=approver,
        change_hash=approval.change_hash,
        mfa_verified_at=timezone.now(),
        reason="checked with HR",
    )


def _link_path(message) -> str:
    (path,) = _LINK.findall(message.body)
    return path


def _code_for_secret(grouped_secret: str) -> str:
    secret = grouped_secret.replace(" ", "")
    totp = TOTP(base64.b32decode(secret + "=" * (-len(secret) % 8)))
    totp.time = time.time()
    return f"{totp.token():06d}"


def _events(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("id"))


def _invited(email: str = NEWCOMER, roles: tuple[str, ...] = ("compliance_officer",)) -> tuple[str, ApprovalRequest]:
    """A join invitation issued the only way it is: asked by one security admin, approved by another."""
    maker, checker = _staff("security_admin"), _staff("security_admin")
    approval = staff_invite_request(email=email, roles=list(roles), requested_by=maker, reason="joins compliance")
    _approve(approval, checker)
    invitation = StaffInvitation.objects.get(approval=approval)
    return invitation.email, approval


def _walk_to_authenticator(client: Client, path: str) -> str:
    """Open the link, start, choose the password; returns the setup key the page shows."""
    assert client.post(path)["Location"] == FLOW
    assert client.post(FLOW, {"new_password1": PASSWORD, "new_password2": PASSWORD})["Location"] == FLOW
    page = client.get(FLOW)
    assert page.status_code == 200
    return re.search(r'id="totp-secret">([A-Z2-7 ]+)</code>', page.content.decode()).group(1)


# --- the whole flow, through the pages ------------------------------------------------------------------------


def test_a_four_eyes_invitation_is_emailed_and_the_new_staff_member_sets_password_and_totp_then_opens_the_admin(
    mailoutbox,
):
    maker, checker = _staff("security_admin"), _staff("security_admin")
    approval = staff_invite_request(
        email="New.Analyst@Fintech.example", roles=["compliance_officer"], requested_by=maker, reason="new hire"
    )
    assert approval.status == "pending" and mailoutbox == [] and not StaffInvitation.objects.exists()
    assert NEWCOMER not in json.dumps(approval.change) and NEWCOMER not in approval.target_id

    _approve(approval, checker)

    invitation = StaffInvitation.objects.get()
    assert (invitation.email, invitation.roles, invitation.approval) == (NEWCOMER, ["compliance_officer"], approval)
    assert timedelta(hours=23, minutes=59) < invitation.expires_at - timezone.now() <= timedelta(hours=24)
    (message,) = mailoutbox
    assert message.to == [NEWCOMER] and message.subject == "Your invitation to the Fintech back office"
    path = _link_path(message)
    token = path.rstrip("/").rsplit("/", 1)[1]
    assert invitation.token_hash == invitation_token_hash(token) and token not in invitation.token_hash
    applied = ApprovalRequest.objects.get(pk=approval.pk)
    assert applied.status == "applied" and applied.result == {"invitation": str(invitation.public_id)}

    client = Client()
    landing = client.get(path)
    assert landing.status_code == 200
    assert landing["Referrer-Policy"] == "same-origin" and "no-store" in landing["Cache-Control"]
    assert "Join the Fintech back office" in landing.content.decode()
    started = client.post(path)
    assert started.status_code == 302 and started["Location"] == FLOW  # the token leaves the address bar
    assert token not in json.dumps(dict(client.session.items()))  # the session keeps its hash only

    password_page = client.get(FLOW)
    assert 'autocomplete="new-password"' in password_page.content.decode()
    mismatch = client.post(FLOW, {"new_password1": PASSWORD, "new_password2": PASSWORD + "x"})
    assert mismatch.status_code == 200 and 'role="alert"' in mismatch.content.decode()
    weak = client.post(FLOW, {"new_password1": "short-pw-1", "new_password2": "short-pw-1"})
    assert weak.status_code == 200 and "too short" in weak.content.decode()  # Django's validators
    like_email = client.post(FLOW, {"new_password1": "new.analyst@fintech", "new_password2": "new.analyst@fintech"})
    assert like_email.status_code == 200 and "too similar" in like_email.content.decode()
    assert client.post(FLOW, {"new_password1": PASSWORD, "new_password2": PASSWORD})["Location"] == FLOW
    assert PASSWORD not in json.dumps(dict(client.session.items()))

    qr_page = client.get(FLOW)
    body = qr_page.content.decode()
    assert '<img class="qr" src="data:image/svg+xml;base64,' in body and qr_page["Referrer-Policy"] == "same-origin"
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)</code>', body).group(1)
    assert client.get(FLOW).content.decode().count(secret) == 1  # reloading keeps the secret being scanned
    wrong = client.post(FLOW, {"otp_code": "000000" if _code_for_secret(secret) != "000000" else "111111"})
    assert wrong.status_code == 200 and "That code did not match" in wrong.content.decode()
    assert not User.objects.filter(email=NEWCOMER).exists()

    done = client.post(FLOW, {"otp_code": _code_for_secret(secret)})

    assert done.status_code == 200 and "no-store" in done["Cache-Control"]
    codes = re.findall(r"<li><code>([a-z2-7-]+)</code></li>", done.content.decode())
    assert len(set(codes)) == 10
    assert 'href="/admin/"' in done.content.decode()
    user = User.objects.get(email=NEWCOMER)
    assert user.is_staff and not user.is_superuser and user.check_password(PASSWORD)
    assert password_mac_valid(user)  # the invitation's hash carries its MAC (issue 12)
    assert list(user.groups.values_list("name", flat=True)) == ["compliance_officer"]
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed and base64.b32encode(device.bin_key).decode().rstrip("=") == secret.replace(" ", "")
    assert StaticToken.objects.filter(device__user=user).count() == 10
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None and invitation.user == user
    assert ApprovalRequest.objects.get(pk=approval.pk).subject == user
    assert client.session[SESSION_KEY] == str(user.pk)
    admin = client.get("/admin/")
    assert admin.status_code == 200 and session_mfa_verified_at(admin.wsgi_request) is not None

    # The database's access triggers saw the staff flag and the role written under the approved request.
    changes = AuditEvent.objects.filter(event_type="access.changed", object_id=str(user.public_id))
    assert sorted(e.payload["change"] for e in changes) == ["flags_changed", "group_added"]
    assert {(e.payload["approved"], e.payload["approval_request"]) for e in changes} == {
        (True, str(approval.public_id))
    }
    # Applied in the acceptance's own transaction, with the application's signed word for it: no alert.
    access_changes_alert()
    assert not AuditEvent.objects.filter(
        event_type="alert.raised", payload__kind="access.unapproved_change", object_id=str(user.public_id)
    ).exists()
    (issued,) = _events("staff.invitation_issued")
    assert issued.actor_staff == str(checker.public_id)
    assert issued.payload["approval"] == str(approval.public_id) and issued.payload["roles"] == ["compliance_officer"]
    (accepted,) = _events("staff.invitation_accepted")
    assert accepted.actor_staff == str(user.public_id) and accepted.object_id == str(invitation.public_id)
    everything = json.dumps(list(AuditEvent.objects.values("payload", "object_id")))
    assert NEWCOMER not in everything and token not in everything

    # The link is single-use: opened again, it is refused and writes only the refusal.
    before = AuditEvent.objects.count()
    again = Client().get(path)
    assert again.status_code == 410 and "already been used" in again.content.decode()
    (refused,) = _events("staff.invitation_refused")
    assert refused.payload == {"reason": "used", "stage": "open", "purpose": "join"}
    assert AuditEvent.objects.count() == before + 1


# --- refused links ------------------------------------------------------------------------------------------


def test_an_expired_link_is_refused_and_writes_nothing_but_the_refusal(mailoutbox):
    _invited()
    path = _link_path(mailoutbox[0])
    StaffInvitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    users, events = User.objects.count(), AuditEvent.objects.count()

    response = Client().get(path)

    assert response.status_code == 410 and "has expired" in response.content.decode()
    assert response["Referrer-Policy"] == "same-origin"
    assert (User.objects.count(), AuditEvent.objects.count()) == (users, events + 1)
    (refused,) = _events("staff.invitation_refused")
    assert refused.outcome == "denied" and refused.payload["reason"] == "expired"
    assert refused.object_id == str(StaffInvitation.objects.get().public_id)

    # Found in review: opening a dead link again and again wrote a row each time. Now one per hour.
    for _ in range(5):
        assert Client().get(path).status_code == 410
    assert len(_events("staff.invitation_refused")) == 1


def test_a_link_that_expires_during_the_flow_creates_nothing(mailoutbox):
    _invited()
    client = Client()
    secret = _walk_to_authenticator(client, _link_path(mailoutbox[0]))
    StaffInvitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    users, events = User.objects.count(), AuditEvent.objects.count()

    response = client.post(FLOW, {"otp_code": _code_for_secret(secret)})

    assert response.status_code == 410
    assert not User.objects.filter(email=NEWCOMER).exists()
    assert (User.objects.count(), AuditEvent.objects.count()) == (users, events + 1)
    assert [e.payload["stage"] for e in _events("staff.invitation_refused")] == ["accept"]
    assert "staff_invitation" not in client.session


@pytest.mark.parametrize("tamper", ["flip", "truncate", "garbage"])
def test_a_tampered_link_is_refused_and_writes_nothing(mailoutbox, tamper, caplog):
    """Unknown tokens are logged, not audited: anyone can make them up, and must not be able to flood the trail."""
    _invited()
    path = _link_path(mailoutbox[0])
    token = path.rstrip("/").rsplit("/", 1)[1]
    forged = {
        "flip": token[:-1] + ("A" if token[-1] != "A" else "B"),
        "truncate": token[:-5],
        "garbage": "not-a-token",
    }[tamper]
    events = AuditEvent.objects.count()

    response = Client().post(f"/accounts/staff-invitation/{forged}/")

    assert response.status_code == 404
    assert AuditEvent.objects.count() == events
    ours = [record.getMessage() for record in caplog.records if record.name == "accounts.invitations.services"]
    assert ours == ["staff invitation link refused: unknown (open), unknown token"]
    assert StaffInvitation.objects.get().accepted_at is None


def test_the_flow_without_a_link_in_the_session_is_refused():
    response = Client().get(FLOW)
    assert response.status_code == 404 and "Open the invitation link" in response.content.decode()


def test_two_acceptances_of_one_invitation_create_one_account(mailoutbox):
    email, _ = _invited()
    invitation = StaffInvitation.objects.get()
    token_hash = invitation.token_hash
    key = totp_key_new()
    password_hash = staff_invitation_password_hash(invitation=invitation, password=PASSWORD)
    code = _code_for_secret(base64.b32encode(bytes.fromhex(key)).decode())

    staff_invitation_accept(token_hash=token_hash, password_hash=password_hash, totp_key=key, code=code)
    with pytest.raises(InvitationLinkRefused) as refused:
        staff_invitation_accept(token_hash=token_hash, password_hash=password_hash, totp_key=key, code=code)

    assert refused.value.reason == "used"
    assert User.objects.filter(email=email).count() == 1 and TOTPDevice.objects.filter(user__email=email).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_racing_acceptances_of_one_link_create_one_account(mailoutbox):
    from ledger.tests.test_concurrency import run_threads

    email, _ = _invited()
    invitation = StaffInvitation.objects.get()
    password_hash = staff_invitation_password_hash(invitation=invitation, password=PASSWORD)
    keys = [totp_key_new(), totp_key_new()]

    def accept(index: int) -> str:
        code = _code_for_secret(base64.b32encode(bytes.fromhex(keys[index])).decode())
        try:
            staff_invitation_accept(
                token_hash=invitation.token_hash, password_hash=password_hash, totp_key=keys[index], code=code
            )
        except InvitationLinkRefused as refused:
            return refused.reason
        return "accepted"

    assert sorted(run_threads(2, accept)) == ["accepted", "used"]
    assert User.objects.filter(email=email).count() == 1
    assert TOTPDevice.objects.filter(user__email=email).count() == 1
    assert len(_events("staff.invitation_accepted")) == 1


# --- who may be invited -------------------------------------------------------------------------------------


def test_an_invitation_for_an_address_that_has_an_account_or_a_pending_invitation_is_refused(mailoutbox):
    customer_create(email="alice@example.com", password=PASSWORD)
    maker = _staff("security_admin")

    with pytest.raises(InvitationEmailInUse):
        staff_invite_request(email="Alice@Example.com", roles=["operations"], requested_by=maker, reason="hire")
    with pytest.raises(InvitationEmailInUse):
        staff_invitation_issue(email="alice@example.com", roles=["operations"], approval=None)
    _invited()
    with pytest.raises(InvitationAlreadyPending):
        staff_invite_request(email=NEWCOMER, roles=["operations"], requested_by=maker, reason="hire")
    assert ApprovalRequest.objects.filter(kind="staff.invite").count() == 1
    assert len(mailoutbox) == 1


def test_an_approval_after_the_address_got_an_account_is_void_and_sends_nothing(mailoutbox):
    maker, checker = _staff("security_admin"), _staff("security_admin")
    approval = staff_invite_request(email=NEWCOMER, roles=["operations"], requested_by=maker, reason="new hire")
    customer_create(email=NEWCOMER, password=PASSWORD)  # the target changed meanwhile

    with pytest.raises(ApprovalVoid):
        _approve(approval, checker)

    approval.refresh_from_db()
    assert approval.status == "void" and approval.result == {"reason": "target_changed"}
    assert not StaffInvitation.objects.exists() and mailoutbox == []


def test_the_requester_may_not_approve_their_own_invitation():
    maker = _staff("security_admin")
    approval = staff_invite_request(email=NEWCOMER, roles=["operations"], requested_by=maker, reason="new hire")

    with pytest.raises(ApprovalBySelfRefused):
        _approve(approval, maker)
    assert not StaffInvitation.objects.exists()


# --- second-factor reset ------------------------------------------------------------------------------------


def test_a_second_factor_reset_needs_a_third_person_then_the_staff_member_re_enrols_from_the_emailed_link(
    mailoutbox,
):
    maker, checker = _staff("security_admin"), _staff("security_admin")
    subject = _staff("operations")
    subject.set_password("the old staff passphrase")
    subject.save()
    StaticDevice.objects.create(user=subject, name="Recovery codes", confirmed=True)
    subject_browser = Client()
    force_login_with_mfa(subject_browser, subject)
    approval = staff_mfa_reset_request(user=subject, requested_by=maker, reason="lost phone, identity checked")

    for refused_approver in (maker, subject):
        with pytest.raises(ApprovalBySelfRefused):
            _approve(approval, refused_approver)
    assert TOTPDevice.objects.filter(user=subject).exists() and mailoutbox == []

    _approve(approval, checker)

    subject.refresh_from_db()
    assert not TOTPDevice.objects.filter(user=subject).exists()
    assert not StaticDevice.objects.filter(user=subject).exists()
    assert not subject.has_usable_password()
    assert not any(s.get_decoded().get(SESSION_KEY) == str(subject.pk) for s in Session.objects.all())
    assert subject_browser.get("/admin/").status_code == 302
    invitation = StaffInvitation.objects.get()
    assert (invitation.purpose, invitation.user, invitation.approval) == ("reenrol", subject, approval)
    (message,) = mailoutbox
    assert message.to == [subject.email] and "again" in message.subject

    client = Client()
    assert "Set up your sign-in again" in client.get(_link_path(message)).content.decode()
    secret = _walk_to_authenticator(client, _link_path(message))
    done = client.post(FLOW, {"otp_code": _code_for_secret(secret)})

    assert done.status_code == 200
    subject.refresh_from_db()
    assert subject.check_password(PASSWORD) and subject.is_staff and password_mac_valid(subject)
    assert list(subject.groups.values_list("name", flat=True)) == ["operations"]
    assert TOTPDevice.objects.filter(user=subject, confirmed=True).count() == 1
    assert client.get("/admin/").status_code == 200
    assert [e.payload["purpose"] for e in _events("staff.invitation_accepted")] == ["reenrol"]


def test_only_staff_second_factors_are_reset_this_way():
    from accounts.approvals.kinds_staff import StaffChangeInvalid

    customer = customer_create(email="alice@example.com", password=PASSWORD)
    with pytest.raises(StaffChangeInvalid):
        staff_mfa_reset_request(user=customer, requested_by=_staff("security_admin"), reason="lost phone")


# --- enrolment is by invitation only ------------------------------------------------------------------------


def test_staff_cannot_enrol_a_second_factor_with_a_password_alone():
    staff = staff_create(email="ops@example.com", password=PASSWORD, roles=["operations"])
    client = Client()
    client.force_login(staff)

    page = client.get("/accounts/mfa/setup/")
    posted = client.post("/accounts/mfa/setup/", {"otp_code": "123456"})

    assert page.status_code == 403 and posted.status_code == 403
    assert "invitation link" in page.content.decode()
    assert not TOTPDevice.objects.filter(user=staff).exists()


def test_customers_still_enrol_themselves():
    customer = customer_create(email="alice@example.com", password=PASSWORD)
    client = Client()
    client.force_login(customer)

    assert client.get("/accounts/mfa/setup/").status_code == 200
    assert TOTPDevice.objects.filter(user=customer, confirmed=False).exists()


# --- bootstrap ----------------------------------------------------------------------------------------------


def test_staff_bootstrap_invites_the_first_security_admin_with_an_alert_then_refuses(mailoutbox, capsys):
    call_command("staff_bootstrap", "First.Admin@Fintech.example")

    invitation = StaffInvitation.objects.get()
    assert (invitation.email, invitation.roles, invitation.approval) == (
        "first.admin@fintech.example",
        ["security_admin"],
        None,
    )
    out = capsys.readouterr().out
    path = _link_path(mailoutbox[0])
    assert f"http://testserver{path}" in out
    (issued,) = _events("staff.invitation_issued")
    assert issued.actor_client == "system:staff_bootstrap"
    (alert,) = _events("alert.raised")
    assert alert.actor_client == "system:staff_bootstrap" and alert.object_id == str(invitation.public_id)

    client = Client()
    secret = _walk_to_authenticator(client, path)
    assert client.post(FLOW, {"otp_code": _code_for_secret(secret)}).status_code == 200
    first = User.objects.get(email="first.admin@fintech.example")
    assert first.is_staff and list(first.groups.values_list("name", flat=True)) == ["security_admin"]
    changes = AuditEvent.objects.filter(event_type="access.changed", object_id=str(first.public_id))
    assert changes.exists() and not any(e.payload["approved"] for e in changes)  # no approver: flagged, by design

    with pytest.raises(CommandError, match="staff_bootstrap_staff_exists"):
        call_command("staff_bootstrap", "second.admin@fintech.example")
    assert StaffInvitation.objects.count() == 1


def test_staff_bootstrap_refuses_when_an_active_staff_member_exists():
    _staff("operations")

    with pytest.raises(CommandError, match="staff_bootstrap_staff_exists"):
        call_command("staff_bootstrap", "first.admin@fintech.example")
    assert not StaffInvitation.objects.exists()


def test_a_bootstrap_link_is_refused_once_someone_else_became_staff(mailoutbox):
    from accounts.invitations.bootstrap import staff_bootstrap_invite

    staff_bootstrap_invite(email="first.admin@fintech.example")
    _staff("security_admin")  # created meanwhile (e.g. a second bootstrap link accepted first)

    with pytest.raises(InvitationStaffExists):
        staff_bootstrap_invite(email="other.admin@fintech.example")
    response = Client().get(_link_path(mailoutbox[0]))

    assert response.status_code == 410
    assert [e.payload["reason"] for e in _events("staff.invitation_refused")] == ["staff_exists"]
