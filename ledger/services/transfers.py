"""Customer transfers: validate, apply limits, apply rules, then move the money under locks.

The pipeline, in this order, so the cheapest refusal comes first and account
row locks are held for the shortest time:

1. validate the request (amount, currency, same account, ownership, status);
2. take the owner spend lock, then check the customers (active) and the
   limits of the sender's tier (per transfer, per UTC day);
3. evaluate risk rules (threshold: flag; velocity: refuse);
4. lock both accounts by primary key, re-check status and funds (credit limit
   included), post the two balanced postings, audit, notify.

Steps 2-4 (and step 1's lookups when the caller names accounts by public id)
run inside PostgreSQL as ONE call, `ledger_transfer_create` (migration 0005):
a transfer used to cost about fifteen round trips and as many ORM calls, and
its lock order, checks and writes are the same statements either way. Python
keeps the input checks, the mapping of refusals to domain errors, and the
`ledger.notifications.transfer_posted` hook. See docs/adr/0009.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.models import User
from audit.services.events import Actor
from fintech.db_retry import sqlstate_of
from fintech.redaction import scrub_text
from fintech.request_context import current_request_id
from ledger import notifications
from ledger.currencies import format_amount
from ledger.exceptions import AccountNotFound, LedgerInvariantViolation, SameAccount
from ledger.models import LedgerAccount, Posting, Transfer
from ledger.services.core import (
    active_check,
    amount_check,
    client_id_check,
    currency_check,
    reference_check,
    same_currency_check,
)
from ledger.services.policy import refusal_error

# One statement; every value is a bound parameter.
_TRANSFER_CREATE_SQL = (
    "SELECT r_refusal, r_refusal_data, r_transfer_id, r_created_at, r_review_reasons, r_from, r_to, r_outbox_ids"
    " FROM ledger_transfer_create(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
INVARIANT_SQLSTATE = "LG001"  # raised by ledger_transfer_create when a balance is not what its lock predicts


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
    _input_check(amount_minor=amount_minor, currency=currency, reference=reference, client_id=client_id)
    # Only the owner debits an account; another customer's account is "not found", never "forbidden".
    if from_account.owner_id is None or initiated_by is None or from_account.owner_id != initiated_by.pk:
        raise AccountNotFound()
    if from_account.pk == to_account.pk:
        raise SameAccount()
    same_currency_check(currency, from_account, to_account)
    active_check(from_account, to_account)
    return _transfer_post(
        accounts=(from_account.pk, to_account.pk, to_account.owner_id, None, None),
        amount_minor=amount_minor,
        currency=currency,
        reference=reference,
        initiated_by=initiated_by,
        client_id=client_id,
        actor=actor,
        savepoint=True,
    )


def transfer_create_by_public_ids(
    *,
    from_public_id: uuid.UUID,
    to_public_id: uuid.UUID,
    amount_minor: int,
    currency: str,
    reference: str,
    initiated_by: User,
    client_id: str = "",
    actor: Actor,
) -> Transfer:
    """`transfer_create` for a caller that names the accounts by public id (the API), in one round trip.

    The accounts are found inside the same database call, with the scoping of
    `ledger.selectors.account_get` (the initiator's own customer account) and
    `transfer_destination_get` (any active customer account): anything else is
    `account_not_found`. Input checks (amount, currency, reference) run first,
    before any lookup.

    Guarantee the HTTP layer relies on (`idempotent_response(savepoint=False)`):
    a domain error from here means nothing was written, so no savepoint is
    needed to undo it. Refusals come back from the database before its first
    write; any other error leaves the transaction marked for rollback.
    """
    _input_check(amount_minor=amount_minor, currency=currency, reference=reference, client_id=client_id)
    if initiated_by is None or initiated_by.pk is None:
        raise AccountNotFound()
    return _transfer_post(
        accounts=(None, None, None, from_public_id, to_public_id),
        amount_minor=amount_minor,
        currency=currency,
        reference=reference,
        initiated_by=initiated_by,
        client_id=client_id,
        actor=actor,
        savepoint=False,
    )


def _input_check(*, amount_minor: int, currency: str, reference: str, client_id: str) -> None:
    amount_check(amount_minor)
    currency_check(currency)
    reference_check(reference)
    client_id_check(client_id)


def _transfer_post(
    *,
    accounts: tuple,
    amount_minor: int,
    currency: str,
    reference: str,
    initiated_by: User,
    client_id: str,
    actor: Actor,
    savepoint: bool,
) -> Transfer:
    """One call to `ledger_transfer_create`, the hook, and a `Transfer` built from what the call returned.

    A refusal is raised after the atomic block has exited cleanly: the call
    wrote nothing, and raising inside a block without a savepoint would mark
    the caller's whole transaction for rollback.
    """
    public_id = uuid.uuid4()
    now = timezone.now()
    with transaction.atomic(savepoint=savepoint):
        with connection.cursor() as cursor:
            try:
                cursor.execute(
                    _TRANSFER_CREATE_SQL,
                    [
                        *accounts,
                        initiated_by.pk,
                        amount_minor,
                        currency,
                        reference,
                        client_id,
                        now,
                        public_id,
                        format_amount(amount_minor, currency),
                        actor.user,
                        actor.client,
                        actor.staff,
                        current_request_id() or "",
                        scrub_text(reference),
                    ],
                )
            except DatabaseError as error:
                if sqlstate_of(error) == INVARIANT_SQLSTATE:
                    raise LedgerInvariantViolation(str(error)) from error
                raise
            refusal, refusal_data, transfer_id, created_at, reasons, source, destination, outbox_ids = cursor.fetchone()
        if refusal is None:
            transfer = _transfer_of(
                transfer_id=transfer_id,
                public_id=public_id,
                created_at=created_at,
                review_reasons=_json(reasons),
                accounts=(_account_of(_json(source)), _account_of(_json(destination))),
                amount_minor=amount_minor,
                currency=currency,
                reference=reference,
                initiated_by=initiated_by,
                client_id=client_id,
            )
            transfer.outbox_message_ids = list(outbox_ids)  # written by the same call; the hook only schedules
            notifications.transfer_posted(transfer)
    if refusal is not None:
        raise refusal_error(refusal, _json(refusal_data) or {}, currency=currency)
    return transfer


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def _account_of(row: dict) -> LedgerAccount:
    """The locked account as the call left it (balances after the posting), without another query."""
    account = LedgerAccount(
        id=row["id"],
        public_id=uuid.UUID(str(row["public_id"])),
        owner_id=row["owner_id"],
        kind=row["kind"],
        status=row["status"],
        currency=row["currency"],
        credit_limit_minor=row["credit_limit_minor"],
        posted_minor=row["posted_minor"],
        held_minor=row["held_minor"],
        version=row["version"],
    )
    account._state.adding = False
    account._state.db = "default"
    return account


def _transfer_of(
    *,
    transfer_id: int,
    public_id: uuid.UUID,
    created_at,
    review_reasons: list,
    accounts: tuple[LedgerAccount, LedgerAccount],
    amount_minor: int,
    currency: str,
    reference: str,
    initiated_by: User,
    client_id: str,
) -> Transfer:
    transfer = Transfer(
        id=transfer_id,
        public_id=public_id,
        kind=Transfer.Kind.TRANSFER,
        currency=currency,
        amount_minor=amount_minor,
        reference=reference,
        initiated_by=initiated_by,
        client_id=client_id,
        reversed_minor=0,
        flagged_for_review=bool(review_reasons),
        review_reasons=review_reasons,
        created_at=created_at,
    )
    transfer._state.adding = False
    transfer._state.db = "default"
    source, destination = accounts
    legs = sorted([(source, -amount_minor), (destination, amount_minor)], key=lambda leg: leg[0].pk)
    transfer.posting_list = [
        Posting(
            transfer=transfer,
            account=account,
            amount_minor=delta,
            currency=currency,
            balance_after_minor=account.posted_minor,
            account_version=account.version,
        )
        for account, delta in legs
    ]
    return transfer
