"""The one path by which money moves: checked balance updates and balanced postings.

Every service that changes a balance calls `balance_apply` (holds) or
`transfer_post` (postings) on accounts it has already locked with
`ledger.lock_objects.accounts_lock`. Both check the money invariants
explicitly, with `raise`, because `python -O` strips asserts:

* postings of a transfer sum to zero before anything is inserted (the
  database checks it again at COMMIT, see migrations/0002);
* each balance changes with a single `UPDATE ... SET posted_minor =
  posted_minor + delta ... RETURNING`, never computed in Python and written
  back, and what the database returns must equal what the locked row plus the
  delta predicts; a difference means someone changed the row without the lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection

from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from fintech.free_text import free_text_check
from ledger.currencies import MAX_AMOUNT_MINOR, currency_exponent
from ledger.exceptions import (
    AccountNotActive,
    CurrencyMismatch,
    InsufficientFunds,
    InvalidAmount,
    InvalidReference,
    LedgerInvariantViolation,
    ReasonRequired,
)
from ledger.models import CLIENT_ID_MAX_LENGTH, REFERENCE_MAX_LENGTH, Hold, LedgerAccount, Posting, Transfer
from ledger.services.policy import hold_policy_release

# A literal, not an f-string: no identifier is ever interpolated into SQL.
_BALANCE_UPDATE_SQL = (
    "UPDATE ledger_ledgeraccount"
    " SET posted_minor = posted_minor + %s, held_minor = held_minor + %s, version = version + 1"
    " WHERE id = %s"
    " RETURNING posted_minor, held_minor, version"
)


def amount_check(amount_minor: Any) -> int:
    """A positive, bounded int; bools and floats are programming errors shown as invalid amounts."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise InvalidAmount("The amount must be a whole number of minor units.")
    if amount_minor <= 0:
        raise InvalidAmount("The amount must be greater than zero.")
    if amount_minor > MAX_AMOUNT_MINOR:
        raise InvalidAmount("The amount is too large.")
    return amount_minor


def currency_check(currency: Any) -> str:
    currency_exponent(currency)  # raises UnknownCurrency
    return currency


def reference_check(reference: Any, *, field: str = "reference") -> str:
    """Bounded, one line, and no card number (422 `reference_contains_card_number`): references are shown
    on statements and kept for years, outside the vault."""
    if not isinstance(reference, str) or len(reference) > REFERENCE_MAX_LENGTH:
        raise InvalidReference(f"The reference is text of at most {REFERENCE_MAX_LENGTH} characters.")
    if any(ord(char) < 32 for char in reference):
        raise InvalidReference("The reference must not contain control characters.")
    return free_text_check(reference, field=field)


def reason_check(reason: Any) -> str:
    """Operator reasons end up in references and the audit trail: required, bounded, one line, no card number."""
    if not isinstance(reason, str) or not reason.strip():
        raise ReasonRequired()
    return reference_check(reason.strip(), field="reason")


def client_id_check(client_id: Any) -> str:
    if not isinstance(client_id, str) or len(client_id) > CLIENT_ID_MAX_LENGTH:
        raise InvalidReference(f"The client id is text of at most {CLIENT_ID_MAX_LENGTH} characters.")
    return client_id


def same_currency_check(currency: str, *accounts: LedgerAccount) -> None:
    if any(account.currency != currency for account in accounts):
        raise CurrencyMismatch()


def active_check(*accounts: LedgerAccount, allow_blocked: bool = False) -> None:
    allowed = (
        {LedgerAccount.Status.ACTIVE, LedgerAccount.Status.BLOCKED} if allow_blocked else {LedgerAccount.Status.ACTIVE}
    )
    if any(account.status not in allowed for account in accounts):
        raise AccountNotActive()


def funds_check(account: LedgerAccount, *, posted_delta_minor: int, held_delta_minor: int) -> None:
    """Refuse a change that lowers a customer account's available balance below its credit limit.

    A change that does not lower the available balance (a credit, a capture
    of held money) always passes, even on an account already under its floor.
    """
    if account.is_platform:
        return
    available_delta = posted_delta_minor - held_delta_minor
    if available_delta >= 0:
        return
    if account.available_minor + available_delta < -account.credit_limit_minor:
        raise InsufficientFunds()


@dataclass(frozen=True, slots=True)
class BalanceAfter:
    posted_minor: int
    held_minor: int
    version: int


