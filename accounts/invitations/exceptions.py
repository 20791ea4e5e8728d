"""Why a staff invitation was not issued or not accepted. Codes are stable; details name no person."""

from fintech.problems import DomainError


class InvitationInvalidInput(DomainError):
    code = "staff_invitation_invalid"
    title = "The invitation is not valid (email address or roles)"


class InvitationEmailInUse(DomainError):
    status = 409
    code = "staff_invitation_email_in_use"
    title = "An account with this email address already exists"


class InvitationAlreadyPending(DomainError):
    status = 409
    code = "staff_invitation_pending"
    title = "An unused invitation for this email address has not expired yet"


class InvitationLinkRefused(DomainError):
    """The link is unknown (mistyped or tampered with), expired, used, or no longer applies.

    `reason` is for the audit trail and the page; every reason changes nothing.
    """

    status = 410
    code = "staff_invitation_link_invalid"
    title = "This invitation link is not valid"

    def __init__(self, reason: str, **kwargs):
        super().__init__(**kwargs)
        self.reason = reason


class InvitationCodeMismatch(DomainError):
    code = "staff_invitation_code_mismatch"
    title = "That code did not match the authenticator being set up"


class InvitationStaffExists(DomainError):
    status = 409
    code = "staff_bootstrap_staff_exists"
    title = "Active staff exist: new staff are invited through a four-eyes request"


class InvitationNotSent(DomainError):
    status = 503
    code = "staff_invitation_not_sent"
    title = "The invitation email could not be sent; nothing was issued"
