"""Celery tasks of the ledger: take no payload, call one service, safe to repeat."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from audit.services.events import Actor
from ledger.services.holds import holds_expire


@shared_task(name="ledger.expire_holds", ignore_result=True, time_limit=120, soft_time_limit=100)
def expire_holds() -> int:
    """Beat runs this every minute: release one bounded batch of overdue holds.

    Idempotent: an expired hold is no longer active, so a repeated or
    concurrent run skips it. A backlog drains over successive runs.
    """
    return holds_expire(now=timezone.now(), actor=Actor.system("ledger.expire_holds"))
