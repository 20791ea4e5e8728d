"""Holds: reserve money now, capture it (in parts) later, or release it by void or expiry.

While a hold is active its remaining amount (amount - captured) sits in the
debited account's `held_minor`, lowering the available balance; posted money
does not move until a capture. Every change to a hold happens under its
debited account's row lock and then the hold's own lock (lock order in
`ledger.lock_objects`), so `held_minor` always equals the sum of active holds'
remaining amounts, which `ledger_verify` checks.

Services open `transaction.atomic()`, not a durable one: the HTTP layer wraps
them in its own durable transaction with the idempotency record.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from audit.services.events import Actor
from ledger import notifications
from ledger.exceptions import CaptureExceedsHold, HoldExpired, HoldNotActive, InvalidHoldExpiry, SameAccount
from ledger.lock_objects import accounts_lock, holds_lock
from ledger.models import Hold, LedgerAccount, Transfer
from ledger.services.core import (
    Leg,
    active_check,
    amount_check,
    audit_record,
    balance_apply,
    currency_check,
    funds_check,
    reference_check,
    same_currency_check,
    transfer_payload,
    transfer_post,
)

DEFAULT_HOLD_MAX_LIFETIME_DAYS = 30
DEFAULT_HOLDS_EXPIRE_BATCH_SIZE = 500


def _hold_payload(hold: Hold, **extra) -> dict:
    return {
        "hold": str(hold.public_id),
        "account": str(hold.account.public_id),
        "destination": str(hold.destination.public_id),
        "amount_minor": hold.amount_minor,
        "captured_minor": hold.captured_minor,
        "currency": hold.currency,
        "status": hold.status,
        **extra,
    }


def hold_create(
    *,
    account: LedgerAccount,
    destination: LedgerAccount,
    amount_minor: int,
    currency: str,
    reference: str,
    expires_at: datetime,
    created_by: User | None = None,
    actor: Actor,
) -> Hold:
    """Reserve `amount_minor` of `account`'s available balance (credit limit included) for `destination`.

    Errors: same_account, currency_mismatch, account_not_active,
    insufficient_funds, invalid_hold_expiry, invalid_amount.
    """
    amount_check(amount_minor)
    currency_check(currency)
    reference_check(reference)
    if account.pk == destination.pk:
        raise SameAccount()
    same_currency_check(currency, account, destination)
    now = timezone.now()
    max_days = getattr(settings, "LEDGER_HOLD_MAX_LIFETIME_DAYS", DEFAULT_HOLD_MAX_LIFETIME_DAYS)
    if expires_at <= now or expires_at > now + timedelta(days=max_days):
        raise InvalidHoldExpiry(f"A hold expires in the future, within {max_days} days.")
    active_check(account, destination)

    with transaction.atomic():
        # The destination is locked too although its balance does not change: the hold's foreign key
        # to it takes a KEY SHARE lock, which must not be the one lock taken outside the pk order.
        locked_accounts = accounts_lock([account.pk, destination.pk])
        locked, locked_destination = locked_accounts[account.pk], locked_accounts[destination.pk]
        active_check(locked, locked_destination)
        funds_check(locked, posted_delta_minor=0, held_delta_minor=amount_minor)
        balance_apply(locked, posted_delta_minor=0, held_delta_minor=amount_minor)
        hold = Hold.objects.create(
            account=locked,
            destination=locked_destination,
            currency=currency,
            amount_minor=amount_minor,
            expires_at=expires_at,
            reference=reference,
            created_by=created_by,
        )
        audit_record(
            event_type="ledger.hold.created",
            actor=actor,
            object_type="ledger.hold",
            object_id=hold.public_id,
            payload=_hold_payload(hold, expires_at=expires_at.isoformat()),
        )
    return hold


def hold_capture(*, hold: Hold, amount_minor: int, actor: Actor, reference: str | None = None) -> Transfer:
    """Move `amount_minor` of the held money to the hold's destination; the rest stays held.

    Partial captures may repeat until the hold is captured in full; a void or
    expiry releases what remains. Posts a transfer of kind `hold_capture`.

    Errors: hold_not_active, hold_expired, capture_exceeds_hold,
    account_not_active, invalid_amount.
    """
    amount_check(amount_minor)
    reference = hold.reference if reference is None else reference_check(reference)
    with transaction.atomic():
        locked_accounts = accounts_lock([hold.account_id, hold.destination_id])
        locked = holds_lock([hold.pk])[hold.pk]
        if locked.status != Hold.Status.ACTIVE:
            raise HoldNotActive()
        if locked.expires_at <= timezone.now():
            raise HoldExpired()
        if amount_minor > locked.remaining_minor:
            raise CaptureExceedsHold()
        source, destination = locked_accounts[locked.account_id], locked_accounts[locked.destination_id]
        active_check(source, destination)
        transfer = transfer_post(
            legs=[Leg(source, -amount_minor, held_delta_minor=-amount_minor), Leg(destination, amount_minor)],
            kind=Transfer.Kind.HOLD_CAPTURE,
            currency=locked.currency,
            amount_minor=amount_minor,
            reference=reference,
            hold=locked,
        )
        fully_captured = locked.captured_minor + amount_minor == locked.amount_minor
        Hold.objects.filter(pk=locked.pk).update(
            captured_minor=F("captured_minor") + amount_minor,
            status=Hold.Status.CAPTURED if fully_captured else Hold.Status.ACTIVE,
        )
        locked.refresh_from_db(fields=["captured_minor", "status"])
        locked.account, locked.destination = source, destination
        audit_record(
            event_type="ledger.hold.captured",
            actor=actor,
            object_type="ledger.hold",
            object_id=locked.public_id,
            payload=_hold_payload(locked, transfer=transfer_payload(transfer)),
        )
        notifications.transfer_posted(transfer)
    return transfer


def hold_void(*, hold: Hold, reason: str = "", actor: Actor) -> Hold:
    """Release what remains of an active hold (the merchant cancelled, say). Errors: hold_not_active."""
    reason = reference_check(reason)
    with transaction.atomic():
        account = accounts_lock([hold.account_id])[hold.account_id]
        locked = holds_lock([hold.pk])[hold.pk]
        if locked.status != Hold.Status.ACTIVE:
            raise HoldNotActive()
        _release(locked, account, status=Hold.Status.VOIDED)
        audit_record(
            event_type="ledger.hold.voided",
            actor=actor,
            object_type="ledger.hold",
            object_id=locked.public_id,
            payload=_hold_payload(locked, reason=reason),
        )
    return locked


def _release(hold: Hold, account: LedgerAccount, *, status: str) -> None:
    balance_apply(account, posted_delta_minor=0, held_delta_minor=-hold.remaining_minor)
    Hold.objects.filter(pk=hold.pk).update(status=status)
    hold.status = status
    hold.account = account


def holds_expire(*, now: datetime, actor: Actor, batch_size: int | None = None) -> int:
    """Release active holds whose expiry has passed; at most one batch per call. Returns how many.

    One short transaction per hold, so expiry never holds many account locks
    at once and a crash halfway loses nothing: the next run picks up the rest.
    A hold captured or voided meanwhile is skipped. Safe to run concurrently.
    """
    limit = batch_size or getattr(settings, "LEDGER_HOLDS_EXPIRE_BATCH_SIZE", DEFAULT_HOLDS_EXPIRE_BATCH_SIZE)
    candidates = list(
        Hold.objects.filter(status=Hold.Status.ACTIVE, expires_at__lte=now)
        .order_by("expires_at", "id")
        .values_list("id", "account_id")[:limit]
    )
    expired = 0
    for hold_id, account_id in candidates:
        with transaction.atomic():
            account = accounts_lock([account_id])[account_id]
            locked = holds_lock([hold_id])[hold_id]
            if locked.status != Hold.Status.ACTIVE or locked.expires_at > now:
                continue
            _release(locked, account, status=Hold.Status.EXPIRED)
            audit_record(
                event_type="ledger.hold.expired",
                actor=actor,
                object_type="ledger.hold",
                object_id=locked.public_id,
                payload=_hold_payload(locked),
            )
            expired += 1
    return expired
