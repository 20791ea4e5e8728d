"""Writes of staff invitations: issue a single-use link, refuse a bad one, accept it (password and TOTP at once).

Nobody but the staff member ever types their password: an invitation is the
only way a staff account gets a password and an authenticator. It is issued
by an approved four-eyes request (`accounts.approvals.kinds_staff`), or once,
before any staff exist, by `staff_bootstrap`.

* **Only a hash is stored.** The link carries `secrets.token_urlsafe(32)` (256
  bits); the row keeps its SHA-256, looked up through a unique index.
* **Single use, 24 hours.** Accepting locks the invitation row, re-checks every
  rule under the lock and marks it used in the same transaction: two racing
  submits accept once, the second is refused like a reused link.
* **One transaction** creates the account (or re-keys it), its confirmed
  authenticator, recovery codes and the audit rows, or nothing. A join names
  the new user as the approval's subject first, and sets
  `fintech.approval_request` (transaction-local) before the staff flag and
  roles are written, so the database's access triggers see an approved change.
* **The email is sent inside the issuing transaction**, last: a refused send
  rolls the invitation back (`staff_invitation_not_sent`) instead of leaving an
  invitation nobody received blocking a new one for a day. A send that
  succeeded before a failed commit leaves a link whose hash was never stored.
* **Audited without the email**: `staff.invitation_issued`,
  `staff.invitation_accepted`, `staff.invitation_refused` name invitations,
  approvals and users by public id.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import identify_hasher, is_password_usable, make_password
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from accounts.access_changes.authorization import approved_access_begin, approved_access_end
from accounts.approvals.models import ApprovalRequest, StaffInvitation
from accounts.invitations.exceptions import (
    InvitationAlreadyPending,
    InvitationCodeMismatch,
    InvitationEmailInUse,
    InvitationInvalidInput,
    InvitationLinkRefused,
    InvitationNotSent,
)
from accounts.invitations.selectors import (
    email_has_user,
    invitation_account,
    invitation_by_token_hash,
    invitation_mac,
    invitation_refusal_reason,
    invitation_token_hash,
    pending_invitations,
    staff_email_normalise,
)
from accounts.mfa.provisioning import totp_code_normalise
from accounts.mfa.services import TOTP_DEVICE_NAME, recovery_codes_replace
from accounts.models import User
from accounts.roles import ROLE_PERMISSIONS
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from fintech.public_origin import public_origin
from fintech.redis_client import first_in_period, redis_key

logger = logging.getLogger(__name__)
REFUSAL_RECORD_SECONDS = 3600

INVITATION_TTL = timedelta(hours=24)
OBJECT_TYPE = "accounts.staffinvitation"
EMAIL_SUBJECT_TEMPLATE = "accounts/staff_invitation_subject.txt"
EMAIL_BODY_TEMPLATE = "accounts/staff_invitation_email.txt"
_TOTP_KEY = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True, slots=True)
class Acceptance:
    """An accepted invitation. `recovery_codes` are in clear: show them once, store them nowhere."""

    invitation: StaffInvitation
    user: User
    device: TOTPDevice
    recovery_codes: tuple[str, ...]


# --- links ------------------------------------------------------------------------------------------


def invitation_link_path(token: str) -> str:
    return reverse("staff-invitation-open", kwargs={"token": token})


def _email_lock(email: str) -> None:
    """Serialise everything that issues or accepts an invitation for one address (transaction-scoped)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"accounts.staff_invitation:{email}"])


# --- issuing -----------------------------------------------------------------------------------------


