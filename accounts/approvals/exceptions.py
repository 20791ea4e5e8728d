"""Why a four-eyes request or decision was refused. Codes are stable; details name no person."""

from fintech.problems import DomainError


class ApprovalKindUnknown(DomainError):
    code = "approval_kind_unknown"
    title = "No such kind of change"


class ApprovalNotFound(DomainError):
    status = 404
    code = "approval_not_found"
    title = "No such approval request"


class ApprovalNotPending(DomainError):
    status = 409
    code = "approval_not_pending"
    title = "This request has already been decided"


class ApprovalExpired(DomainError):
    status = 409
    code = "approval_expired"
    title = "This request has expired; ask again"


class ApprovalBySelfRefused(DomainError):
    status = 403
    code = "approval_by_requester_or_subject"
    title = "The requester and the person the change is about may not decide it"


class ApprovalNotPermitted(DomainError):
    status = 403
    code = "approval_not_permitted"
    title = "You do not hold the permission this change needs"


class ApprovalSecondFactorStale(DomainError):
    status = 403
    code = "approval_second_factor_stale"
    title = "Prove your second factor again (at most 5 minutes old) to approve"


class ApprovalChangeMismatch(DomainError):
    status = 409
    code = "approval_change_mismatch"
    title = "The request differs from the change you reviewed"


class ApprovalVoid(DomainError):
    status = 409
    code = "approval_void"
    title = "The target changed since the request was made (or the change was refused); the request is void"


class ApprovalNothingToChange(DomainError):
    code = "approval_nothing_to_change"
    title = "The requested change is what is already in place"


class ApprovalReasonRequired(DomainError):
    code = "approval_reason_required"
    title = "Say why (a reason is required)"


class ApprovalNotAuthentic(DomainError):
    status = 409
    code = "approval_not_authentic"
    title = "This request was not made through the platform; it cannot be approved"
