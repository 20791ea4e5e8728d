"""Saving and deleting cards on file.

The number goes to the token vault (another process, another database) and
only the token and display fragments come back here. Tokenization is a
network call that cannot join our transaction, so the order is:

1. validate everything locally (no vault call for a card we would refuse);
2. tokenize (a vault failure is a 503 and nothing is written here);
3. write the card row in a transaction that re-checks the per-customer limit
   under a lock on the customer's row;
4. if step 3 fails, shred the fresh token so no card number stays vaulted
   without a card pointing at it. A crash between 2 and 3 leaves such an
   orphan; it is unreachable (nobody holds its token) and the vault's
   retention policy is where it goes (noted in ADR 0012).

Cards are tokenized non-convergently: two customers saving the same card get
two tokens, so one customer's delete (a crypto-shred) never destroys the
other's card.
"""

from __future__ import annotations

import logging
import uuid
from datetime import date

from django.db import transaction
from django.utils import timezone

from accounts.cards.exceptions import CardExpired, CardLimitReached, CardNotFound
from accounts.models import PaymentCard, User
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from tokenvault.client import VaultClient, vault_client
from tokenvault.exceptions import TokenNotFound
from tokenvault.models import VaultRecord
from tokenvault.tokens import pan_normalize

logger = logging.getLogger(__name__)
OBJECT_TYPE = "accounts.payment_card"
ACTIVE_CARDS_MAX = 20
EXP_YEARS_AHEAD_MAX = 20


def _require_valid_expiry(exp_month: int, exp_year: int, today: date) -> None:
    if (exp_year, exp_month) < (today.year, today.month):
        raise CardExpired(f"The card expired at the end of {exp_month:02d}/{exp_year}.")
    if exp_year > today.year + EXP_YEARS_AHEAD_MAX:
        raise CardExpired(f"An expiry more than {EXP_YEARS_AHEAD_MAX} years ahead is not a real card's.")


def _require_room(owner: User) -> None:
    active = PaymentCard.objects.filter(owner=owner, status=PaymentCard.Status.ACTIVE).count()
    if active >= ACTIVE_CARDS_MAX:
        raise CardLimitReached(f"At most {ACTIVE_CARDS_MAX} cards can be on file; delete one first.")


def payment_card_input_check(*, number: str, exp_month: int, exp_year: int) -> str:
    """The card number in canonical form, or the refusal; the view calls it before anything is stored.

    InvalidCardNumber (400): length, digits, Luhn, a known brand's prefix and length.
    """
    pan = pan_normalize(number)
    _require_valid_expiry(exp_month, exp_year, timezone.localdate())
    return pan


def payment_card_save(
    *,
    owner: User,
    number: str,
    exp_month: int,
    exp_year: int,
    holder: str,
    actor: Actor,
    client: VaultClient | None = None,
) -> PaymentCard:
    """Vault the number and keep a card row holding its token; the number is never stored here."""
    pan = payment_card_input_check(number=number, exp_month=exp_month, exp_year=exp_year)
    _require_room(owner)  # cheap refusal before the vault call; re-checked under the lock below
    client = client or vault_client()
    vaulted = client.tokenize(
        token_type=VaultRecord.TokenType.CARD,
        value=pan,
        actor=actor,
        metadata={"exp_month": exp_month, "exp_year": exp_year},
    )
    del pan, number
    try:
        with transaction.atomic():
            # One writer per customer at a time, so the limit holds under concurrent saves.
            User.objects.select_for_update().filter(pk=owner.pk).values_list("pk", flat=True).get()
            _require_room(owner)
            card = PaymentCard.objects.create(
                owner=owner,
                token=vaulted.token,
                brand=vaulted.brand,
                last4=vaulted.last4,
                exp_month=exp_month,
                exp_year=exp_year,
                holder=holder,
            )
            audit_event_record(
                event_type="card.saved",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=actor,
                object_type=OBJECT_TYPE,
                object_id=str(card.public_id),
                payload={"brand": card.brand},
            )
    except BaseException:
        _shred_orphan(client, vaulted.token, actor)
        raise
    return card


def _shred_orphan(client: VaultClient, token: str, actor: Actor) -> None:
    try:
        client.shred(token=token, actor=actor)
    except Exception:
        # The token is in no card row, so nobody can use it; the vault's retention job is the backstop.
        logger.exception("card save failed and its fresh vault token could not be shredded")


def payment_card_delete(*, owner: User, public_id: uuid.UUID, actor: Actor, client: VaultClient | None = None) -> None:
    """Crypto-shred the card's vault value, then mark the row deleted (the row stays as a tombstone).

    Shredding comes first and is idempotent: if it succeeds and our commit
    does not, a retry shreds again (a no-op) and then marks the row.
    """
    with transaction.atomic():
        card = (
            PaymentCard.objects.select_for_update()
            .filter(owner=owner, public_id=public_id, status=PaymentCard.Status.ACTIVE)
            .first()
        )
        if card is None:
            raise CardNotFound()
        token_unknown = False
        try:
            (client or vault_client()).shred(token=card.token, actor=actor)
        except TokenNotFound:
            # The vault holds nothing under this token (e.g. restored from an older backup): there is
            # nothing left to shred, and the customer must still be able to delete the card.
            logger.warning("card delete: the vault does not know the card's token; nothing to shred")
            token_unknown = True
        card.status = PaymentCard.Status.DELETED
        card.deleted_at = timezone.now()
        card.holder = None  # erased with the number; the tombstone keeps only brand and last four
        card.save(update_fields=["status", "deleted_at", "holder"])
        audit_event_record(
            event_type="card.deleted",
            outcome=AuditEvent.Outcome.SUCCESS,
            actor=actor,
            object_type=OBJECT_TYPE,
            object_id=str(card.public_id),
            payload={"brand": card.brand, "vault_token_unknown": token_unknown},
        )
