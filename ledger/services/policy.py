"""Transfer limits and risk rules: what a customer may send, decided from data, not code.

The checks run inside `ledger_transfer_create` (ledger/migrations/0005), in
the transfer's transaction while it holds the owner spend lock, so "today's
outgoing total" and "transfers in the last minute" include every earlier
transfer of that owner, committed just before the lock was granted. This
needs READ COMMITTED (the PostgreSQL default, which this project uses) and a
VOLATILE function: each statement reads a fresh snapshot, taken after the
lock was granted.

What counts as outgoing: debits of kind `transfer` on any of the owner's
accounts in the transfer's currency (rules with a blank currency: in any
currency). Reversals do not give the limit back (conservative: reversing a
transfer must not let the same money out twice in a day). Deposits, hold
captures and credit charges are not customer transfers.

The limit query starts from the owner's few accounts and walks the
(account, created_at) index (LATERAL), so its cost follows the owner's
postings in the window, not the size of the ledger. Rules are evaluated in id
order, at most 100 of them (the function's LIMIT: rules run on every
transfer, keep the set small): the first `refuse` hit refuses,
`flag` hits are collected as review reasons.

The database returns a refusal as its stable code plus the numbers its
message needs; `refusal_error` turns that into the domain error the Python
pipeline raised before, with the same code, status, message and extras.
"""

from __future__ import annotations

from fintech.problems import DomainError
from ledger.currencies import format_amount
from ledger.exceptions import (
    AccountNotActive,
    AccountNotFound,
    CurrencyMismatch,
    InsufficientFunds,
    LimitDailyExceeded,
    LimitNotConfigured,
    LimitPerTransferExceeded,
    SameAccount,
    TransferRefusedByRule,
    VelocityExceeded,
)

_PLAIN_REFUSALS: dict[str, type[DomainError]] = {
    "account_not_found": AccountNotFound,
    "same_account": SameAccount,
    "currency_mismatch": CurrencyMismatch,
    "account_not_active": AccountNotActive,
    "limit_not_configured": LimitNotConfigured,
    "transfer_refused_by_rule": TransferRefusedByRule,
    "insufficient_funds": InsufficientFunds,
}


def refusal_error(code: str, data: dict, *, currency: str) -> DomainError:
    """The domain error for a refusal code returned by `ledger_transfer_create`."""
    if code in _PLAIN_REFUSALS:
        return _PLAIN_REFUSALS[code]()
    if code == "sender_not_a_customer":
        return AccountNotActive("Only customers can send transfers.")
    if code == "limit_per_transfer_exceeded":
        limit = data["limit_minor"]
        return LimitPerTransferExceeded(
            f"The most you can send in one transfer is {format_amount(limit, currency)} {currency}.",
            extra={"limit_minor": limit, "currency": currency},
        )
    if code == "limit_daily_exceeded":
        limit, remaining = data["limit_minor"], data["remaining_minor"]
        return LimitDailyExceeded(
            f"You can send {format_amount(remaining, currency)} {currency} more today (UTC).",
            extra={"limit_minor": limit, "remaining_minor": remaining, "currency": currency},
        )
    if code == "velocity_exceeded":
        max_count, window_minutes = data["max_count"], data["window_minutes"]
        return VelocityExceeded(
            f"At most {max_count} transfers in {window_minutes} minute(s).",
            headers={"Retry-After": str(window_minutes * 60)},
        )
    raise RuntimeError(f"ledger_transfer_create returned an unknown refusal {code!r}")
