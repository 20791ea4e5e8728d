"""Identity capture attempts that reach the vault are bounded per customer (probing for taken national IDs)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from accounts.tests.test_identity_api import BODY, LIVE, new_customer, put
from tokenvault.models import VaultRecord


@pytest.fixture(autouse=True)
def attempt_rate(field_keys, settings):
    settings.IDENTITY_CAPTURE_ATTEMPT_RATE = "3/1d"


def probe(n: int) -> dict:
    """Another customer's phone, so each attempt is refused after the vault call, never captured."""
    return {**BODY, "national_id": f"PROBE{n:06d}X"}


@LIVE
def test_refused_attempts_count_and_the_fourth_is_429_before_the_vault(vault_live):
    _, holder_token = new_customer()
    assert put(holder_token).status_code == 200  # holds BODY's phone
    _, prober = new_customer()

    statuses = [put(prober, probe(n)).status_code for n in range(5)]

    assert statuses == [409, 409, 409, 429, 429]
    last = put(prober, probe(99))
    assert last.json()["code"] == "identity_attempts_exceeded"
    assert int(last["Retry-After"]) > 0
    vaulted = VaultRecord.objects.using("vault").filter(token_type="national_id").count()
    assert vaulted == 1 + 3  # the holder's ID and the three attempts that were let through


@LIVE
def test_racing_attempts_of_one_customer_let_exactly_the_limit_through(vault_live):
    _, holder_token = new_customer()
    assert put(holder_token).status_code == 200
    _, prober = new_customer()
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def attempt(n: int) -> None:
        try:
            barrier.wait()
            status = put(prober, probe(n)).status_code
            with lock:
                statuses.append(status)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(statuses) == [409, 409, 409, 429, 429, 429, 429, 429]
