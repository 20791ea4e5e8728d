"""Money entering customer accounts from the platform: deposits from funding, charges on credit lines.

Both move money between a customer account and a platform account of the
same currency, created on first use before any lock is taken. Platform
accounts have no floor: the funding account goes negative by exactly what the
platform has paid in, so the whole ledger still sums to zero.

A deposit is platform-initiated (a named staff action) and skips the policy
step; a credit charge is the customer's outgoing movement and passes it.

Services open `transaction.atomic()`, not a durable one: the HTTP layer wraps
them in its own durable transaction with the idempotency record.
"""

from __future__ import annotations

import uuid

from django.db import transaction

from accounts.models import User
from audit.services.events import Actor
from ledger import notifications
from ledger.exceptions import NotACreditLine, PlatformAccountNotAllowed
from ledger.lock_objects import accounts_lock
from ledger.models import Hold, LedgerAccount, ReviewCase, Transfer
from ledger.services.accounts import platform_account_get_or_create
from ledger.services.core import (
    accounts_refresh,
    active_check,
    amount_check,
    client_id_check,
    currency_check,
    funds_check,
    hold_open,
    ledger_event,
    movement_post,
    reason_check,
    reference_check,
    same_currency_check,
)
from ledger.services.policy import (
    Movement,
    PolicyDecision,
    movement_policy_check,
    movement_policy_count,
)
from ledger.services.reviews import review_case_open, review_case_opened
from ledger.services.transfers import PendingMovement


def deposit_from_funding(
    *, account: LedgerAccount, amount_minor: int, reason: str, actor: Actor, initiated_by: User | None = None
) -> Transfer:
    """Credit a customer account from the platform funding account of its currency; a reason is required.

    `initiated_by` is the operator who asked for it: their deposits of the day
    are what the four-eyes daily total counts (ledger.services.four_eyes).

    Errors: reason_required, platform_account_not_allowed, account_not_active, invalid_amount.
    """
    amount_check(amount_minor)
    reason = reason_check(reason)
    if account.is_platform:
        raise PlatformAccountNotAllowed()
    active_check(account)
    with transaction.atomic():
        funding = platform_account_get_or_create(
            purpose=LedgerAccount.Purpose.FUNDING, currency=account.currency, actor=actor
        )
        locked = accounts_lock([account.pk, funding.pk])
        destination, source = locked[account.pk], locked[funding.pk]
        active_check(destination, source)
        transfer = movement_post(
            kind=Transfer.Kind.DEPOSIT,
            debit=source,
            credit=destination,
            currency=account.currency,
            amount_minor=amount_minor,
            reference=reason,
            initiated_by_id=getattr(initiated_by, "pk", None),
            event=ledger_event(event_type="ledger.deposit.posted", actor=actor, payload={"reason": reason}),
        )
        notifications.transfer_posted(transfer)
    return transfer


def credit_charge(
    *,
    account: LedgerAccount,
    amount_minor: int,
    currency: str,
    reference: str,
    initiated_by: User | None = None,
    client_id: str = "",
    actor: Actor,
) -> Transfer | PendingMovement:
    """Charge a credit-line account, up to its available credit, to the platform settlement account.

    Passes the policy step as the customer's outgoing movement. A
    `hold_for_review` hit reserves the amount on the credit line and posts
    nothing until a compliance officer approves (a `PendingMovement`).

    Errors: not_a_credit_line, currency_mismatch, account_not_active,
    insufficient_funds, invalid_amount, unknown_currency, invalid_reference,
    and the policy step's.
    """
    amount_check(amount_minor)
    currency_check(currency)
    reference_check(reference)
    client_id_check(client_id)
    if account.kind != LedgerAccount.Kind.CREDIT_LINE:
        raise NotACreditLine()
    same_currency_check(currency, account)
    active_check(account)
    with transaction.atomic():
        settlement = platform_account_get_or_create(
            purpose=LedgerAccount.Purpose.SETTLEMENT, currency=currency, actor=actor
        )
        locked = accounts_lock([account.pk, settlement.pk])
        source, destination = locked[account.pk], locked[settlement.pk]
        active_check(source, destination)
        decision = movement_policy_check(
            movement=Movement.CREDIT_CHARGE,
            sender_id=source.owner_id,
            receiver_id=None,
            currency=currency,
            amount_minor=amount_minor,
        )
        if decision.action == "hold_for_review":
            return held_for_review(
                source=source,
                destination=destination,
                kind=Transfer.Kind.CREDIT_CHARGE,
                reference=reference,
                initiated_by=initiated_by,
                client_id=client_id,
                decision=decision,
                actor=actor,
            )
        transfer = movement_post(
            kind=Transfer.Kind.CREDIT_CHARGE,
            debit=source,
            credit=destination,
            currency=currency,
            amount_minor=amount_minor,
            reference=reference,
            initiated_by_id=getattr(initiated_by, "pk", None),
            client_id=client_id,
            flagged_for_review=decision.flagged,
            review_reasons=list(decision.reasons),
            limit_day=decision.limit_day,
            event=ledger_event(event_type="ledger.credit_charge.posted", actor=actor),
        )
        movement_policy_count(decision)
        if decision.flagged:
            review_case_open(
                transfer=transfer, blocking=False, reasons=decision.reasons, subject_id=source.owner_id, actor=actor
            )
        notifications.transfer_posted(transfer)
    return transfer


def held_for_review(
    *,
    source: LedgerAccount,
    destination: LedgerAccount,
    kind: str,
    reference: str,
    initiated_by: User | None,
    client_id: str,
    decision: PolicyDecision,
    actor: Actor,
) -> PendingMovement:
    """Reserve a movement a `hold_for_review` rule caught: held money, a review hold, a blocking case.

    The Python twin of the branch in ledger/sql/transfer_create.sql; a parity
    test pins their rows and audit payloads together. The amount is the one
    the decision was made for.
    """
    amount_minor = decision.amount_minor
    funds_check(source, posted_delta_minor=0, held_delta_minor=amount_minor)
    public_id = uuid.uuid4()
    opened = hold_open(
        account=source,
        destination=destination,
        hold={
            "currency": source.currency,
            "amount_minor": amount_minor,
            "purpose": Hold.Purpose.REVIEW,
            "expires_at": None,
            "reference": reference,
            "created_by_id": getattr(initiated_by, "pk", None),
            "client_id": client_id,
            "limit_day": decision.limit_day,
            "movement_kind": kind,
            "transfer_public_id": public_id,
        },
        review_required=True,
        event=ledger_event(
            event_type=f"ledger.{kind}.held_for_review",
            actor=actor,
            payload={"review_reasons": list(decision.reasons)},
        ),
    )
    accounts_refresh(opened, source)
    hold = Hold.objects.get(pk=opened["id"])
    movement_policy_count(decision)
    review_case_opened(ReviewCase.objects.get(pk=opened["review_case_id"]), actor=actor)  # the function opened it
    return PendingMovement(
        public_id=public_id,
        kind=kind,
        amount_minor=amount_minor,
        currency=source.currency,
        from_account=source.public_id,
        to_account=destination.public_id,
        reference=reference,
        created_at=hold.created_at,
    )
