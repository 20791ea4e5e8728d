"""Delivering outbox messages: once each, under the row lock, outcome recorded in the same transaction.

`outbox_message_deliver` opens a durable transaction, takes the message row
with `SELECT ... FOR UPDATE SKIP LOCKED` (only if still pending and due),
sends, and marks the row delivered before COMMIT. Whoever else asks for the
same message meanwhile (the on-commit task, the sweeper, a redelivered task)
skips the locked row and returns; once committed, the row is no longer
pending. So two of our processes never both send one message.

What remains is the boundary with the outside world: if the process dies or
the database fails after the recipient accepted the message but before COMMIT,
the row stays pending and is sent again. Webhook receivers deduplicate on
`X-Fintech-Delivery` (stable per message); an email could arrive twice in
that window. That window is as small as one COMMIT; it cannot be closed
without the recipient's cooperation.

Failures: attempts + 1 and a retry after 30 s x 2^(attempts-1) (capped at an
hour) with jitter; after `OUTBOX_MAX_ATTEMPTS` the message is `failed` and a
`notification.failed` audit event is written in the same transaction.
Problems no retry can fix (no email address, no webhook URL, a URL we refuse,
a vanished transfer) fail at once.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import Counter
from datetime import timedelta
from enum import StrEnum

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Now

from accounts.models import OAuthClientPolicy
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from fintech.redaction import scrub_text
from ledger.models import OUTBOX_LAST_ERROR_MAX_LENGTH, OUTBOX_MAX_ATTEMPTS, OutboxMessage, Transfer
from ledger.outbox.emails import EmailRefused, alert_email_send, transfer_posted_email_send
from ledger.outbox.services import (
    TOPIC_ALERT_RAISED,
    TOPIC_TRANSFER_POSTED,
    transfer_direction_for,
    transfer_posted_payload,
)
from ledger.outbox.webhooks import WebhookRefused, webhook_request_build, webhook_send

logger = logging.getLogger(__name__)

ACTOR = Actor.system("ledger.outbox")
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 3600
# The sweeper's bounds: rows per query, queries per run, and wall time per run
# (it stops starting new deliveries after this; the task's time limit is above it).
DISPATCH_BATCH_SIZE = 100
DISPATCH_MAX_BATCHES = 10
DISPATCH_BUDGET_SECONDS = 60.0


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY_SCHEDULED = "retry_scheduled"
    FAILED = "failed"
    SKIPPED = "skipped"  # locked by another deliverer, already delivered or failed, not due, or unknown


class MessageUndeliverable(Exception):
    """Nothing to send this message to or about: a permanent failure."""


PERMANENT_ERRORS = (MessageUndeliverable, EmailRefused, WebhookRefused)


def retry_delay_seconds(failed_attempts: int) -> int:
    """30 s x 2^(failed_attempts - 1), capped at an hour, with "equal jitter": between half and all of it.

    The jitter spreads the retries of messages that failed together (a
    receiver's outage) so they do not all return in the same second.
    """
    if failed_attempts < 1:
        raise ValueError("a retry follows at least one failed attempt")
    ceiling = min(RETRY_BASE_SECONDS * 2 ** min(failed_attempts - 1, 16), RETRY_MAX_SECONDS)
    half = ceiling // 2
    return ceiling - half + secrets.randbelow(half + 1)


def error_summary(error: BaseException) -> str:
    """What `last_error` keeps: the error's class and text, scrubbed of secrets and PII, bounded."""
    text = str(error)
    summary = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return scrub_text(summary[: OUTBOX_LAST_ERROR_MAX_LENGTH * 4])[:OUTBOX_LAST_ERROR_MAX_LENGTH]


def _transfer_of(message: OutboxMessage) -> Transfer:
    try:
        return Transfer.objects.get(public_id=message.payload.get("transfer"))
    except (Transfer.DoesNotExist, ValueError, TypeError):
        raise MessageUndeliverable("the transfer this message announces does not exist") from None


def _send(message: OutboxMessage) -> None:
    """Render and send one message; raises on failure (permanent ones are `PERMANENT_ERRORS`)."""
    if message.topic == TOPIC_ALERT_RAISED and message.channel == OutboxMessage.Channel.EMAIL:
        alert_email_send(recipient=message.recipient_user, payload=message.payload)
        return
    if message.topic != TOPIC_TRANSFER_POSTED:
        raise MessageUndeliverable(f"no sender for topic {message.topic[:64]!r}")
    transfer = _transfer_of(message)
    if message.channel == OutboxMessage.Channel.EMAIL:
        transfer_posted_email_send(
            recipient=message.recipient_user, transfer=transfer, direction=transfer_direction_for(transfer, message)
        )
        return
    if message.channel == OutboxMessage.Channel.WEBHOOK:
        # Read now, not copied at write time: staff may have changed or removed it since.
        url = (
            OAuthClientPolicy.objects.filter(application__client_id=message.recipient_client_id)
            .values_list("webhook_url", flat=True)
            .first()
        )
        if not url:
            raise MessageUndeliverable("the client has no webhook URL")
        # Built from the transfer row, which nobody can rewrite, never from the stored payload (issue 12).
        data = {
            **transfer_posted_payload(transfer),
            "reference": transfer.reference,
            "posted_at": transfer.created_at.isoformat(),
        }
        webhook_send(
            webhook_request_build(
                url=url,
                client_id=message.recipient_client_id,
                event=message.topic,
                delivery_id=str(message.public_id),
                data=data,
            )
        )
        return
    raise MessageUndeliverable(f"unknown channel {message.channel[:16]!r}")


def _update_locked(message: OutboxMessage, **fields) -> None:
    """Write the outcome to the row we hold locked; anything but one row updated is a bug."""
    updated = OutboxMessage.objects.filter(pk=message.pk, status=OutboxMessage.Status.PENDING).update(**fields)
    if updated != 1:
        raise RuntimeError(f"{message}: expected to update 1 locked pending row, updated {updated}")


def _fail(message: OutboxMessage, *, attempts: int, last_error: str) -> Outcome:
    _update_locked(message, status=OutboxMessage.Status.FAILED, attempts=attempts, last_error=last_error)
    audit_event_record(
        event_type="notification.failed",
        outcome=AuditEvent.Outcome.FAILURE,
        actor=ACTOR,
        object_type="ledger.outbox_message",
        object_id=str(message.public_id),
        payload={
            "topic": message.topic,
            "channel": message.channel,
            "transfer": message.payload.get("transfer", ""),
            "attempts": attempts,
            "last_error": last_error,
        },
    )
    logger.error(
        "outbox message failed for good",
        extra={"outbox_message": str(message.public_id), "attempts": attempts, "error": last_error},
    )
    return Outcome.FAILED


def _retry_later(message: OutboxMessage, *, attempts: int, last_error: str) -> Outcome:
    delay_seconds = retry_delay_seconds(attempts)
    _update_locked(
        message,
        attempts=attempts,
        last_error=last_error,
        next_attempt_at=Now() + timedelta(seconds=delay_seconds),
    )
    logger.warning(
        "outbox delivery failed; retry scheduled",
        extra={
            "outbox_message": str(message.public_id),
            "attempts": attempts,
            "retry_in_seconds": delay_seconds,
            "error": last_error,
        },
    )
    return Outcome.RETRY_SCHEDULED


def outbox_message_deliver(*, message_id: int) -> Outcome:
    """Send one message if it is pending, due and not being sent by someone else; record the outcome.

    Idempotent: a delivered or failed message, or one another process holds,
    is skipped. The row lock is held while sending, so the send is bounded by
    the channel's timeouts (webhooks: 5 s connect, 5 s read; email: EMAIL_TIMEOUT).
    """
    with transaction.atomic(durable=True):
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(pk=message_id, status=OutboxMessage.Status.PENDING, next_attempt_at__lte=Now())
            .first()
        )
        if message is None:
            return Outcome.SKIPPED
        attempts = message.attempts + 1
        try:
            # A savepoint: should sending hit a database error, the row can still record the failure.
            with transaction.atomic():
                _send(message)
        except PERMANENT_ERRORS as error:
            return _fail(message, attempts=attempts, last_error=error_summary(error))
        except Exception as error:  # any sending failure is retried, up to the limit
            if attempts >= OUTBOX_MAX_ATTEMPTS:
                return _fail(message, attempts=attempts, last_error=error_summary(error))
            return _retry_later(message, attempts=attempts, last_error=error_summary(error))
        _update_locked(message, status=OutboxMessage.Status.DELIVERED, attempts=attempts, delivered_at=Now())
    return Outcome.DELIVERED


