"""Reads of staff invitations: a link's token to its invitation, and whether that invitation still holds.

A link is looked up by the SHA-256 of its secret (a unique index), never by
comparing secrets: the stored value is a hash, so there is nothing to compare
in variable time, and a guessed token only finds nothing.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils import timezone

from accounts.approvals.models import ApprovalRequest, StaffInvitation
from accounts.approvals.services import approval_request_authentic
from accounts.invitations.exceptions import InvitationInvalidInput
from accounts.models import User
from fintech.macs import row_mac_matches, row_mac_of

# secrets.token_urlsafe(32) gives 43 characters; a little slack, never an unbounded string to hash.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
EMAIL_MAX_LENGTH = 254


def invitation_token_hash(token: str) -> str | None:
    """The stored form of a link's secret, or None when `token` cannot be one (then no lookup is needed)."""
    if not isinstance(token, str) or not _TOKEN.match(token):
        return None
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def invitation_by_token_hash(token_hash: str | None) -> StaffInvitation | None:
    if not token_hash:
        return None
    return StaffInvitation.objects.select_related("approval", "user").filter(token_hash=token_hash).first()


def staff_email_normalise(email: str) -> str:
    """Lower case, trimmed, a valid address: the one form invitations and users are compared in."""
    value = (email or "").strip().lower()
    if len(value) > EMAIL_MAX_LENGTH:
        raise InvitationInvalidInput("The email address is not valid")
    try:
        EmailValidator()(value)
    except ValidationError:
        raise InvitationInvalidInput("The email address is not valid") from None
    return value


def email_has_user(email: str) -> bool:
    return User.objects.filter(email__iexact=email).exists()


def pending_invitations(*, email: str, now: datetime | None = None):
    """Unused, unexpired invitations of one address (any purpose)."""
    return StaffInvitation.objects.filter(email=email, accepted_at__isnull=True, expires_at__gt=now or timezone.now())


def active_staff_exists() -> bool:
    return User.objects.filter(is_staff=True, is_active=True).exists()


INVITATION_MAC_SALT = "accounts.staff_invitation/1"


def _invitation_values(invitation: StaffInvitation) -> list:
    reenrol = invitation.purpose == StaffInvitation.Purpose.REENROL
    return [
        str(invitation.public_id), invitation.purpose, invitation.email, sorted(invitation.roles),
        invitation.token_hash, invitation.approval_id, invitation.user_id if reenrol else None,
        invitation.expires_at.isoformat(),
    ]  # fmt: skip


def invitation_mac(invitation: StaffInvitation) -> str:
    return row_mac_of(INVITATION_MAC_SALT, _invitation_values(invitation))


def invitation_authentic(invitation: StaffInvitation) -> bool:
    """Whether the invitation is the one this application issued (issue 12): not one written with the login."""
    return row_mac_matches(invitation.mac, INVITATION_MAC_SALT, _invitation_values(invitation))


def _join_refusal(invitation: StaffInvitation) -> str | None:
    if email_has_user(invitation.email):
        return "email_in_use"
    if invitation.approval_id is None:
        # Bootstrap (`staff_bootstrap`): only while nobody is staff yet; after that, joining takes four eyes.
        return "staff_exists" if active_staff_exists() else None
    from accounts.approvals.kinds_staff import KIND_INVITE  # the kinds import the invitation services

    approval = invitation.approval
    if approval.status != ApprovalRequest.Status.APPLIED:
        return "approval_not_applied"
    if approval.kind != KIND_INVITE or not approval_request_authentic(approval):
        return "not_authentic"
    return None


def invitation_refusal_reason(invitation: StaffInvitation | None, *, now: datetime | None = None) -> str | None:
    """None if the invitation can be accepted now, else why not (a stable word for the trail and the page)."""
    if invitation is None:
        return "unknown"
    if invitation.accepted_at is not None:
        return "used"
    if invitation.expires_at <= (now or timezone.now()):
        return "expired"
    if not invitation_authentic(invitation):  # written, or its expiry stretched, with the database login alone
        return "not_authentic"
    if invitation.purpose == StaffInvitation.Purpose.JOIN:
        return _join_refusal(invitation)
    user = invitation.user
    return None if user is not None and user.is_active and user.is_staff else "account_inactive"


def invitation_account(invitation: StaffInvitation) -> User:
    """Whose password is being chosen: the staff member (re-enrolment) or, unsaved, the one joining.

    For Django's password validators, which compare the password with the account's attributes.
    """
    if invitation.purpose == StaffInvitation.Purpose.REENROL and invitation.user is not None:
        return invitation.user
    return User(email=invitation.email, is_staff=True)