def balance_apply(account: LedgerAccount, *, posted_delta_minor: int, held_delta_minor: int = 0) -> BalanceAfter:
    """Apply a delta to a locked account in one UPDATE; check the result; refresh the instance."""
    if account.held_minor + held_delta_minor < 0:
        raise LedgerInvariantViolation(f"{account}: held would become negative")
    with connection.cursor() as cursor:
        cursor.execute(_BALANCE_UPDATE_SQL, [posted_delta_minor, held_delta_minor, account.pk])
        row = cursor.fetchone()
    if row is None:
        raise LedgerInvariantViolation(f"{account} vanished under its lock")
    after = BalanceAfter(posted_minor=row[0], held_minor=row[1], version=row[2])
    expected = BalanceAfter(
        posted_minor=account.posted_minor + posted_delta_minor,
        held_minor=account.held_minor + held_delta_minor,
        version=account.version + 1,
    )
    if after != expected:
        raise LedgerInvariantViolation(f"{account}: balance after update {after} != expected {expected}")
    account.posted_minor, account.held_minor, account.version = after.posted_minor, after.held_minor, after.version
    return after


@dataclass(frozen=True, slots=True)
class Leg:
    """One side of a transfer: a signed amount on a locked account, and what it does to the held balance."""

    account: LedgerAccount
    amount_minor: int
    held_delta_minor: int = 0


def transfer_post(*, legs: list[Leg], **transfer_fields: Any) -> Transfer:
    """Insert a transfer and its postings and move the balances: the caller holds every leg's lock.

    Funds are checked for every leg before anything is written, so a refusal
    leaves no trace even without a rollback.
    """
    currency = transfer_fields["currency"]
    amount_minor = transfer_fields["amount_minor"]
    if len(legs) < 2 or len({leg.account.pk for leg in legs}) != len(legs):
        raise LedgerInvariantViolation("a transfer needs at least two legs on distinct accounts")
    if sum(leg.amount_minor for leg in legs) != 0:
        raise LedgerInvariantViolation("postings of a transfer must sum to zero")
    if any(leg.amount_minor == 0 for leg in legs) or sum(leg.amount_minor for leg in legs if leg.amount_minor > 0) != (
        amount_minor
    ):
        raise LedgerInvariantViolation("the transfer amount must equal what its postings move")
    same_currency_check(currency, *(leg.account for leg in legs))
    for leg in legs:
        funds_check(leg.account, posted_delta_minor=leg.amount_minor, held_delta_minor=leg.held_delta_minor)

    transfer = Transfer.objects.create(**transfer_fields)
    postings = []
    for leg in sorted(legs, key=lambda leg: leg.account.pk):
        after = balance_apply(leg.account, posted_delta_minor=leg.amount_minor, held_delta_minor=leg.held_delta_minor)
        postings.append(
            Posting(
                transfer=transfer,
                account=leg.account,
                amount_minor=leg.amount_minor,
                currency=currency,
                balance_after_minor=after.posted_minor,
                account_version=after.version,
            )
        )
    Posting.objects.bulk_create(postings)
    transfer.posting_list = postings  # what was just written, for audit payloads without another query
    return transfer


def hold_release(hold: Hold, account: LedgerAccount, *, status: str) -> None:
    """Give back what remains of a locked hold: the held balance, and the payer's spend counter of its day."""
    balance_apply(account, posted_delta_minor=0, held_delta_minor=-hold.remaining_minor)
    hold_policy_release(
        sender_id=account.owner_id, currency=hold.currency, amount_minor=hold.remaining_minor, limit_day=hold.limit_day
    )
    Hold.objects.filter(pk=hold.pk).update(status=status)
    hold.status = status
    hold.account = account


def audit_record(
    *, event_type: str, actor: Actor, object_type: str, object_id: Any, payload: dict, request=None
) -> None:
    """The ledger's audit events: written on the caller's connection, committed with the change.

    `request`, when a staff page acts, gives the event its address and user agent (trusted proxies only).
    """
    audit_event_record(
        event_type=event_type,
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=actor,
        object_type=object_type,
        object_id=str(object_id),
        payload=payload,
        request=request,
    )


def transfer_payload(transfer: Transfer) -> dict:
    """What the trail keeps about a transfer: enough to rebuild it, nothing about the people."""
    return {
        "transfer": str(transfer.public_id),
        "kind": transfer.kind,
        "amount_minor": transfer.amount_minor,
        "currency": transfer.currency,
        "reference": transfer.reference,
        "postings": [
            {"account": str(posting.account.public_id), "amount_minor": posting.amount_minor}
            for posting in getattr(transfer, "posting_list", [])
        ],
        "flagged_for_review": transfer.flagged_for_review,
        "review_reasons": list(transfer.review_reasons),
    }
