"""Celery tasks of the audit domain: take no payload, call one service, safe to repeat."""

from __future__ import annotations

from celery import shared_task

from audit.services.events import Actor
from audit.services.sealing import audit_events_seal
from audit.services.verification import audit_trail_verify


@shared_task(name="audit.seal_pending_events", ignore_result=True, time_limit=120, soft_time_limit=100)
def seal_pending_events() -> int:
    """Beat runs this every few seconds; concurrent runs skip on the advisory lock."""
    return audit_events_seal().events


@shared_task(name="audit.verify_trail", ignore_result=True, time_limit=1800, soft_time_limit=1700)
def verify_trail() -> bool:
    """Hourly full verification, in the sealer (the worker): recorded for the admin page, alerted when it fails."""
    return audit_trail_verify(actor=Actor.system("audit_verification")).passed
