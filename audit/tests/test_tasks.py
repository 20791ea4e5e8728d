"""The sealer runs in a real Celery worker process, connected as the runtime role."""

from __future__ import annotations

import pytest

from audit.models import AuditSeal
from audit.tasks import seal_pending_events
from audit.tests.factories import record_event
from conftest import wait_until


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_seals_pending_events_through_the_broker(celery_worker_process):
    events = [record_event(n) for n in range(5)]

    seal_pending_events.delay()

    wait_until(lambda: AuditSeal.objects.count() == 5, timeout_seconds=30)
    assert sorted(AuditSeal.objects.values_list("event_id", flat=True)) == [e.id for e in events]
