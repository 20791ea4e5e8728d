"""Reversals: give money back along the path it came, in full or in parts, never more than once over.

A reversal is a new transfer (kind `reversal`, linked by `reverses`) whose
postings mirror the original's; the original is never changed except for
`reversed_minor`, which grows under the account locks and then the
transfer's own lock. The database refuses `reversed_minor > amount_minor`
even if this code were wrong (check constraint), and a trigger refuses any
other change to a transfer.

Blocked accounts and blocked customers may take part: a refund back along
the original path is the one movement a blocked customer may make or
receive (ADR 0014). Closed ones may not. Otherwise a refund is the
refunder's outgoing movement and passes the policy step like any other: it
counts against the refunder's daily limit and velocity, and rules apply (a
`hold_for_review` hit flags it instead: holding a refund would keep the
payer's money from them). The reversal still needs the money: a receiver
that has spent it gets `insufficient_funds`, and the reversal waits.
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import User
from audit.services.events import Actor
from ledger import notifications
from ledger.exceptions import (
    LedgerInvariantViolation,
    ReversalExceedsOriginal,
    TransferAlreadyReversed,
    TransferNotReversible,
)
from ledger.lock_objects import accounts_lock, transfers_lock
from ledger.models import CUSTOMER_REFUNDABLE_KINDS, Posting, Transfer
from ledger.services.core import active_check, amount_check, ledger_event, movement_post, reason_check
from ledger.services.policy import Movement, movement_policy_check, movement_policy_count
from ledger.services.reviews import review_case_open


def transfer_reverse(
    *,
    transfer: Transfer,
    amount_minor: int | None = None,
    reason: str,
    actor: Actor,
    initiated_by: User | None = None,
) -> Transfer:
    """Reverse `amount_minor` of `transfer` (all that remains if None). Returns the reversal transfer.

    Opens `transaction.atomic()`, not a durable one, so the HTTP layer can
    commit it together with its idempotency record.

    Errors: reason_required, transfer_not_reversible, transfer_already_reversed,
    reversal_exceeds_original, account_not_active, insufficient_funds, invalid_amount.
    """
    reason = reason_check(reason)
    if amount_minor is not None:
        amount_check(amount_minor)
    if transfer.kind == Transfer.Kind.REVERSAL:
        raise TransferNotReversible("A reversal cannot itself be reversed; post a new transfer instead.")
    if initiated_by is not None and transfer.kind not in CUSTOMER_REFUNDABLE_KINDS:
        raise TransferNotReversible("Only a payment received from another customer can be refunded.")
    # Postings are append-only, so reading them before the locks is safe.
    original_postings = list(Posting.objects.filter(transfer_id=transfer.pk).order_by("id"))
    if len(original_postings) < 2 or any(
        abs(posting.amount_minor) != transfer.amount_minor for posting in original_postings
    ):
        raise LedgerInvariantViolation(f"{transfer} is not a two-sided transfer and cannot be mirrored")

    with transaction.atomic():
        accounts = accounts_lock([posting.account_id for posting in original_postings])
        locked = transfers_lock([transfer.pk])[transfer.pk]
        remaining = locked.reversible_minor
        if remaining == 0:
            raise TransferAlreadyReversed()
        amount = remaining if amount_minor is None else amount_minor
        if amount > remaining:
            raise ReversalExceedsOriginal(
                f"At most {remaining} minor units of this transfer can still be reversed.",
                extra={"reversible_minor": remaining},
            )
        active_check(*accounts.values(), allow_blocked=True)
        # The original's payee gives back to its payer: the mirror of its two postings.
        refunder = accounts[next(posting.account_id for posting in original_postings if posting.amount_minor > 0)]
        original_payer = accounts[next(posting.account_id for posting in original_postings if posting.amount_minor < 0)]
        decision = movement_policy_check(
            movement=Movement.REFUND,
            sender_id=refunder.owner_id,
            receiver_id=original_payer.owner_id,
            currency=locked.currency,
            amount_minor=amount,
        )
        reversal = movement_post(
            kind=Transfer.Kind.REVERSAL,
            debit=refunder,
            credit=original_payer,
            currency=locked.currency,
            amount_minor=amount,
            reference=reason,
            initiated_by_id=getattr(initiated_by, "pk", None),
            reverses=locked,
            flagged_for_review=decision.flagged,
            review_reasons=list(decision.reasons),
            limit_day=decision.limit_day,
            event=ledger_event(
                event_type="ledger.transfer.reversed",
                actor=actor,
                payload={
                    "reverses": str(locked.public_id),
                    "reason": reason,
                    "reversed_minor_total": locked.reversed_minor + amount,
                },
            ),
        )
        movement_policy_count(decision)
        reversed_after = Transfer.objects.filter(pk=locked.pk).values_list("reversed_minor", flat=True).get()
        if reversed_after != locked.reversed_minor + amount:
            raise LedgerInvariantViolation(f"{locked}: reversed_minor {reversed_after} after adding {amount}")
        if decision.flagged:
            review_case_open(
                transfer=reversal, blocking=False, reasons=decision.reasons, subject_id=refunder.owner_id, actor=actor
            )
        notifications.transfer_posted(reversal)
    transfer.reversed_minor = reversed_after
    return reversal
