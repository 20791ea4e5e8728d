"""`rate_limit.exceeded` under a flood (issue 13): the dedup and the cap live in Redis, so racing web threads (or
machines) write one event per principal a minute and at most the cap per policy. Cost: about 1 s."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from audit.models import AuditEvent
from audit.rate_limits import rate_limit_exceeded_record
from ledger.tests.test_concurrency import run_threads

pytestmark = pytest.mark.django_db(transaction=True)


def test_racing_refusals_of_one_principal_write_one_event():
    request = RequestFactory().get("/v1/accounts", REMOTE_ADDR="192.0.2.77")
    run_threads(
        16,
        lambda _: rate_limit_exceeded_record(
            request, policy="unauthenticated.address", key="address", principal="192.0.2.77"
        ),
    )
    assert AuditEvent.objects.filter(event_type="rate_limit.exceeded", payload__principal="192.0.2.77").count() == 1


def test_racing_refusals_of_many_principals_stop_at_the_cap(settings):
    settings.RATE_LIMIT_AUDIT_EVENTS_PER_MINUTE = 3
    request = RequestFactory().get("/v1/accounts")
    run_threads(
        12,
        lambda index: rate_limit_exceeded_record(
            request, policy="api_read.user", key="user", principal=f"user-{index}"
        ),
    )
    assert AuditEvent.objects.filter(event_type="rate_limit.exceeded", object_id="api_read.user").count() == 3