def outbox_dispatch_due(
    *,
    batch_size: int = DISPATCH_BATCH_SIZE,
    max_batches: int = DISPATCH_MAX_BATCHES,
    budget_seconds: float = DISPATCH_BUDGET_SECONDS,
) -> Counter[Outcome]:
    """The sweeper: deliver due pending messages, oldest due first, in bounded batches.

    Catches what the on-commit request missed (broker down at commit, worker
    lost) and every scheduled retry. Walks the due set by (next_attempt_at, id),
    so a row skipped because another process holds it is not revisited in this
    run. Stops after `max_batches` batches or `budget_seconds`; the rest waits
    for the next run.
    """
    if batch_size < 1 or max_batches < 1:
        raise ValueError("batch_size and max_batches must be positive")
    deadline = time.monotonic() + budget_seconds
    outcomes: Counter[Outcome] = Counter()
    after: tuple | None = None
    for _ in range(max_batches):
        due = OutboxMessage.objects.filter(status=OutboxMessage.Status.PENDING, next_attempt_at__lte=Now())
        if after is not None:
            due = due.filter(Q(next_attempt_at__gt=after[0]) | Q(next_attempt_at=after[0], id__gt=after[1]))
        batch = list(due.order_by("next_attempt_at", "id").values_list("next_attempt_at", "id")[:batch_size])
        for next_attempt_at, message_id in batch:
            if time.monotonic() >= deadline:
                return outcomes
            outcomes[outbox_message_deliver(message_id=message_id)] += 1
            after = (next_attempt_at, message_id)
        if len(batch) < batch_size:
            break
    return outcomes
