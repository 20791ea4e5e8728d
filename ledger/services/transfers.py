"""Customer transfers: one PL/pgSQL call, `ledger_transfer_create` (ledger/sql/transfer_create.sql).

Inside it, in this order (ADR 0009, 0014): the accounts by public id with the
refusals that need no lock; both accounts locked by primary key; the policy
step (`ledger/sql/policy.sql`: profiles, limits from the running counters,
rules); funds; then either the posting (balances, postings, audit event,
outbox rows, a review case when a `flag` rule hit) or, when a
`hold_for_review` rule hit, a review hold and nothing posted. One round trip
instead of about fifteen. Python keeps the input checks, the mapping of
refusals to domain errors and the outbox delivery request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.models import User
from audit.services.events import Actor
from fintech.db_retry import sqlstate_of
from fintech.json_documents import json_column
from fintech.redaction import scrub_text
from fintech.request_context import current_request_id
from ledger import notifications
from ledger.authorization import authorization_mac, hold_authorization_mac
from ledger.currencies import format_amount
from ledger.exceptions import AccountNotFound, LedgerInvariantViolation
from ledger.models import Hold, LedgerAccount, Posting, Transfer
from ledger.services.core import amount_check, client_id_check, currency_check, reference_check
from ledger.services.policy import limit_time_zone, refusal_error

# One statement; every value is a bound parameter.
_TRANSFER_CREATE_SQL = (
    "SELECT r_refusal, r_refusal_data, r_status, r_transfer_id, r_created_at, r_review_reasons, r_from, r_to,"
    " r_outbox_ids FROM ledger_transfer_create(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
    " %s, %s, %s)"
)
INVARIANT_SQLSTATE = "LG001"  # raised by the ledger's SQL when a balance is not what its lock predicts


@dataclass(frozen=True, slots=True)
class PendingMovement:
    """A movement a `hold_for_review` rule held: its money is reserved, nothing is posted yet.

    `public_id` is the id the posted transfer will have if a compliance
    officer approves; the customer sees only "pending", then "posted" or
    "not executed" (never that a review happened).
    """

    public_id: uuid.UUID
    kind: str
    amount_minor: int
    currency: str
    from_account: uuid.UUID
    to_account: uuid.UUID
    reference: str
    created_at: datetime


def transfer_create(
    *,
    from_public_id: uuid.UUID,
    to_public_id: uuid.UUID,
    amount_minor: int,
    currency: str,
    reference: str,
    initiated_by: User,
    client_id: str = "",
    actor: Actor,
) -> Transfer | PendingMovement:
    """Move `amount_minor` from one of the initiator's accounts to any active customer account, in one call.

    The accounts are found inside the call with the scoping of
    `ledger.selectors.account_get` (the initiator's own customer account) and
    `transfer_destination_get` (any active customer account): anything else is
    `account_not_found`. Input checks (amount, currency, reference) run first.

    Opens `transaction.atomic()` without a savepoint: a domain error from here
    means nothing was written (refusals come back from the database before
    its first write), which `idempotent_response(savepoint=False)` relies on.

    Errors: account_not_found, same_account, currency_mismatch,
    account_not_active, limit_not_configured, limit_per_transfer_exceeded,
    limit_daily_exceeded, velocity_exceeded, transfer_refused_by_rule,
    insufficient_funds, invalid_amount, unknown_currency, invalid_reference.
    """
    amount_check(amount_minor)
    currency_check(currency)
    reference_check(reference)
    client_id_check(client_id)
    if initiated_by is None or initiated_by.pk is None:
        raise AccountNotFound()
    public_id, hold_public_id = uuid.uuid4(), uuid.uuid4()
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            try:
                cursor.execute(
                    _TRANSFER_CREATE_SQL,
                    [
                        from_public_id,
                        to_public_id,
                        initiated_by.pk,
                        amount_minor,
                        currency,
                        reference,
                        client_id,
                        timezone.now(),
                        limit_time_zone(),
                        public_id,
                        format_amount(amount_minor, currency),
                        actor.user,
                        actor.client,
                        actor.staff,
                        current_request_id() or "",
                        scrub_text(reference),
                        authorization_mac(
                            public_id=public_id,
                            kind=Transfer.Kind.TRANSFER,
                            currency=currency,
                            amount_minor=amount_minor,
                            debit_account=from_public_id,
                            credit_account=to_public_id,
                            initiated_by_id=initiated_by.pk,
                            client_id=client_id,
                            reference=reference,
                            hold_id=None,
                            reverses_id=None,
                        ),
                        hold_public_id,
                        hold_authorization_mac(  # the review hold it becomes if a rule holds it
                            public_id=hold_public_id,
                            account=from_public_id,
                            destination=to_public_id,
                            currency=currency,
                            amount_minor=amount_minor,
                            purpose=Hold.Purpose.REVIEW,
                            created_by_id=initiated_by.pk,
                            client_id=client_id,
                            reference=reference,
                            movement_kind=Transfer.Kind.TRANSFER,
                            transfer_public_id=public_id,
                            review_required=True,
                        ),
                    ],
                )
            except DatabaseError as error:
                if sqlstate_of(error) == INVARIANT_SQLSTATE:
                    raise LedgerInvariantViolation(str(error)) from error
                raise
            refusal, refusal_data, status, transfer_id, created_at, reasons, source, destination, outbox_ids = (
                cursor.fetchone()
            )
        if refusal is None and status == "posted":
            transfer = _transfer_of(
                transfer_id=transfer_id,
                public_id=public_id,
                created_at=created_at,
                review_reasons=json_column(reasons),
                accounts=(_account_of(json_column(source)), _account_of(json_column(destination))),
                amount_minor=amount_minor,
                currency=currency,
                reference=reference,
                initiated_by=initiated_by,
                client_id=client_id,
            )
            transfer.outbox_message_ids = list(outbox_ids)  # written by the same call; the hook only schedules
            notifications.transfer_posted(transfer)
    # Raised after the atomic block exited cleanly: the call wrote nothing.
    if refusal is not None:
        raise refusal_error(refusal, json_column(refusal_data) or {}, currency=currency)
    if status == "pending":
        return PendingMovement(
            public_id=public_id,
            kind=Transfer.Kind.TRANSFER,
            amount_minor=amount_minor,
            currency=currency,
            from_account=uuid.UUID(str(json_column(source)["public_id"])),
            to_account=uuid.UUID(str(json_column(destination)["public_id"])),
            reference=reference,
            created_at=created_at,
        )
    return transfer


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
        limit_day=None,  # counted by the call; not needed by any reader of this instance
    )
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
