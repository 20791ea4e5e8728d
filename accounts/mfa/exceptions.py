"""Domain errors of multi-factor authentication."""

from fintech.problems import DomainError


class MfaAlreadyEnabled(DomainError):
    status = 409
    code = "mfa_already_enabled"
    title = "Two-step verification is already on for this account"


class MfaEnrolmentNotStarted(DomainError):
    status = 409
    code = "mfa_enrolment_not_started"
    title = "Start setting up two-step verification again"
