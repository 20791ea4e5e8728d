"""The ledger's models, one module per concern; every write goes through `ledger.services`."""

from ledger.models.base import (
    CLIENT_ID_MAX_LENGTH,
    CUSTOMER_TIERS,
    REFERENCE_MAX_LENGTH,
    RULE_WINDOW_MAX_MINUTES,
    ClockTimestamp,
)
from ledger.models.limits import SpendCounter, TransferLimit, TransferRule, VelocityBucket
from ledger.models.money import CUSTOMER_REFUNDABLE_KINDS, Hold, LedgerAccount, Posting, Transfer
from ledger.models.outbox import (
    OUTBOX_LAST_ERROR_MAX_LENGTH,
    OUTBOX_MAX_ATTEMPTS,
    OUTBOX_TOPIC_MAX_LENGTH,
    OutboxMessage,
)
from ledger.models.reviews import ReviewCase

__all__ = [
    "CLIENT_ID_MAX_LENGTH",
    "CUSTOMER_REFUNDABLE_KINDS",
    "CUSTOMER_TIERS",
    "OUTBOX_LAST_ERROR_MAX_LENGTH",
    "OUTBOX_MAX_ATTEMPTS",
    "OUTBOX_TOPIC_MAX_LENGTH",
    "REFERENCE_MAX_LENGTH",
    "RULE_WINDOW_MAX_MINUTES",
    "ClockTimestamp",
    "Hold",
    "LedgerAccount",
    "OutboxMessage",
    "Posting",
    "ReviewCase",
    "SpendCounter",
    "Transfer",
    "TransferLimit",
    "TransferRule",
    "VelocityBucket",
]
