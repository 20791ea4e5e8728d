"""Four-eyes kinds `staff.invite` and `staff.mfa_reset`: who joins the staff, and recovering a lost second factor.

Both end in a staff invitation (`accounts.invitations`): the person sets their
own password and authenticator from a single-use link. Nobody else ever types
a staff password, and an email link alone never replaces a second factor
without a second staff member approving it.

`staff.invite` is about someone with no account yet, so the request carries no
email in clear (the trail and the admin show requests): the target is a keyed
SHA-256 of the address (the key derived from SECRET_KEY), which PostgreSQL can
compute for each row to read the target's state (is the address someone's,
how many unused invitations has it) without the address; the change holds the
address sealed with the field key ring (AES-256-GCM, bound to the target),
opened only to send the link. Rare requests, so the state is a scan of the
users' addresses, not an index. A SECRET_KEY rotated while a request waits
makes its target read as "no account, nothing pending"; the invitation
service still refuses a taken address when the request is applied (void).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db.models import CharField, F, Func, Value
from django.db.models.functions import Concat
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.module_loading import import_string
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.approvals.models import ApprovalRequest, StaffInvitation
from accounts.approvals.registry import ChangeKind, change_kind_register
from accounts.approvals.services import approval_request_create
from accounts.invitations.exceptions import InvitationAlreadyPending, InvitationEmailInUse, InvitationInvalidInput
from accounts.invitations.selectors import EMAIL_MAX_LENGTH, email_has_user, pending_invitations, staff_email_normalise
from accounts.invitations.services import staff_invitation_issue
from accounts.models import User
from accounts.password_reset import customer_sign_out_everywhere
from accounts.roles import ROLE_PERMISSIONS
from audit.masking import email_masked
from audit.services.events import Actor
from fintech.problems import DomainError
from tokenvault.crypto import envelope_open, envelope_seal
from tokenvault.fields import field_key_provider

KIND_INVITE = "staff.invite"
KIND_MFA_RESET = "staff.mfa_reset"
APPROVER_PERMISSION = "accounts.approve_access_change"
REQUESTER_PERMISSION = "accounts.change_user"
_SEAL_CONTEXT = "accounts.staff_invite.email.v1"


class StaffChangeInvalid(DomainError):
    code = "staff_change_invalid"
    title = "This change does not apply to that account"


# --- staff.invite -------------------------------------------------------------------------------------------


def _email_key_prefix() -> str:
    return salted_hmac("accounts.approvals.kinds_staff.email", "target-id", algorithm="sha256").hexdigest() + ":"


def invite_target_id(email: str) -> str:
    """The request's target: a keyed SHA-256 (hex) of the normalised address, never the address."""
    return hashlib.sha256((_email_key_prefix() + email).encode()).hexdigest()


def _keyed_email(field: str) -> Func:
    """`invite_target_id` of each row's address, computed by PostgreSQL (addresses are stored lower case)."""
    return Func(
        Concat(Value(_email_key_prefix()), F(field), output_field=CharField()),
        template="encode(sha256(convert_to(%(expressions)s, 'UTF8')), 'hex')",
        output_field=CharField(),
    )


def _invite_state(target_id: str) -> dict[str, Any]:
    pending = StaffInvitation.objects.filter(accepted_at__isnull=True, expires_at__gt=timezone.now())
    return {
        "user_exists": User.objects.alias(key=_keyed_email("email")).filter(key=target_id).exists(),
        "pending_invitations": pending.alias(key=_keyed_email("email")).filter(key=target_id).count(),
    }


def _seal_aad(target_id: str) -> bytes:
    return f"{_SEAL_CONTEXT}:{target_id}".encode("ascii")


def _email_seal(email: str, target_id: str) -> str:
    blob = envelope_seal(
        plaintext=email.encode("utf-8"),
        aad=_seal_aad(target_id),
        provider=field_key_provider(),
        max_plaintext_bytes=EMAIL_MAX_LENGTH * 4,
    )
    return base64.b64encode(blob).decode("ascii")


