"""Celery tasks of the token vault (API role): take no payload, call one service, safe to repeat."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from tokenvault.services.reaper import vault_orphans_reap


@shared_task(name="tokenvault.reap_orphans", ignore_result=True, time_limit=3600, soft_time_limit=3500)
def reap_orphans() -> int:
    """Daily: shred vault records nothing references after VAULT_ORPHAN_GRACE_HOURS (ADR 0012).

    Interrupted runs lose nothing: each shred commits on its own in the vault
    and the next run walks the candidates again.
    """
    return vault_orphans_reap(grace_hours=settings.VAULT_ORPHAN_GRACE_HOURS).shredded
