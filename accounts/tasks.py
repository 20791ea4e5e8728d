"""Celery tasks of the accounts domain: take no payload, call one service, safe to repeat."""

from __future__ import annotations

from celery import shared_task

from accounts.access_changes.services import access_changes_alert


@shared_task(name="accounts.alert_unapproved_access_changes", ignore_result=True, time_limit=120, soft_time_limit=100)
def alert_unapproved_access_changes() -> int:
    """Beat runs this every minute: one alert per access change made outside four eyes.

    Idempotent and safe in several workers at once: which events were alerted
    is kept in PostgreSQL (`AccessChangeAlert`), claimed with ON CONFLICT.
    """
    return access_changes_alert()


@shared_task(name="accounts.expire_approval_requests", ignore_result=True, time_limit=120, soft_time_limit=100)
def expire_approval_requests() -> int:
    """Beat runs this every few minutes: four-eyes requests nobody decided in time expire, each on record.

    Approving an expired request is refused anyway; this makes the queue and
    the trail say so. Rows are claimed with SKIP LOCKED, so workers may overlap.
    """
    from accounts.approvals.services import approval_requests_expire

    return approval_requests_expire()