def _email_open(sealed: str, target_id: str) -> str:
    try:
        blob = base64.b64decode(sealed, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise StaffChangeInvalid("the request's address is not readable") from None
    return envelope_open(blob=blob, aad=_seal_aad(target_id), provider=field_key_provider()).decode("utf-8")


def _invite_apply(approval: ApprovalRequest, approver: User) -> dict[str, Any]:
    email = _email_open(approval.change.get("email_sealed", ""), approval.target_id)
    invitation, _ = staff_invitation_issue(
        email=email,
        roles=list(approval.change.get("roles", [])),
        approval=approval,
        actor=Actor(staff=str(approver.public_id)),
    )
    return {"invitation": str(invitation.public_id)}


def staff_invite_request(
    *, email: str, roles: list[str], requested_by: User, reason: str, request: HttpRequest | None = None
) -> ApprovalRequest:
    """Ask for `email` to be invited to join the staff with `roles`; a second security admin approves and sends it."""
    email = staff_email_normalise(email)
    wanted = sorted(set(roles or []))
    unknown = [role for role in wanted if role not in ROLE_PERMISSIONS]
    if not wanted or unknown:
        raise InvitationInvalidInput(f"unknown roles: {', '.join(unknown)}" if unknown else "name at least one role")
    if email_has_user(email):
        raise InvitationEmailInUse()
    if pending_invitations(email=email).exists():
        raise InvitationAlreadyPending()
    target_id = invite_target_id(email)
    return approval_request_create(
        kind=KIND_INVITE,
        target_type="accounts.staffinvitation",
        target_id=target_id,
        change={"roles": wanted, "email_sealed": _email_seal(email, target_id)},
        # The domain in clear: the approver checks the link goes to a work address, not somebody's own mailbox.
        summary=f"invite {email_masked(email).split('@')[0]}@{email.rsplit('@', 1)[-1]} to join the staff as"
        f" {', '.join(wanted)}",
        requested_by=requested_by,
        reason=reason,
        request=request,
    )


# --- staff.mfa_reset ----------------------------------------------------------------------------------------


def _user_locked(public_id: str) -> User | None:
    return User.objects.select_for_update().filter(public_id=public_id).first()


def _mfa_state(public_id: str) -> dict[str, Any]:
    user = _user_locked(public_id)
    if user is None:
        return {}
    return {
        "is_staff": user.is_staff,
        "is_active": user.is_active,
        "authenticators": sorted(TOTPDevice.objects.filter(user=user, confirmed=True).values_list("id", flat=True)),
        "recovery_codes": sorted(StaticDevice.objects.filter(user=user, confirmed=True).values_list("id", flat=True)),
    }


def staff_sessions_end(user: User) -> int:
    """Delete the user's live web sessions now (a password change alone ends them only at their next request)."""
    store = import_string(f"{settings.SESSION_ENGINE}.SessionStore")
    if not issubclass(store, DatabaseSessionStore):  # fintech.sessions is one (rows keyed by a hash: issue 12)
        return 0
    model = store.get_model_class()
    ended = [  # each row's primary key as stored (the hash, not the cookie): enough to delete it
        session.session_key
        for session in model.objects.filter(expire_date__gt=timezone.now()).iterator()
        if session.get_decoded().get(SESSION_KEY) == str(user.pk)
    ]
    model.objects.filter(session_key__in=ended).delete()
    return len(ended)


def _mfa_reset_apply(approval: ApprovalRequest, approver: User) -> dict[str, Any]:
    user = _user_locked(approval.target_id)
    if user is None or not (user.is_staff and user.is_active):
        raise StaffChangeInvalid("only an active staff member's second factor is reset this way")
    authenticators = TOTPDevice.objects.filter(user=user).count()
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    user.set_unusable_password()
    user.save(update_fields=["password"])
    sessions = staff_sessions_end(user)
    customer_sign_out_everywhere(user=user, actor=Actor(staff=str(approver.public_id)))  # their OAuth tokens too
    invitation, _ = staff_invitation_issue(
        email=user.email,
        roles=[],
        approval=approval,
        purpose=StaffInvitation.Purpose.REENROL,
        user=user,
        actor=Actor(staff=str(approver.public_id)),
    )
    return {
        "invitation": str(invitation.public_id),
        "authenticators_removed": authenticators,
        "sessions_ended": sessions,
    }


def staff_mfa_reset_request(
    *, user: User, requested_by: User, reason: str, request: HttpRequest | None = None
) -> ApprovalRequest:
    """Ask for a staff member's second factor to be reset; once approved they re-enrol from an emailed link.

    Approval removes their authenticators and recovery codes, makes their
    password unusable and ends their sessions: until they accept the link,
    nobody can sign in as them.
    """
    if not (user.is_staff and user.is_active):
        raise StaffChangeInvalid("only an active staff member's second factor is reset this way")
    return approval_request_create(
        kind=KIND_MFA_RESET,
        target_type="accounts.user",
        target_id=str(user.public_id),
        change={"reset": ["authenticators", "recovery_codes", "password", "sessions"], "then": "reenrol_invitation"},
        summary=f"reset the second factor of staff member {user.public_id} and email a re-enrolment link",
        subject=user,
        requested_by=requested_by,
        reason=reason,
        request=request,
    )


def register() -> None:
    change_kind_register(
        ChangeKind(
            name=KIND_INVITE,
            permission=APPROVER_PERMISSION,
            request_permission=REQUESTER_PERMISSION,
            target_state=_invite_state,
            apply=_invite_apply,
            label="Invite a new staff member",
        )
    )
    change_kind_register(
        ChangeKind(
            name=KIND_MFA_RESET,
            permission=APPROVER_PERMISSION,
            request_permission=REQUESTER_PERMISSION,
            target_state=_mfa_state,
            apply=_mfa_reset_apply,
            label="Reset a staff member's second factor",
        )
    )
