"""Holds: reserve money now, capture it (in parts) later, or release it by void or expiry.

While a hold is active its remaining amount (amount - captured) sits in the
debited account's `held_minor`, lowering the available balance; posted money
does not move until a capture. Every change to a hold happens under its
debited account's row lock and then the hold's own lock (lock order in
`ledger.lock_objects`), so `held_minor` always equals the sum of active holds'
remaining amounts, which `ledger_verify` checks.

Who does what (ADR 0014): the payer creates a hold (it passes the policy
step like any outgoing movement and counts against the payer's daily limit
and velocity when it reserves the money); the payee, the destination's
owner, captures it or voids it, like a merchant with a card authorisation.
The payer cannot capture (that would make a hold a two-step self-transfer
around the controls) and cannot void (the reservation is a promise to the
payee); expiry releases it. A capture is never counted again; a void or
expiry gives back what was not captured on the day it was reserved. While
the payer or the payee is blocked, capture is refused; void and expiry still
release. A hold a `hold_for_review` rule caught cannot be captured until a
compliance officer approves its case.

Services open `transaction.atomic()`, not a durable one: the HTTP layer wraps
them in its own durable transaction with the idempotency record.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.services.events import Actor
from ledger import notifications
from ledger.exceptions import (
    CaptureExceedsHold,
    HoldExpired,
    HoldNotActive,
    HoldNotFound,
    InvalidHoldExpiry,
    SameAccount,
)
from ledger.lock_objects import accounts_lock, holds_lock
from ledger.models import Hold, LedgerAccount, ReviewCase, Transfer
from ledger.services.core import (
    accounts_refresh,
    active_check,
    amount_check,
    currency_check,
    funds_check,
    hold_open,
    hold_release,
    ledger_event,
    movement_post,
    reference_check,
    same_currency_check,
)
from ledger.services.policy import Movement, movement_policy_check, movement_policy_count
from ledger.services.reviews import review_case_opened

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
    created_by: User,
    client_id: str = "",
    actor: Actor,
) -> Hold:
    """Reserve `amount_minor` of `account`'s available balance (credit limit included) for `destination`.

    The payer's outgoing movement: passes the policy step and counts against
    the payer's daily limit and velocity now, never again at capture.

    Errors: same_account, currency_mismatch, account_not_active,
    insufficient_funds, invalid_hold_expiry, invalid_amount, and the policy
    step's (limit_*, velocity_exceeded, transfer_refused_by_rule).
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
        decision = movement_policy_check(
            movement=Movement.HOLD,
            sender_id=locked.owner_id,
            receiver_id=locked_destination.owner_id,
            currency=currency,
            amount_minor=amount_minor,
        )
        funds_check(locked, posted_delta_minor=0, held_delta_minor=amount_minor)
        opened = hold_open(
            account=locked,
            destination=locked_destination,
            hold={
                "currency": currency,
                "amount_minor": amount_minor,
                "purpose": Hold.Purpose.AUTHORISATION,
                "expires_at": expires_at,
                "reference": reference,
                "created_by_id": created_by.pk,
                "client_id": client_id,
                "limit_day": decision.limit_day,
                "movement_kind": "",
                "transfer_public_id": None,
            },
            review_required=decision.action == "hold_for_review",
            event=ledger_event(
                event_type="ledger.hold.created",
                actor=actor,
                payload={"expires_at": expires_at.isoformat(), "review_reasons": list(decision.reasons)},
            ),
        )
        accounts_refresh(opened, locked)
        hold = Hold.objects.get(pk=opened["id"])
        hold.account, hold.destination = locked, locked_destination
        movement_policy_count(decision)
        if opened["review_case_id"] is not None:  # the function opened the case its rule calls for
            review_case_opened(ReviewCase.objects.get(pk=opened["review_case_id"]), actor=actor)
    return hold


