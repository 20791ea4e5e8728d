"""Refusals of the cards-on-file API; no detail here ever contains a card number."""

from fintech.problems import DomainError


class CardNotFound(DomainError):
    status = 404
    code = "card_not_found"
    title = "Card not found"


class CardExpired(DomainError):
    status = 400
    code = "card_expired"
    title = "The card has expired"


class CardLimitReached(DomainError):
    status = 409
    code = "card_limit_reached"
    title = "Too many cards on file"
