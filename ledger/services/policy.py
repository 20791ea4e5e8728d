"""The policy step: one decision for every way money leaves a customer (ADR 0014).

The rules live once, in SQL (`ledger/sql/policy.sql`): `ledger_transfer_create`
calls them inside its one round trip; holds, captures, credit charges and
refunds call them through `movement_policy_check` / `movement_policy_count`
below, on the same connection and under the same account locks. Every path
therefore refuses with the same codes: account_not_active (sender or
receiver blocked or closed), limit_not_configured, limit_per_transfer_exceeded,
limit_daily_exceeded (with `resets_at`), velocity_exceeded,
transfer_refused_by_rule.

Counters instead of scans: the daily limit reads one `SpendCounter` row (per
owner, currency and business day in LEDGER_LIMIT_TIME_ZONE), locked until
COMMIT, so N racing movements can never send a cent more than the limit;
velocity sums at most one `VelocityBucket` per minute of its window. Both are
written in the movement's own transaction (`movement_policy_count`).

Platform-initiated movements skip the step by name: staff deposits
(`deposit_from_funding`) and hold expiry (`holds_expire`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from fintech.json_documents import json_column
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
    SendingPausedAfterSecondFactorReset,
    TransferRefusedByRule,
    VelocityExceeded,
)
from ledger.models import RULE_WINDOW_MAX_MINUTES, VelocityBucket

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
    if code == "second_factor_recently_reset":
        return SendingPausedAfterSecondFactorReset(
            f"Your second factor was reset: payments resume at {data['resets_at']}.",
            extra={"resets_at": data["resets_at"]},
        )
    if code == "limit_per_transfer_exceeded":
        limit = data["limit_minor"]
        return LimitPerTransferExceeded(
            f"The most you can send in one transfer is {format_amount(limit, currency)} {currency}.",
            extra={"limit": format_amount(limit, currency), "limit_minor": limit, "currency": currency},
        )
    if code == "limit_daily_exceeded":
        limit, remaining, resets_at = data["limit_minor"], data["remaining_minor"], data["resets_at"]
        return LimitDailyExceeded(
            f"You can send {format_amount(remaining, currency)} {currency} more until {resets_at}.",
            extra={
                "limit": format_amount(limit, currency),
                "remaining": format_amount(remaining, currency),
                "limit_minor": limit,
                "remaining_minor": remaining,
                "currency": currency,
                "resets_at": resets_at,
            },
        )
    if code == "velocity_exceeded":
        max_count, window_minutes = data["max_count"], data["window_minutes"]
        return VelocityExceeded(
            f"At most {max_count} movements in {window_minutes} minute(s).",
            headers={"Retry-After": str(data["retry_after_seconds"])},
        )
    raise RuntimeError(f"the policy step returned an unknown refusal {code!r}")


class Movement:
    """The kinds of outgoing movement the policy step knows (`ledger_policy_check`'s p_movement)."""

    TRANSFER = "transfer"
    HOLD = "hold"
    CAPTURE = "capture"
    CREDIT_CHARGE = "credit_charge"
    REFUND = "refund"


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """What the policy step allows for one movement: `post`, `flag` (post, open a case) or `hold_for_review`.

    It names the movement it decided (sender, currency, amount), so counting it
    cannot count something else; `limit_day` is None for a capture, which its
    hold counted already.
    """

    action: str
    reasons: list[str]
    limit_day: date | None
    sender_id: int
    currency: str
    amount_minor: int

    @property
    def flagged(self) -> bool:
        return bool(self.reasons)


def limit_time_zone() -> str:
    return settings.LEDGER_LIMIT_TIME_ZONE


def movement_policy_check(
    *, movement: str, sender_id: int | None, receiver_id: int | None, currency: str, amount_minor: int
) -> PolicyDecision:
    """Run the policy step for a movement whose accounts the caller has locked; raise its refusal.

    Locks the sender's spend counter row of the business day until COMMIT.
    Call inside a transaction with a savepoint (a refusal raised here marks
    the block for rollback) and follow it with `movement_policy_count` once
    funds are checked.
    """
    if sender_id is None:
        raise refusal_error("sender_not_a_customer", {}, currency=currency)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r_refusal, r_refusal_data, r_action, r_reasons, r_limit_day"
            " FROM ledger_policy_check(%s, %s, %s, %s, %s, %s, %s)",
            [movement, sender_id, receiver_id, currency, amount_minor, timezone.now(), limit_time_zone()],
        )
        refusal, refusal_data, action, reasons, limit_day = cursor.fetchone()
    if refusal is not None:
        raise refusal_error(refusal, json_column(refusal_data) or {}, currency=currency)
    return PolicyDecision(
        action=action,
        reasons=list(json_column(reasons) or []),
        limit_day=limit_day,
        sender_id=sender_id,
        currency=currency,
        amount_minor=amount_minor,
    )


def movement_policy_count(decision: PolicyDecision) -> None:
    """Count a movement once it is written: the day's spend counter and the minute's velocity bucket.

    Called after the movement's own writes, in its transaction: if anything
    after the check refused (funds), the transaction rolls back and nothing
    was counted; the counter row is locked since the check either way.
    """
    if decision.limit_day is None:
        return  # a capture: its hold counted when it reserved the money
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ledger_policy_count(%s, %s, %s, %s, %s)",
            [decision.sender_id, decision.currency, decision.amount_minor, decision.limit_day, timezone.now()],
        )


def hold_policy_release(*, sender_id: int | None, currency: str, amount_minor: int, limit_day: date | None) -> None:
    """Give back what a released hold did not capture, on the day it was reserved."""
    if sender_id is None or limit_day is None or amount_minor == 0:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT ledger_policy_release(%s, %s, %s, %s)", [sender_id, currency, amount_minor, limit_day])


def velocity_buckets_prune(*, now: datetime) -> int:
    """Delete buckets no rule window can reach any more (older than RULE_WINDOW_MAX_MINUTES); how many."""
    deleted, _ = VelocityBucket.objects.filter(minute__lt=now - timedelta(minutes=RULE_WINDOW_MAX_MINUTES + 1)).delete()
    return deleted
