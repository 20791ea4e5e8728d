"""Celery tasks of the ledger: take ids (or nothing), call one service, safe to repeat."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from audit.services.events import Actor
from ledger.outbox.delivery import Outcome, outbox_dispatch_due, outbox_message_deliver
from ledger.services.holds import holds_expire
from ledger.services.policy import velocity_buckets_prune
from ledger.services.reviews import review_cases_escalate


@shared_task(name="ledger.expire_holds", ignore_result=True, time_limit=120, soft_time_limit=100)
def expire_holds() -> int:
    """Beat runs this every minute: release one bounded batch of overdue holds.

    Idempotent: an expired hold is no longer active, so a repeated or
    concurrent run skips it. A backlog drains over successive runs.
    """
    return holds_expire(now=timezone.now(), actor=Actor.system("ledger.expire_holds"))


@shared_task(
    name="ledger.deliver_outbox_message", ignore_result=True, acks_late=True, time_limit=60, soft_time_limit=45
)
def deliver_outbox_message(message_id: int) -> str:
    """Requested after the commit that wrote the message: deliver it now, once.

    Idempotent: the message row is taken with FOR UPDATE SKIP LOCKED and only
    while pending and due, so a repeated, redelivered (acks_late) or
    concurrent run, or one racing the sweeper, sends nothing more. A failure
    is recorded on the row and retried by `ledger.dispatch_outbox`, not by
    Celery, so the schedule survives a lost broker.
    """
    return outbox_message_deliver(message_id=message_id).value


@shared_task(name="ledger.dispatch_outbox", ignore_result=True, time_limit=120, soft_time_limit=100)
def dispatch_outbox() -> int:
    """Beat runs this every 30 seconds: deliver due pending outbox messages in bounded batches.

    Picks up whatever no on-commit request delivered (broker down at commit,
    worker lost) and every scheduled retry. Idempotent, and safe to run in
    several workers at once (row locks, SKIP LOCKED). Returns how many it delivered.
    """
    return outbox_dispatch_due()[Outcome.DELIVERED]


@shared_task(name="ledger.escalate_review_cases", ignore_result=True, time_limit=120, soft_time_limit=100)
def escalate_review_cases() -> int:
    """Beat runs this every 5 minutes: alert on review cases nobody decided in time; never decide them.

    Idempotent: a case is escalated once (the conditional update on
    `escalated_at` lets one run win), so repeated or concurrent runs alert once.
    """
    return review_cases_escalate()


@shared_task(name="ledger.prune_velocity_buckets", ignore_result=True, time_limit=120, soft_time_limit=100)
def prune_velocity_buckets() -> int:
    """Beat runs this hourly: drop velocity buckets older than the longest rule window can reach."""
    return velocity_buckets_prune(now=timezone.now())
