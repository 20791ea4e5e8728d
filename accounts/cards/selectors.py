"""Reads of cards on file: only the owner's, only the live ones."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from accounts.cards.exceptions import CardNotFound
from accounts.models import PaymentCard, User


def payment_cards_list(*, owner: User) -> QuerySet[PaymentCard]:
    return PaymentCard.objects.filter(owner=owner, status=PaymentCard.Status.ACTIVE).order_by("-created_at", "-id")


def payment_card_get(*, owner: User, public_id: uuid.UUID) -> PaymentCard:
    """Another customer's card, or a deleted one, does not exist for the caller."""
    card = payment_cards_list(owner=owner).filter(public_id=public_id).first()
    if card is None:
        raise CardNotFound()
    return card
