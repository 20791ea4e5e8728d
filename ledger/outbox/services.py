"""Writing outbox rows: inside the caller's transaction, with nothing but INSERTs and one indexed read.

The caller (a ledger service, through `ledger.notifications`) holds account
row locks, so nothing here talks to the network or the broker: delivery is
requested by a `transaction.on_commit` callback, after the locks are gone,
and a failure to request it loses nothing, because the row is committed and
`ledger.dispatch_outbox` sweeps whatever no task delivered.
"""

from __future__ import annotations

import logging
from functools import partial

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction

from accounts.models import OAuthClientPolicy
from ledger.currencies import format_amount
from ledger.models import OutboxMessage, Posting, Transfer

logger = logging.getLogger(__name__)

TOPIC_TRANSFER_POSTED = "transfer.posted"
TOPIC_ALERT_RAISED = "alert.raised"
# An alert emails at most this many members of the role on duty.
MAX_ALERT_RECIPIENTS = 50
# The broker is asked at most this often per message before the sweeper is left to it.
ENQUEUE_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
# A queued delivery request older than this is dropped by the worker: by then the sweeper has it.
ENQUEUE_EXPIRES_SECONDS = 3600


def _postings_of(transfer: Transfer) -> list[Posting]:
    # `transfer_post` leaves what it wrote on the instance (accounts included): no extra query.
    postings = getattr(transfer, "posting_list", None)
    if postings is None:
        postings = list(transfer.postings.select_related("account").order_by("id"))
    return postings


def _direction(sides: set[str]) -> str:
    """What the transfer did for one customer: money out, money in, or between their own accounts."""
    return next(iter(sides)) if len(sides) == 1 else "internal"


def transfer_posted_payload(transfer: Transfer) -> dict[str, str]:
    """Ids, amount as text, currency, kind: nothing about people, nothing the reference might hold."""
    return {
        "transfer": str(transfer.public_id),
        "kind": transfer.kind,
        "amount": format_amount(transfer.amount_minor, transfer.currency),
        "amount_minor": str(transfer.amount_minor),
        "currency": transfer.currency,
    }


def transfer_direction_for(transfer: Transfer, message: OutboxMessage) -> str:
    """What the transfer did for the message's recipient, read from the postings, not from the stored payload
    (written once, but a sender never trusts a row it did not need to read: issue 12)."""
    sides = {
        "debit" if posting.amount_minor < 0 else "credit"
        for posting in _postings_of(transfer)
        if posting.account.owner_id is not None and posting.account.owner_id == message.recipient_user_id
    }
    return _direction(sides) if sides else ""


def _client_has_webhook(client_id: str) -> bool:
    return OAuthClientPolicy.objects.filter(application__client_id=client_id).exclude(webhook_url="").exists()


def outbox_transfer_posted_record(*, transfer: Transfer) -> list[OutboxMessage]:
    """Owe a `transfer.posted` notification to everyone the transfer concerns, in the caller's transaction.

    One email per customer whose account the transfer debits or credits
    (platform accounts have no owner and get none; a customer on both sides
    gets one, "internal"), plus one webhook when the transfer came through an
    OAuth client with a webhook URL. Must run inside the transaction that
    posts the transfer: the rows commit or vanish with it.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("outbox rows are written inside the transaction of the change they announce")
    written = getattr(transfer, "outbox_message_ids", None)
    if written is not None:
        # `ledger_transfer_create` (migration 0005) wrote the same rows in its one call; only delivery is left.
        _delivery_on_commit(written)
        return [OutboxMessage(pk=message_id) for message_id in written]
    payload = transfer_posted_payload(transfer)
    sides_by_owner: dict[int, set[str]] = {}
    for posting in _postings_of(transfer):
        owner_id = posting.account.owner_id
        if owner_id is not None:
            sides_by_owner.setdefault(owner_id, set()).add("debit" if posting.amount_minor < 0 else "credit")
    messages = [
        OutboxMessage(
            topic=TOPIC_TRANSFER_POSTED,
            channel=OutboxMessage.Channel.EMAIL,
            recipient_user_id=owner_id,
            payload={**payload, "direction": _direction(sides)},
        )
        for owner_id, sides in sorted(sides_by_owner.items())
    ]
    if transfer.client_id and _client_has_webhook(transfer.client_id):
        messages.append(
            OutboxMessage(
                topic=TOPIC_TRANSFER_POSTED,
                channel=OutboxMessage.Channel.WEBHOOK,
                recipient_client_id=transfer.client_id,
                payload=payload,
            )
        )
    if not messages:
        return []
    created = OutboxMessage.objects.bulk_create(messages)
    _delivery_on_commit([message.pk for message in created])
    return created


def _delivery_on_commit(message_ids: list[int]) -> None:
    # Off only where no worker is meant to listen (the test suite): requests nobody consumes
    # would pile up in a shared broker. The sweeper delivers either way.
    if message_ids and getattr(settings, "OUTBOX_DELIVERY_ON_COMMIT", True):
        transaction.on_commit(partial(outbox_delivery_request, message_ids), robust=True)


def outbox_delivery_request(message_ids: list[int]) -> int:
    """After commit: ask a worker to deliver each message now. Returns how many requests reached the broker.

    Never raises: the money has moved and the rows are committed, so a broker
    outage must not turn a posted transfer into an error for the caller. The
    first refusal stops the loop (the broker is down; do not make the caller
    wait for each message in turn) and the sweeper delivers the rest.
    """
    from ledger.tasks import deliver_outbox_message  # ledger.tasks imports the services: import late

    for sent, message_id in enumerate(message_ids):
        try:
            deliver_outbox_message.apply_async(
                args=[message_id], retry_policy=ENQUEUE_RETRY_POLICY, expires=ENQUEUE_EXPIRES_SECONDS
            )
        except Exception as error:  # any broker failure; the sweeper is the fallback
            logger.warning(
                "outbox delivery not requested: broker unavailable; the sweeper will deliver",
                extra={
                    "outbox_message_ids": message_ids[sent:],
                    "error": type(error).__name__,
                },
            )
            return sent
    return len(message_ids)


def outbox_alert_record(alert) -> list[OutboxMessage]:
    """The alert service's email channel (`audit.alerts`): one email per active member of the role on duty.

    Registered in `LedgerConfig.ready`. Written in the caller's transaction,
    like every outbox row; delivery reads the address when it sends.
    """
    recipients = list(
        Group.objects.filter(name=alert.role, user__is_active=True)
        .order_by("user__id")
        .values_list("user__id", flat=True)[:MAX_ALERT_RECIPIENTS]
    )
    payload = {
        "kind": alert.kind,
        "summary": alert.summary,
        "object_type": alert.object_type,
        "object": alert.object_id,
    }
    created = OutboxMessage.objects.bulk_create(
        OutboxMessage(
            topic=TOPIC_ALERT_RAISED,
            channel=OutboxMessage.Channel.EMAIL,
            recipient_user_id=user_id,
            payload=payload,
        )
        for user_id in recipients
    )
    _delivery_on_commit([message.pk for message in created])
    return created
