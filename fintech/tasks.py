"""Platform-level Celery tasks."""

from __future__ import annotations

import time

from celery import shared_task

from fintech.redis_client import get_redis, redis_key


def heartbeat_key() -> str:
    return redis_key("celery", "heartbeat")


@shared_task(name="fintech.heartbeat", ignore_result=True, time_limit=10, soft_time_limit=8)
def heartbeat(nonce: str = "") -> None:
    """Proves a worker consumes from the broker: records when (and which nonce) it last ran.

    Beat sends one every 30 seconds; /readyz reports its age. Idempotent: it only
    overwrites one Redis hash.
    """
    get_redis().hset(heartbeat_key(), mapping={"at": f"{time.time():.3f}", "nonce": nonce})


@shared_task(name="fintech.purge_idempotency_records", ignore_result=True, time_limit=600, soft_time_limit=550)
def purge_idempotency_records() -> int:
    """Hourly: drop Idempotency-Key records past their lifetime (at least 24 hours)."""
    from fintech.idempotency import idempotency_records_purge

    return idempotency_records_purge()
