"""The one path by which money moves: the ledger's database functions, called with their audit event.

The runtime role cannot write the money tables (ADR 0016); every service
that changes a balance calls `movement_post` (postings), `hold_release` or
`ledger_call` (holds, accounts) on accounts it has already locked with
`ledger.lock_objects.accounts_lock`. The functions in ledger/sql/movements.sql
check each movement's shape, funds and states again, update each balance with
one `UPDATE ... RETURNING` compared with what the lock predicts, and write the
audit event whose money fields they build from the rows, in the same statement.
The checks here run first so that what a customer did wrong is a clear error
that left nothing behind; the database's are what a stolen login cannot skip.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, connection

from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record, audit_event_row
from fintech.free_text import free_text_check
from ledger.authorization import (
    HOLD_MAC_FIELDS,
    authorization_mac,
    case_decision_authorized,
    hold_authorization_mac,
    hold_authorized,
)
from ledger.currencies import MAX_AMOUNT_MINOR, currency_exponent, format_amount
from ledger.exceptions import (
    AccountNotActive,
    CurrencyMismatch,
    InsufficientFunds,
    InvalidAmount,
    InvalidReference,
    LedgerInvariantViolation,
    ReasonRequired,
)
from ledger.models import (
    CLIENT_ID_MAX_LENGTH,
    REFERENCE_MAX_LENGTH,
    Hold,
    LedgerAccount,
    Posting,
    ReviewCase,
    Transfer,
)
from ledger.services.policy import hold_policy_release, limit_time_zone


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


def ledger_event(*, event_type: str, actor: Actor, payload: dict | None = None, request=None, **fields) -> dict:
    """The audit event a ledger function writes with its change (p_event in ledger/sql/movements.sql).

    Masked like every event (`audit_event_row`); the function adds the money fields from the rows it wrote.
    """
    row = audit_event_row(
        event_type=event_type,
        outcome=AuditEvent.Outcome.SUCCESS,
        actor=actor,
        object_type="",
        object_id="",
        purpose="",
        payload=payload,
        request=request,
    )
    keys = ("event_type", "actor_user", "actor_client", "actor_staff", "request_id", "source_ip", "user_agent")
    return {**{key: row[key] for key in keys}, "payload": row["payload"], **fields}


def ledger_call(function: str, *params: Any) -> Any:
    """One call of a ledger function (ledger/sql/movements.sql); documents go as jsonb, bound, never inlined.

    A refusal by the database (SQLSTATE LG002) means a caller got past the checks above it: a bug, shown
    loudly as a broken invariant, never as a customer error.
    """
    if function not in _LEDGER_FUNCTIONS:
        raise ValueError(f"not a ledger entry point: {function}")
    placeholders = ", ".join("%s::jsonb" if isinstance(param, dict) else "%s" for param in params)
    values = [json.dumps(param, cls=DjangoJSONEncoder) if isinstance(param, dict) else param for param in params]
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}({placeholders})", values)  # the name is from _LEDGER_FUNCTIONS
            result = cursor.fetchone()[0]
    except DatabaseError as error:
        if getattr(getattr(error, "__cause__", None), "sqlstate", None) == "LG002":
            raise LedgerInvariantViolation(str(error.__cause__)) from error
        raise
    if isinstance(result, str) and function in _RETURNING_JSONB:
        return json.loads(result)  # Django hands a bare jsonb value back as text
    return result


_RETURNING_JSONB = frozenset({"ledger_movement_post", "ledger_hold_open", "ledger_hold_release"})
_LEDGER_FUNCTIONS = frozenset(
    {"ledger_movement_post", "ledger_hold_open", "ledger_hold_release", "ledger_account_open",
     "ledger_account_status_set"}
)  # fmt: skip


def accounts_refresh(result: dict, *accounts: LedgerAccount) -> None:
    """Give the locked instances the balances the function wrote (it returns them: no extra query)."""
    for account in accounts:
        after = result["accounts"].get(str(account.pk)) if "accounts" in result else result
        if after is not None:
            account.posted_minor, account.held_minor = after["posted_minor"], after["held_minor"]
            account.version = after["version"]


def hold_open(
    *, account: LedgerAccount, destination: LedgerAccount, hold: dict, review_required: bool, event: dict
) -> dict:
    """`ledger_hold_open` for a hold on `account` towards `destination` (both locked), with the hold's public id
    and the application's authorization MAC over it (ledger/authorization.py). `review_required`: what the
    policy step decided (a review hold, or a `hold_for_review` hit); the function sets it from its own step,
    and a disagreement fails the MAC at capture."""
    public_id = uuid.uuid4()
    mac = hold_authorization_mac(
        public_id=public_id,
        account=account.public_id,
        destination=destination.public_id,
        review_required=review_required,
        **{field: hold[field] for field in HOLD_MAC_FIELDS},
    )
    document = {**hold, "public_id": public_id, "account_id": account.pk, "destination_id": destination.pk,
                "authorization_mac": mac, "time_zone": limit_time_zone()}  # fmt: skip
    return ledger_call("ledger_hold_open", document, event)


def hold_authorization_check(hold: Hold, *, debit: LedgerAccount, credit: LedgerAccount) -> None:
    """Before money leaves a hold: the hold is the application's, and, when it needs a review, so is the approval
    of its own case, for this amount and this payer.

    A hold or a case decision written with the database login alone, a case
    deleted, re-kinded or re-pointed at another hold fails here, loudly (an
    invariant, not a customer error), and nothing moves.
    """
    if not hold_authorized(hold, account=debit.public_id, destination=credit.public_id):
        raise LedgerInvariantViolation(f"hold {hold.public_id} carries no authorization MAC of the application's")
    if not hold.review_required:
        return
    case = ReviewCase.objects.filter(hold_id=hold.pk).first()
    if case is None or case.status != ReviewCase.Status.APPROVED or not case_decision_authorized(case):
        raise LedgerInvariantViolation(f"hold {hold.public_id} needs its review case approved by an officer")
    if (case.amount_minor, case.currency, case.subject_id) != (hold.amount_minor, hold.currency, debit.owner_id):
        raise LedgerInvariantViolation(f"review case {case.public_id} was decided about another movement")


def movement_post(
    *,
    kind: str,
    debit: LedgerAccount,
    credit: LedgerAccount,
    amount_minor: int,
    currency: str,
    event: dict,
    hold: Hold | None = None,
    reverses: Transfer | None = None,
    **transfer_fields: Any,
) -> Transfer:
    """Post a two-sided movement through `ledger_movement_post`, with its audit event; the caller holds the locks.

    The checks the customer sees (funds, currency) come first, so a refusal is a
    domain error and leaves no trace; the function checks them all again.
    """
    if debit.pk == credit.pk:
        raise LedgerInvariantViolation("a movement needs two distinct accounts")
    same_currency_check(currency, debit, credit)
    if hold is not None:
        hold_authorization_check(hold, debit=debit, credit=credit)
    held_delta = -amount_minor if hold is not None else 0
    funds_check(debit, posted_delta_minor=-amount_minor, held_delta_minor=held_delta)
    transfer_fields.setdefault("public_id", uuid.uuid4())
    movement = {
        "kind": kind,
        "currency": currency,
        "amount_minor": amount_minor,
        "debit_account_id": debit.pk,
        "credit_account_id": credit.pk,
        "hold_id": getattr(hold, "pk", None),
        "reverses_id": getattr(reverses, "pk", None),
        **transfer_fields,
    }
    movement["authorization_mac"] = authorization_mac(
        public_id=transfer_fields["public_id"],
        kind=kind,
        currency=currency,
        amount_minor=amount_minor,
        debit_account=debit.public_id,
        credit_account=credit.public_id,
        initiated_by_id=transfer_fields.get("initiated_by_id"),
        client_id=transfer_fields.get("client_id", ""),
        reference=transfer_fields.get("reference", ""),
        hold_id=movement["hold_id"],
        reverses_id=movement["reverses_id"],
    )
    movement["amount_text"] = format_amount(amount_minor, currency)  # what the notification rows say
    movement["time_zone"] = limit_time_zone()  # the function runs the policy step again, on the same day
    result = ledger_call("ledger_movement_post", movement, event)
    accounts_refresh(result, debit, credit)
    transfer = Transfer.objects.get(pk=result["id"])
    transfer.hold, transfer.reverses = hold, reverses
    # The function wrote the notification rows with the movement; `notifications.transfer_posted` only delivers.
    transfer.outbox_message_ids = list(result["outbox_ids"])
    transfer.posting_list = [
        Posting(transfer=transfer, account=account, amount_minor=delta, currency=currency,
                balance_after_minor=account.posted_minor, account_version=account.version)
        for account, delta in sorted([(debit, -amount_minor), (credit, amount_minor)], key=lambda side: side[0].pk)
    ]  # fmt: skip
    return transfer


def hold_release(hold: Hold, account: LedgerAccount, *, status: str, event: dict) -> None:
    """Give back what remains of a locked hold: the held balance (with its audit event), and the payer's spend
    counter of its day."""
    result = ledger_call("ledger_hold_release", hold.pk, status, event)
    accounts_refresh(result, account)
    hold_policy_release(
        sender_id=account.owner_id, currency=hold.currency, amount_minor=hold.remaining_minor, limit_day=hold.limit_day
    )
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
