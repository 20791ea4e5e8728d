"""Transfer limits and risk rules: what a customer may send, decided from data, not code.

Both run inside the transfer's transaction while it holds the owner spend
lock (`ledger.lock_objects.owner_spend_lock`), so "today's outgoing total" and
"transfers in the last minute" include every earlier transfer of that owner,
committed just before the lock was granted. This needs READ COMMITTED (the
PostgreSQL default, which this project uses): each statement reads a fresh
snapshot, taken after the lock was granted.

What counts as outgoing: debits of kind `transfer` on any of the owner's
accounts in the transfer's currency (rules with a blank currency: in any
currency). Reversals do not give the limit back (conservative: reversing a
transfer must not let the same money out twice in a day). Deposits, hold
captures and credit charges are not customer transfers.

The queries are hand-written SQL on purpose: they run on every transfer while
the owner lock is held, and one round trip that reads the customer, the limit
and today's total costs a fraction of three ORM queries. The LATERAL form
starts from the owner's few accounts and walks the (account, created_at)
index, so the cost follows the owner's postings in the window, not the size
of the ledger, whatever the planner's statistics say (without statistics it
otherwise picks a plan that scans every transfer). They are literals; nothing
is ever interpolated into them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection

from ledger.currencies import format_amount
from ledger.exceptions import (
    AccountNotActive,
    LimitDailyExceeded,
    LimitNotConfigured,
    LimitPerTransferExceeded,
    TransferRefusedByRule,
    VelocityExceeded,
)
from ledger.models import TransferRule

MAX_ACTIVE_RULES = 100  # rules are evaluated on every transfer: keep the set small

# Sender's profile, receiver's profile status (NULL if no profile), the limit for the sender's tier
# (NULLs if none), and what the sender already sent today.
_CUSTOMER_LIMIT_SQL = """
SELECT sender.status,
       (SELECT receiver.status FROM accounts_customerprofile receiver WHERE receiver.user_id = %(receiver)s),
       l.per_transfer_max_minor,
       l.daily_outgoing_max_minor,
       (SELECT coalesce(-sum(p.amount_minor), 0)::bigint
          FROM ledger_ledgeraccount a
         CROSS JOIN LATERAL (
               SELECT p.amount_minor, p.transfer_id FROM ledger_posting p
                WHERE p.account_id = a.id AND p.created_at >= %(day_start)s AND p.amount_minor < 0) p
          JOIN ledger_transfer t ON t.id = p.transfer_id AND t.kind = 'transfer'
         WHERE a.owner_id = %(sender)s AND a.currency = %(currency)s)
  FROM accounts_customerprofile sender
  LEFT JOIN ledger_transferlimit l ON l.tier = sender.tier AND l.currency = %(currency)s
 WHERE sender.user_id = %(sender)s
"""
_ACTIVE_RULES_SQL = """
SELECT name, kind, currency, threshold_minor, max_count, window_minutes, action
  FROM ledger_transferrule WHERE active ORDER BY id LIMIT %s
"""
_RECENT_OUTGOING_COUNT_SQL = """
SELECT count(*)
  FROM ledger_ledgeraccount a
 CROSS JOIN LATERAL (
       SELECT p.transfer_id FROM ledger_posting p
        WHERE p.account_id = a.id AND p.created_at >= %(since)s AND p.amount_minor < 0) p
  JOIN ledger_transfer t ON t.id = p.transfer_id AND t.kind = 'transfer'
 WHERE a.owner_id = %(sender)s AND (%(currency)s = '' OR a.currency = %(currency)s)
"""


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    flagged: bool
    reasons: list[str]


def utc_day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def customer_limits_check(
    *, sender_id: int, receiver_id: int | None, currency: str, amount_minor: int, now: datetime
) -> None:
    """The sender is an active customer and within the per-transfer and UTC-day limits of their tier.

    A receiving customer must be active too (a receiver without a customer
    profile, such as a platform account, is not refused here).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _CUSTOMER_LIMIT_SQL,
            {"sender": sender_id, "receiver": receiver_id, "currency": currency, "day_start": utc_day_start(now)},
        )
        row = cursor.fetchone()
    if row is None:
        raise AccountNotActive("Only customers can send transfers.")
    sender_status, receiver_status, per_transfer_max_minor, daily_outgoing_max_minor, sent_today = row
    if sender_status != "active" or receiver_status not in (None, "active"):
        raise AccountNotActive()
    if per_transfer_max_minor is None:
        raise LimitNotConfigured()
    if amount_minor > per_transfer_max_minor:
        raise LimitPerTransferExceeded(
            f"The most you can send in one transfer is {format_amount(per_transfer_max_minor, currency)} {currency}.",
            extra={"limit_minor": per_transfer_max_minor, "currency": currency},
        )
    if sent_today + amount_minor > daily_outgoing_max_minor:
        remaining = max(daily_outgoing_max_minor - sent_today, 0)
        raise LimitDailyExceeded(
            f"You can send {format_amount(remaining, currency)} {currency} more today (UTC).",
            extra={"limit_minor": daily_outgoing_max_minor, "remaining_minor": remaining, "currency": currency},
        )


def rules_evaluate(*, sender_id: int, currency: str, amount_minor: int, now: datetime) -> RuleOutcome:
    """Every active rule in id order; the first `refuse` hit raises, `flag` hits are collected."""
    reasons: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE_RULES_SQL, [MAX_ACTIVE_RULES])
        rules = cursor.fetchall()
    for name, kind, rule_currency, threshold_minor, max_count, window_minutes, action in rules:
        if rule_currency and rule_currency != currency:
            continue
        if kind == TransferRule.Kind.REVIEW_THRESHOLD:
            hit = amount_minor >= threshold_minor
        elif kind == TransferRule.Kind.VELOCITY:
            with connection.cursor() as cursor:
                cursor.execute(
                    _RECENT_OUTGOING_COUNT_SQL,
                    {"sender": sender_id, "since": now - timedelta(minutes=window_minutes), "currency": rule_currency},
                )
                recent = cursor.fetchone()[0]
            hit = recent >= max_count  # this transfer would be one more than allowed
        else:  # pragma: no cover - the database refuses other kinds
            continue
        if not hit:
            continue
        if action == TransferRule.Action.FLAG:
            reasons.append(name)
        elif kind == TransferRule.Kind.VELOCITY:
            raise VelocityExceeded(
                f"At most {max_count} transfers in {window_minutes} minute(s).",
                headers={"Retry-After": str(window_minutes * 60)},
            )
        else:
            raise TransferRefusedByRule()
    return RuleOutcome(flagged=bool(reasons), reasons=reasons)
