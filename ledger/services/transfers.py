"""Customer transfers: validate, apply limits, apply rules, then move the money under locks.

The pipeline, in this order, so the cheapest refusal comes first and account
row locks are held for the shortest time:

1. validate the request (amount, currency, same account, ownership, status);
2. take the owner spend lock, then check the customers (active) and the
   limits of the sender's tier (per transfer, per UTC day);
3. evaluate risk rules (threshold: flag; velocity: refuse);
4. lock both accounts by primary key, re-check status and funds (credit limit
   included), post the two balanced postings, audit, notify.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.services.events import Actor
from ledger import notifications
from ledger.exceptions import AccountNotFound, SameAccount
from ledger.lock_objects import accounts_lock, owner_spend_lock
from ledger.models import LedgerAccount, Transfer
from ledger.services.core import (
    Leg,
    active_check,
    amount_check,
    audit_record,
    client_id_check,
    currency_check,
    reference_check,
    same_currency_check,
    transfer_payload,
    transfer_post,
)
from ledger.services.policy import customer_limits_check, rules_evaluate


def transfer_create(
    *,
    from_account: LedgerAccount,
    to_account: LedgerAccount,
    amount_minor: int,
    currency: str,
    reference: str,
    initiated_by: User,
    client_id: str = "",
    actor: Actor,
) -> Transfer:
    """Move `amount_minor` from the initiator's own account to another account in the same currency.

    Opens `transaction.atomic()`, not a durable one: the HTTP layer wraps this
    call in its own durable transaction together with the idempotency record,
    so the transfer and "this request was answered" commit or vanish together.
    Called without an outer transaction it is its own transaction.

    Errors: account_not_found, same_account, currency_mismatch,
    account_not_active, limit_not_configured, limit_per_transfer_exceeded,
    limit_daily_exceeded, velocity_exceeded, transfer_refused_by_rule,
    insufficient_funds, invalid_amount, unknown_currency, invalid_reference.
    """
    amount_check(amount_minor)
    currency_check(currency)
    reference_check(reference)
    client_id_check(client_id)
    # Only the owner debits an account; another customer's account is "not found", never "forbidden".
    if from_account.owner_id is None or initiated_by is None or from_account.owner_id != initiated_by.pk:
        raise AccountNotFound()
    if from_account.pk == to_account.pk:
        raise SameAccount()
    same_currency_check(currency, from_account, to_account)
    active_check(from_account, to_account)

    with transaction.atomic():
        owner_spend_lock(from_account.owner_id)
        now = timezone.now()  # after the wait for the lock: windows end at the moment the checks run
        customer_limits_check(
            sender_id=from_account.owner_id,
            receiver_id=to_account.owner_id,
            currency=currency,
            amount_minor=amount_minor,
            now=now,
        )
        outcome = rules_evaluate(sender_id=from_account.owner_id, currency=currency, amount_minor=amount_minor, now=now)

        locked = accounts_lock([from_account.pk, to_account.pk])
        source, destination = locked[from_account.pk], locked[to_account.pk]
        if source.owner_id != initiated_by.pk:
            raise AccountNotFound()
        same_currency_check(currency, source, destination)
        active_check(source, destination)
        transfer = transfer_post(
            legs=[Leg(source, -amount_minor), Leg(destination, amount_minor)],
            kind=Transfer.Kind.TRANSFER,
            currency=currency,
            amount_minor=amount_minor,
            reference=reference,
            initiated_by=initiated_by,
            client_id=client_id,
            flagged_for_review=outcome.flagged,
            review_reasons=outcome.reasons,
        )
        audit_record(
            event_type="ledger.transfer.posted",
            actor=actor,
            object_type="ledger.transfer",
            object_id=transfer.public_id,
            payload=transfer_payload(transfer),
        )
        notifications.transfer_posted(transfer)
    return transfer
