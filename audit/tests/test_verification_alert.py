"""A failed verification reaches a person: the platform's alert service, not only a row (issue 12, item 4).

The row on the checkpoint page waits for someone to look; the alert is an
error log line, the `fintech_alerts_total` metric and an email to every
security admin (through the outbox), from the command and the hourly task alike.
"""

from __future__ import annotations

import io
import logging

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from accounts.roles import SECURITY_ADMIN
from accounts.services import customer_create
from audit.alerts import ALERTS
from audit.models import AuditEvent, AuditVerification
from audit.services.sealing import audit_events_seal
from audit.services.verification import audit_trail_verify
from audit.tasks import verify_trail
from audit.tests.factories import record_event
from ledger.models import OutboxMessage

pytestmark = pytest.mark.django_db
KIND = "audit_verification_failed"


@pytest.fixture
def security_admin():
    user = customer_create(email="security-oncall@example.com", password=None)
    user.groups.add(Group.objects.get_or_create(name=SECURITY_ADMIN)[0])
    return user


@pytest.fixture
def tampered() -> AuditEvent:
    """A sealed event changed afterwards by the table owner, with the write-once trigger off."""
    events = [record_event(n) for n in range(3)]
    audit_events_seal()
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_write_once")
        cursor.execute("UPDATE audit_auditevent SET outcome = 'failure' WHERE id = %s", [events[1].id])
        cursor.execute("ALTER TABLE audit_auditevent ENABLE ALWAYS TRIGGER audit_auditevent_write_once")
    return events[1]


def alerts() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type="alert.raised", payload__kind=KIND).order_by("id"))


def alerts_counted() -> float:
    return ALERTS.labels(kind=KIND)._value.get()


def test_the_hourly_task_alerts_security_admins_when_verification_fails(tampered, security_admin, caplog):
    counted = alerts_counted()

    with caplog.at_level(logging.ERROR, logger="audit.services.verification"):
        assert verify_trail() is False

    verification = AuditVerification.objects.get()
    (alert,) = alerts()
    assert (alert.actor_client, alert.object_type, alert.object_id) == (
        "system:audit_verification",
        "audit.verification",
        str(verification.id),
    )
    assert alert.payload["role"] == SECURITY_ADMIN
    assert f"first bad sequence {tampered.id}" in alert.payload["summary"]
    assert f"sequence {tampered.id}: event altered after sealing" in alert.payload["summary"]
    assert alerts_counted() == counted + 1
    email = OutboxMessage.objects.get(topic="alert.raised")
    assert (email.recipient_user_id, email.payload["kind"]) == (security_admin.pk, KIND)
    assert any(record.message == "audit trail verification FAILED" for record in caplog.records)


def test_the_command_alerts_too_even_when_it_records_nothing(tampered):
    with pytest.raises(CommandError):
        call_command("audit_verify", "--no-record", stdout=io.StringIO(), stderr=io.StringIO())

    (alert,) = alerts()
    assert (alert.actor_client, alert.object_id) == ("system:audit_verify", "")
    assert not AuditVerification.objects.exists()


def test_a_passing_verification_raises_no_alert():
    record_event(1)
    audit_events_seal()

    assert audit_trail_verify().passed
    assert alerts() == []
