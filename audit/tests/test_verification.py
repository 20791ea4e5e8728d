"""The verifier cannot be talked out of a deletion by a forged purge record."""

from __future__ import annotations

import pytest
from django.db import connection

from audit.models import AuditCheckpoint
from audit.services.events import Actor, audit_event_record
from audit.services.sealing import audit_events_seal
from audit.services.verification import audit_trail_verify
from audit.tests.factories import record_event

pytestmark = pytest.mark.django_db


def test_a_forged_purge_record_does_not_excuse_a_deleted_row():
    events = [record_event(n) for n in range(3)]
    audit_events_seal()
    checkpoint = AuditCheckpoint.objects.get()
    # Anyone who can insert events could write this; no archive backs it.
    audit_event_record(
        event_type="audit.purged",
        outcome="success",
        actor=Actor.system("audit_purge"),
        payload={"through_checkpoint_id": checkpoint.id},
    )
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_write_once")
        cursor.execute("DELETE FROM audit_auditevent WHERE id = %s", [events[1].id])
        cursor.execute("ALTER TABLE audit_auditevent ENABLE ALWAYS TRIGGER audit_auditevent_write_once")

    report = audit_trail_verify(record=False)

    assert not report.passed
    assert report.first_bad_event_id == events[1].id
