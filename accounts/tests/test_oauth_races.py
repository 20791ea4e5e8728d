"""Racing exchanges of one authorization code: never two live token sets."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client
from oauth2_provider.models import AccessToken, RefreshToken

from accounts.services import customer_create
from accounts.tests.oauth_helpers import exchange_code, mobile_client, obtain_code, pkce_pair
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


def test_eight_simultaneous_exchanges_of_one_code_leave_no_usable_token():
    customer = customer_create(email="racer@example.com", password=None)
    app = mobile_client()
    browser = Client()
    browser.force_login(customer)
    verifier, challenge = pkce_pair()
    code = obtain_code(browser, app, challenge)["code"]
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def exchange():
        try:
            barrier.wait()
            response = exchange_code(Client(), app, code, verifier)
            with lock:
                statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=exchange) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(statuses) == [200] + [400] * 7  # exactly one exchange went through...
    assert not AccessToken.objects.exists()  # ...and the replays revoked what it got
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    assert AuditEvent.objects.filter(event_type="token.code_reuse_detected").count() >= 1
