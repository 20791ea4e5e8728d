"""Domain errors of the ledger: each a `fintech.problems.DomainError` with a stable code.

Clients branch on `code`, which never changes; `detail` is safe to show and
never names another customer's account or balance. Two errors here are not
domain errors: `LedgerInvariantViolation` and `LockOutsideTransaction` mean a
bug or a damaged database, must never be caught by callers, and surface as a
500 with the transaction rolled back.
"""

from __future__ import annotations

from fintech.problems import DomainError


class AccountNotFound(DomainError):
    status = 404
    code = "account_not_found"
    title = "Account not found"


class HoldNotFound(DomainError):
    status = 404
    code = "hold_not_found"
    title = "Hold not found"


class TransferNotFound(DomainError):
    status = 404
    code = "transfer_not_found"
    title = "Transfer not found"


class InsufficientFunds(DomainError):
    status = 422
    code = "insufficient_funds"
    title = "Insufficient funds"


class CurrencyMismatch(DomainError):
    status = 422
    code = "currency_mismatch"
    title = "The accounts and the amount must be in the same currency"


class UnknownCurrency(DomainError):
    status = 422
    code = "unknown_currency"
    title = "Unknown currency"


class InvalidAmount(DomainError):
    status = 422
    code = "invalid_amount"
    title = "Invalid amount"


class InvalidReference(DomainError):
    status = 422
    code = "invalid_reference"
    title = "Invalid reference"


class ReasonRequired(DomainError):
    status = 422
    code = "reason_required"
    title = "A reason is required"


class AccountNotActive(DomainError):
    status = 422
    code = "account_not_active"
    title = "The account is blocked or closed"


class AccountNotEmpty(DomainError):
    status = 409
    code = "account_not_empty"
    title = "The account still holds money or has active holds"


class SameAccount(DomainError):
    status = 422
    code = "same_account"
    title = "Source and destination are the same account"


class PlatformAccountNotAllowed(DomainError):
    status = 422
    code = "platform_account_not_allowed"
    title = "This operation is not allowed on a platform account"


class NotACreditLine(DomainError):
    status = 422
    code = "not_a_credit_line"
    title = "The account is not a credit line"


class LimitPerTransferExceeded(DomainError):
    status = 422
    code = "limit_per_transfer_exceeded"
    title = "The amount exceeds the per-transfer limit"


class LimitDailyExceeded(DomainError):
    status = 422
    code = "limit_daily_exceeded"
    title = "The transfer would exceed the daily outgoing limit"


class LimitNotConfigured(DomainError):
    """Fail closed: a tier and currency without a configured limit cannot send money."""

    status = 422
    code = "limit_not_configured"
    title = "Transfers in this currency are not available for this account"


class VelocityExceeded(DomainError):
    status = 429
    code = "velocity_exceeded"
    title = "Too many transfers in a short time"


class TransferRefusedByRule(DomainError):
    status = 422
    code = "transfer_refused_by_rule"
    title = "The transfer was refused by a risk rule"


class InvalidHoldExpiry(DomainError):
    status = 422
    code = "invalid_hold_expiry"
    title = "The hold's expiry is in the past or too far ahead"


class HoldNotActive(DomainError):
    status = 409
    code = "hold_not_active"
    title = "The hold is already captured, voided or expired"


class HoldExpired(DomainError):
    status = 409
    code = "hold_expired"
    title = "The hold has expired"


class CaptureExceedsHold(DomainError):
    status = 422
    code = "capture_exceeds_hold"
    title = "The capture exceeds what remains of the hold"


class TransferNotReversible(DomainError):
    status = 422
    code = "transfer_not_reversible"
    title = "This transfer cannot be reversed"


class TransferAlreadyReversed(DomainError):
    status = 409
    code = "transfer_already_reversed"
    title = "The transfer has already been reversed in full"


class ReversalExceedsOriginal(DomainError):
    status = 422
    code = "reversal_exceeds_original"
    title = "The reversal exceeds what remains of the original transfer"


class ReviewCaseNotFound(DomainError):
    status = 404
    code = "review_case_not_found"
    title = "Review case not found"


class ReviewCaseAlreadyDecided(DomainError):
    status = 409
    code = "review_case_already_decided"
    title = "The review case has already been decided"


class SendingPausedAfterSecondFactorReset(DomainError):
    """For 24 hours after staff reset a lost second factor nothing leaves the customer (ADR 0015)."""

    status = 422
    code = "second_factor_recently_reset"
    title = "Payments are paused for 24 hours after your second factor was reset"


class ReviewApprovalNeedsSecondOfficer(DomainError):
    """Above the four-eyes amount an approval is a request a second officer approves (ADR 0015)."""

    status = 409
    code = "review_approval_needs_second_officer"
    title = "Approving this case needs a second officer: ask for approval instead"


class ReviewDecisionForbidden(DomainError):
    """Not a compliance officer with the decide permission, or the officer's own case."""

    status = 403
    code = "review_decision_forbidden"
    title = "You may not decide this review case"


class ReviewDecisionNotAllowed(DomainError):
    """Approving would move money a blocked customer may not move; only rejection is possible."""

    status = 409
    code = "review_decision_not_allowed"
    title = "This review case can only be rejected"


class LedgerInvariantViolation(RuntimeError):
    """Money would be created, destroyed or miscounted. A bug or a damaged database: never caught."""


class LockOutsideTransaction(RuntimeError):
    """A row lock taken outside a transaction is released at once and protects nothing."""


class AccountLimitReached(DomainError):
    status = 422
    code = "account_limit_reached"
    title = "No more accounts can be opened"