def hold_capture(
    *, hold: Hold, amount_minor: int | None, captured_by: User, actor: Actor, reference: str | None = None
) -> Transfer:
    """The payee moves `amount_minor` of the held money (None: all that remains) to the hold's destination.

    Partial captures may repeat until the hold is captured in full; a void or
    expiry releases what remains. Posts a transfer of kind `hold_capture`,
    initiated by the payee. Not counted against anyone's limits again: the
    hold counted when it reserved the money.

    "All that remains" is read under the hold's lock, so a capture racing
    another one captures what is really left, or is told the hold is done.

    Errors: hold_not_found (not the payee's), hold_not_active (also while a
    review case holds it: the same answer, so the payee is not tipped off),
    hold_expired, capture_exceeds_hold, account_not_active (either customer
    blocked), invalid_amount.
    """
    if amount_minor is not None:
        amount_check(amount_minor)
    reference = hold.reference if reference is None else reference_check(reference)
    with transaction.atomic():
        source, destination, locked = _payee_hold_lock(hold, payee=captured_by)
        if locked.expires_at <= timezone.now():
            raise HoldExpired()
        if amount_minor is None:
            amount_minor = locked.remaining_minor
        if amount_minor > locked.remaining_minor:
            raise CaptureExceedsHold()
        if (
            ReviewCase.objects.filter(hold=locked, kind=ReviewCase.Kind.HELD_MOVEMENT)
            .exclude(status=ReviewCase.Status.APPROVED)
            .exists()
        ):
            # The answer any hold that cannot be captured gets: a review-specific code would tip the payee off.
            raise HoldNotActive()
        active_check(source, destination)
        movement_policy_check(
            movement=Movement.CAPTURE,
            sender_id=source.owner_id,
            receiver_id=destination.owner_id,
            currency=locked.currency,
            amount_minor=amount_minor,
        )
        fully_captured = locked.captured_minor + amount_minor == locked.amount_minor
        locked.account, locked.destination = source, destination
        after = {
            "captured_minor": locked.captured_minor + amount_minor,
            "status": Hold.Status.CAPTURED if fully_captured else Hold.Status.ACTIVE,
        }
        transfer = movement_post(
            kind=Transfer.Kind.HOLD_CAPTURE,
            debit=source,
            credit=destination,
            currency=locked.currency,
            amount_minor=amount_minor,
            reference=reference,
            hold=locked,
            initiated_by_id=captured_by.pk,
            event=ledger_event(
                event_type="ledger.hold.captured",
                actor=actor,
                payload=_hold_payload(locked, **after),
                object_type="ledger.hold",
            ),
        )
        locked.captured_minor, locked.status = after["captured_minor"], after["status"]
        notifications.transfer_posted(transfer)
    return transfer


def hold_void(*, hold: Hold, voided_by: User, reason: str = "", actor: Actor) -> Hold:
    """The payee releases what remains of an active hold (the merchant cancelled, say).

    Allowed while either customer is blocked: releasing money never moves it.
    Errors: hold_not_found (not the payee's, or a review hold), hold_not_active.
    """
    reason = reference_check(reason, field="reason")
    with transaction.atomic():
        account, _, locked = _payee_hold_lock(hold, payee=voided_by)
        hold_release(
            locked,
            account,
            status=Hold.Status.VOIDED,
            event=ledger_event(event_type="ledger.hold.voided", actor=actor, payload={"reason": reason}),
        )
    return locked


def _payee_hold_lock(hold: Hold, *, payee: User) -> tuple[LedgerAccount, LedgerAccount, Hold]:
    """Lock a hold's accounts, then the hold; refuse unless it is an active authorisation to `payee`'s account.

    Both accounts are locked (pk order) even for a void, which changes only the
    payer's: the payee's row is how the payee is checked, under the lock.
    """
    accounts = accounts_lock([hold.account_id, hold.destination_id])
    locked = holds_lock([hold.pk])[hold.pk]
    source, destination = accounts[locked.account_id], accounts[locked.destination_id]
    if locked.purpose != Hold.Purpose.AUTHORISATION or destination.owner_id != payee.pk:
        raise HoldNotFound()
    if locked.status != Hold.Status.ACTIVE:
        raise HoldNotActive()
    return source, destination, locked


def holds_expire(*, now: datetime, actor: Actor, batch_size: int | None = None) -> int:
    """Release active holds whose expiry has passed; at most one batch per call. Returns how many.

    One short transaction per hold, so expiry never holds many account locks
    at once and a crash halfway loses nothing: the next run picks up the rest.
    A hold captured or voided meanwhile is skipped. Safe to run concurrently.
    A platform-initiated movement: it only releases, so it skips the policy step
    (a blocked customer's holds expire too). Review holds never expire.
    """
    limit = batch_size or getattr(settings, "LEDGER_HOLDS_EXPIRE_BATCH_SIZE", DEFAULT_HOLDS_EXPIRE_BATCH_SIZE)
    candidates = list(
        Hold.objects.filter(status=Hold.Status.ACTIVE, purpose=Hold.Purpose.AUTHORISATION, expires_at__lte=now)
        .order_by("expires_at", "id")
        .values_list("id", "account_id")[:limit]
    )
    expired = 0
    for hold_id, account_id in candidates:
        with transaction.atomic():
            account = accounts_lock([account_id])[account_id]
            locked = holds_lock([hold_id])[hold_id]
            if locked.status != Hold.Status.ACTIVE or locked.expires_at is None or locked.expires_at > now:
                continue
            expiry = ledger_event(event_type="ledger.hold.expired", actor=actor)
            hold_release(locked, account, status=Hold.Status.EXPIRED, event=expiry)
            expired += 1
    return expired
