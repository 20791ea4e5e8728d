"""A real worker consumes a real task from the real broker."""

from __future__ import annotations

import uuid

import pytest

from conftest import wait_until
from fintech.redis_client import get_redis
from fintech.tasks import heartbeat, heartbeat_key


@pytest.mark.slow
def test_a_worker_process_runs_the_heartbeat_sent_through_redis(client, celery_worker_process, db):
    nonce = uuid.uuid4().hex

    heartbeat.delay(nonce)

    wait_until(lambda: get_redis().hget(heartbeat_key(), "nonce") == nonce.encode(), timeout_seconds=30)
    age = client.get("/readyz").json()["celery_worker_heartbeat_age_seconds"]
    assert age is not None
    assert 0 <= age < 30