def _send(invitation: StaffInvitation, link: str) -> None:
    context = {
        "link": link,
        "valid_hours": int(INVITATION_TTL.total_seconds() // 3600),
        "reenrol": invitation.purpose == StaffInvitation.Purpose.REENROL,
        "approved": invitation.approval_id is not None,
    }
    message = EmailMessage(
        subject=" ".join(render_to_string(EMAIL_SUBJECT_TEMPLATE, context).split()),  # one line: no header injection
        body=render_to_string(EMAIL_BODY_TEMPLATE, context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[invitation.email],
    )
    try:
        message.send()
    except OSError as error:  # smtplib.SMTPException and socket errors are OSErrors
        # Never the exception text: an SMTP refusal quotes the address.
        logger.error("staff invitation email not sent: %s", type(error).__name__)
        raise InvitationNotSent() from None


def staff_invitation_issue(
    *,
    email: str,
    roles: list[str],
    approval: ApprovalRequest | None,
    purpose: str = StaffInvitation.Purpose.JOIN,
    user: User | None = None,
    actor: Actor | None = None,
    request: HttpRequest | None = None,
) -> tuple[StaffInvitation, str]:
    """Create an invitation and email its link; returns it and the link's path (which holds the secret).

    `join`: a new staff member with `roles`; refused when the address already
    has an account or an unused invitation. `reenrol`: `user` (staff) sets a
    new password and authenticator; their earlier unused re-enrolment links
    expire. `actor` defaults to the approval's approver.
    """
    if purpose not in StaffInvitation.Purpose.values:
        raise InvitationInvalidInput(f"unknown invitation purpose: {purpose}")
    wanted_roles = sorted(set(roles or []))
    unknown = [role for role in wanted_roles if role not in ROLE_PERMISSIONS]
    if unknown:
        raise InvitationInvalidInput(f"unknown roles: {', '.join(unknown)}")
    if actor is None:
        decided_by = approval.decided_by if approval is not None else None
        actor = Actor(staff=str(decided_by.public_id)) if decided_by is not None else Actor.system("staff_invitation")
    now = timezone.now()
    with transaction.atomic():
        if purpose == StaffInvitation.Purpose.JOIN:
            if user is not None or not wanted_roles:
                raise InvitationInvalidInput("a new staff member is invited with at least one role, and no account")
            email = staff_email_normalise(email)
            _email_lock(email)
            if email_has_user(email):
                raise InvitationEmailInUse()
            if pending_invitations(email=email, now=now).exists():
                raise InvitationAlreadyPending()
        else:
            if user is None or not (user.is_staff and user.is_active):
                raise InvitationInvalidInput("re-enrolment is for an active staff member")
            email, wanted_roles = user.email, []
            _email_lock(email)
            pending_invitations(email=email, now=now).filter(purpose=purpose, user=user).update(expires_at=now)
        token = secrets.token_urlsafe(32)
        invitation = StaffInvitation(
            purpose=purpose,
            email=email,
            roles=wanted_roles,
            token_hash=invitation_token_hash(token),
            approval=approval,
            expires_at=now + INVITATION_TTL,
            user=user,
        )
        invitation.mac = invitation_mac(invitation)
        invitation.save()
        path = invitation_link_path(token)
        audit_event_record(
            event_type="staff.invitation_issued",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            object_type=OBJECT_TYPE,
            object_id=str(invitation.public_id),
            payload={
                "purpose": purpose,
                "roles": wanted_roles,
                "approval": str(approval.public_id) if approval is not None else None,
                "user": str(user.public_id) if user is not None else None,
                "expires_at": invitation.expires_at.isoformat(),
            },
            request=request,
        )
        _send(invitation, public_origin() + path)
    return invitation, path


# --- opening a link, choosing a password ---------------------------------------------------------------


def _refusal_record(invitation: StaffInvitation | None, reason: str, stage: str, request: HttpRequest | None) -> None:
    """A refused known link is on record; an unknown token is only logged, or anyone could flood the trail."""
    if invitation is None:
        logger.warning("staff invitation link refused: %s (%s), unknown token", reason, stage)
        return
    if not first_in_period(redis_key("invitation-refused", str(invitation.public_id), reason), REFUSAL_RECORD_SECONDS):
        logger.warning("staff invitation link refused again: %s (%s), on record already", reason, stage)
        return  # a used or expired link opened again and again: one row per hour, not one per request
    audit_event_record(
        event_type="staff.invitation_refused",
        outcome=AuditEvent.Outcome.DENIED,
        actor=Actor.from_request(request),
        object_type=OBJECT_TYPE,
        object_id=str(invitation.public_id) if invitation is not None else "",
        payload={"reason": reason, "stage": stage, **({"purpose": invitation.purpose} if invitation else {})},
        request=request,
    )


def staff_invitation_open(*, token_hash: str | None, stage: str, request: HttpRequest | None = None) -> StaffInvitation:
    """The invitation behind a link if it can still be accepted; else `staff.invitation_refused` and a refusal.

    Writes nothing but the refusal event: opening a link is only a check.
    """
    invitation = invitation_by_token_hash(token_hash)
    reason = invitation_refusal_reason(invitation)
    if reason is not None:
        _refusal_record(invitation, reason, stage, request)
        raise InvitationLinkRefused(reason)
    return invitation


def staff_invitation_password_hash(*, invitation: StaffInvitation, password: str) -> str:
    """Django's password validators (against the account being set up), then the hash to keep until acceptance.

    Raises django's ValidationError. The clear password is never stored, not even in the session.
    """
    password_validation.validate_password(password, invitation_account(invitation))
    return make_password(password)


def totp_key_new() -> str:
    """A fresh authenticator secret (160 bits, hex), held by the flow until the person proves they scanned it."""
    return random_hex(20)


def totp_enrolment_device(*, key: str) -> TOTPDevice:
    """An unsaved authenticator with `key` (what the QR code and setup key show), with the model's defaults."""
    if not _TOTP_KEY.match(key or ""):
        raise ValueError("not an authenticator secret")
    return TOTPDevice(name=TOTP_DEVICE_NAME, key=key, confirmed=False)


def _code_match(key: str, code: str) -> tuple[int, int] | None:
    """(time step, drift) of the code if it is the authenticator's current one (± the model's tolerance)."""
    device = totp_enrolment_device(key=key)
    token = totp_code_normalise(code)
    if token is None:
        return None
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, 0)
    totp.time = time.time()
    if not totp.verify(int(token), tolerance=device.tolerance):
        return None
    return totp.t(), totp.drift


# --- accepting ----------------------------------------------------------------------------------------


def _staff_join(invitation: StaffInvitation, password_hash: str) -> User:
    try:
        with transaction.atomic():  # a savepoint: a racing sign-up with this address is a refusal, not an error
            user = User.objects.create_user(email=invitation.email, password=None)
    except (IntegrityError, ValidationError):
        raise InvitationLinkRefused("email_in_use") from None
    approval = invitation.approval
    if approval is not None:
        # The subject first: the access triggers accept the staff flag and roles only for the approval's subject.
        ApprovalRequest.objects.filter(pk=approval.pk).update(subject=user)
        approved_access_begin(approval.public_id, user.pk)
    try:
        user.password = password_hash
        user.is_staff = True
        user.save(update_fields=["password", "is_staff"])
        user.groups.set(Group.objects.filter(name__in=invitation.roles))
    finally:
        if approval is not None:
            approved_access_end()
    return user


def _staff_reenrol(invitation: StaffInvitation, password_hash: str) -> User:
    user = User.objects.select_for_update().get(pk=invitation.user_id)
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    user.password = password_hash
    user.save(update_fields=["password"])  # every other session of the account ends with its password hash
    return user


def staff_invitation_accept(
    *, token_hash: str | None, password_hash: str, totp_key: str, code: str, request: HttpRequest | None = None
) -> Acceptance:
    """Accept an invitation: the account, its password, a confirmed authenticator and recovery codes, at once.

    A code that does not match `totp_key` raises InvitationCodeMismatch and
    writes nothing (the person types it again). A link that cannot be accepted
    (unknown, expired, used, or no longer applying) raises
    InvitationLinkRefused, recorded as `staff.invitation_refused` after the
    rollback; nothing else is written.
    """
    if not (password_hash and is_password_usable(password_hash)):
        raise ValueError("a usable password hash is required")
    identify_hasher(password_hash)  # ValueError for anything that is not one of our hashes
    matched = _code_match(totp_key, code)
    if matched is None:
        raise InvitationCodeMismatch()
    last_t, drift = matched
    try:
        with transaction.atomic(durable=True):
            # The address lock first, as issuing takes it before any invitation row: one order, no deadlock.
            email = StaffInvitation.objects.filter(token_hash=token_hash or "").values_list("email", flat=True).first()
            if email is not None:
                _email_lock(email)
            invitation = (
                StaffInvitation.objects.select_for_update(of=("self",))
                .select_related("approval", "user")
                .filter(token_hash=token_hash or "")
                .first()
            )
            reason = invitation_refusal_reason(invitation)
            if reason is not None:
                raise InvitationLinkRefused(reason)
            joining = invitation.purpose == StaffInvitation.Purpose.JOIN
            user = _staff_join(invitation, password_hash) if joining else _staff_reenrol(invitation, password_hash)
            device = TOTPDevice.objects.create(
                user=user, name=TOTP_DEVICE_NAME, key=totp_key, confirmed=True, last_t=last_t, drift=drift
            )
            recovery_codes = recovery_codes_replace(user=user)
            invitation.accepted_at = timezone.now()
            invitation.user = user
            invitation.save(update_fields=["accepted_at", "user"])
            actor = Actor(staff=str(user.public_id))
            audit_event_record(
                event_type="staff.invitation_accepted",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=actor,
                object_type=OBJECT_TYPE,
                object_id=str(invitation.public_id),
                payload={
                    "purpose": invitation.purpose,
                    "roles": list(invitation.roles),
                    "approval": str(invitation.approval.public_id) if invitation.approval_id else None,
                    "user": str(user.public_id),
                },
                request=request,
            )
            audit_event_record(
                event_type="mfa.enrolled",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=actor,
                object_type="accounts.user",
                object_id=str(user.public_id),
                payload={"method": "totp", "recovery_codes_issued": len(recovery_codes), "via": "staff_invitation"},
                request=request,
            )
    except InvitationLinkRefused as refused:
        _refusal_record(invitation_by_token_hash(token_hash), refused.reason, "accept", request)
        raise
    return Acceptance(invitation=invitation, user=user, device=device, recovery_codes=recovery_codes)
