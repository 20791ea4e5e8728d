"""Money entering customer accounts from the platform: deposits from funding, charges on credit lines.

Both move money between a customer account and a platform account of the
same currency, created on first use before any lock is taken. Platform
accounts have no floor: the funding account goes negative by exactly what the
platform has paid in, so the whole ledger still sums to zero.

Services open `transaction.atomic()`, not a durable one: the HTTP layer wraps
them in its own durable transaction with the idempotency record.
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from audit.services.events import Actor
from ledger import notifications
from ledger.exceptions import NotACreditLine, PlatformAccountNotAllowed
from ledger.lock_objects import accounts_lock
from ledger.models import LedgerAccount, Transfer
from ledger.services.accounts import platform_account_get_or_create
from ledger.services.core import (
    Leg,
    active_check,
    amount_check,
    audit_record,
    client_id_check,
    currency_check,
    reason_check,
    reference_check,
    same_currency_check,
    transfer_payload,
    transfer_post,
)


def deposit_from_funding(*, account: LedgerAccount, amount_minor: int, reason: str, actor: Actor) -> Transfer:
    """Credit a customer account from the platform funding account of its currency; a reason is required.

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
        transfer = transfer_post(
            legs=[Leg(source, -amount_minor), Leg(destination, amount_minor)],
            kind=Transfer.Kind.DEPOSIT,
            currency=account.currency,
            amount_minor=amount_minor,
            reference=reason,
        )
        audit_record(
            event_type="ledger.deposit.posted",
            actor=actor,
            object_type="ledger.transfer",
            object_id=transfer.public_id,
            payload={**transfer_payload(transfer), "reason": reason},
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
) -> Transfer:
    """Charge a credit-line account, up to its available credit, to the platform settlement account.

    Errors: not_a_credit_line, currency_mismatch, account_not_active,
    insufficient_funds, invalid_amount, unknown_currency, invalid_reference.
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
        transfer = transfer_post(
            legs=[Leg(source, -amount_minor), Leg(destination, amount_minor)],
            kind=Transfer.Kind.CREDIT_CHARGE,
            currency=currency,
            amount_minor=amount_minor,
            reference=reference,
            initiated_by=initiated_by,
            client_id=client_id,
        )
        audit_record(
            event_type="ledger.credit_charge.posted",
            actor=actor,
            object_type="ledger.transfer",
            object_id=transfer.public_id,
            payload=transfer_payload(transfer),
        )
        notifications.transfer_posted(transfer)
    return transfer
