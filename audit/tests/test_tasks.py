"""The sealer runs in a real Celery worker process, connected as the sealer's own database role (issue 12)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from audit.models import AuditCheckpoint, AuditSeal, AuditVerification
from audit.services.verification import verification_authentic
from audit.tasks import seal_pending_events, verify_trail
from audit.tests.factories import record_event
from conftest import wait_until


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_seals_pending_events_through_the_broker(celery_worker_process):
    events = [record_event(n) for n in range(5)]

    seal_pending_events.delay()

    wait_until(lambda: AuditSeal.objects.count() == 5, timeout_seconds=30)
    assert sorted(AuditSeal.objects.values_list("event_id", flat=True)) == [e.id for e in events]

    verify_trail.delay()

    wait_until(AuditVerification.objects.exists, timeout_seconds=30)
    verification = AuditVerification.objects.get()
    assert verification.passed and verification_authentic(verification)
    assert verification.checkpoints_checked == AuditCheckpoint.objects.count() >= 1
    # The worker's `default` login is the runtime role, which may not insert these rows, and it holds no owner
    # login (conftest.subprocess_env): the sealer's own connection (AUDIT_SEALER_DATABASE_URL) wrote them.
    runtime, sealer = settings.DATABASE_RUNTIME_ROLES["default"], settings.AUDIT_SEALER_DATABASE_ROLE
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT has_table_privilege(%s, 'audit_auditcheckpoint', 'INSERT'),"
            " has_table_privilege(%s, 'audit_auditverification', 'INSERT'),"
            " has_table_privilege(%s, 'audit_auditcheckpoint', 'INSERT')",
            [runtime, runtime, sealer],
        )
        assert cursor.fetchone() == (False, False, True)
