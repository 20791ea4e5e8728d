"""The transactional outbox: notifications that commit with the money movement (ADR 0010)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from ledger.models.base import CLIENT_ID_MAX_LENGTH, ClockTimestamp

OUTBOX_TOPIC_MAX_LENGTH = 64
OUTBOX_LAST_ERROR_MAX_LENGTH = 500
# After this many failed attempts a message is `failed` (and audited), never retried on its own.
OUTBOX_MAX_ATTEMPTS = 10


class OutboxMessage(models.Model):
    """A notification owed to someone, written in the transaction of the change it announces.

    Rows are INSERTed next to the postings (`ledger.notifications`), so "money
    moved" and "tell them" commit together or not at all; a relay
    (`ledger.outbox.delivery`) then sends each committed row once, under its
    row lock, and marks it delivered in the same transaction.

    No personal data here: an email row points at the user and the address is
    read at delivery time; the payload holds ids, amounts as strings, currency
    and kind. `public_id` is the delivery id partners see (`X-Fintech-Delivery`)
    and deduplicate on; the integer id never leaves the platform.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        WEBHOOK = "webhook", "Webhook"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    topic = models.CharField(max_length=OUTBOX_TOPIC_MAX_LENGTH)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    recipient_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="outbox_messages"
    )
    recipient_client_id = models.CharField(max_length=CLIENT_ID_MAX_LENGTH, blank=True, help_text="OAuth client id")
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_default=ClockTimestamp())
    last_error = models.CharField(max_length=OUTBOX_LAST_ERROR_MAX_LENGTH, blank=True)
    created_at = models.DateTimeField(db_default=ClockTimestamp())
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="ledger_outbox_due_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(channel__in=["email", "webhook"]), name="ledger_outbox_channel_valid"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "delivered", "failed"]), name="ledger_outbox_status_valid"
            ),
            # An email goes to a user, a webhook to an OAuth client; never both, never neither.
            models.CheckConstraint(
                condition=Q(channel="email", recipient_user__isnull=False, recipient_client_id="")
                | (Q(channel="webhook", recipient_user__isnull=True) & ~Q(recipient_client_id="")),
                name="ledger_outbox_recipient_matches_channel",
            ),
            models.CheckConstraint(
                condition=Q(attempts__lte=OUTBOX_MAX_ATTEMPTS), name="ledger_outbox_attempts_bounded"
            ),
            models.CheckConstraint(
                condition=Q(status="delivered", delivered_at__isnull=False)
                | (~Q(status="delivered") & Q(delivered_at__isnull=True)),
                name="ledger_outbox_delivered_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"outbox message {self.public_id}"
