"""Acceptance (b): 20 simultaneous transfer requests with one Idempotency-Key make exactly one transfer."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection
from django.test import Client

from accounts.tests.access_matrix import issue_token
from accounts.tests.oauth_helpers import mobile_client
from audit.models import AuditEvent
from ledger.models import Transfer
from ledger.tests.factories import account, customer, generous_limits

pytestmark = pytest.mark.django_db(transaction=True)


def test_twenty_requests_with_one_key_move_money_once():
    generous_limits()
    owner = customer()
    source = account(owner=owner, balance_minor=100_000)
    target = account()
    token = issue_token(application=mobile_client(), user=owner, scope="transfers:write")
    body = json.dumps(
        {
            "from_account": str(source.public_id),
            "to_account": str(target.public_id),
            "amount": "7.00",
            "currency": "EUR",
            "reference": "once",
        }
    )
    barrier = threading.Barrier(20)
    outcomes: list[tuple[int, str | None, str | None]] = []
    calls: list[tuple[str, int]] = []
    lock = threading.Lock()

    def send():
        try:
            barrier.wait()
            response = Client().post(
                "/v1/transfers",
                data=body,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
                HTTP_IDEMPOTENCY_KEY="one-key",
            )
            transfer_id = response.json().get("id") if response.status_code == 201 else None
            with lock:
                outcomes.append((response.status_code, response.headers.get("Idempotent-Replayed"), transfer_id))
                calls.append((response["X-Request-ID"], response.status_code))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert Transfer.objects.filter(kind="transfer").count() == 1
    assert len(outcomes) == 20
    assert sum(1 for status, replayed, _ in outcomes if status == 201 and replayed is None) == 1
    assert {status for status, _, _ in outcomes} <= {201, 409}
    assert len({transfer_id for _, _, transfer_id in outcomes if transfer_id}) == 1  # replays name the same transfer
    source.refresh_from_db()
    target.refresh_from_db()
    assert (source.posted_minor, target.posted_minor) == (99_300, 700)
    # Each of the 20 calls is audited exactly once: the winner's row in its transaction, the others' after a 409
    # (rolled back) or a replay.
    recorded = AuditEvent.objects.filter(event_type="api.call").values_list("request_id", "payload__status")
    assert sorted(recorded) == sorted(calls)
