"""`audit_verify` over the database: passes on an intact trail, names the exact row that was changed."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.models import AuditEvent, AuditVerification
from audit.progress import ProgressBar
from audit.services.events import Actor, audit_event_record
from audit.services.sealing import audit_events_seal

pytestmark = pytest.mark.django_db


def record_and_seal(count: int = 30) -> list[AuditEvent]:
    events = [
        audit_event_record(event_type="api.call", outcome="success", actor=Actor(user="u1"), payload={"n": n})
        for n in range(count)
    ]
    audit_events_seal(batch_size=10)
    return events


def run_verify(*args: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command("audit_verify", *args, stdout=stdout, stderr=stderr)
    except CommandError as error:
        return error.returncode, stdout.getvalue(), stderr.getvalue()
    return 0, stdout.getvalue(), stderr.getvalue()


def bypassing_the_trigger(sql: str, params: list) -> None:
    """What only a table owner can do: switch the write-once trigger off, change a row, switch it back on."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_write_once")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE audit_auditevent ENABLE ALWAYS TRIGGER audit_auditevent_write_once")


def test_an_intact_trail_passes_and_the_outcome_is_recorded():
    record_and_seal(30)

    code, stdout, stderr = run_verify()

    assert code == 0, stderr
    assert stdout.splitlines() == [
        "checkpoints checked: 3",
        "events checked: 30",
        "events purged: 0",
        "events unsealed: 0",
        "sequence gaps: 0 (inserts rolled back, or deleted unsealed)",
        "newest exported checkpoint: not configured (AUDIT_CHECKPOINT_EXPORT_DIR)",
        "audit trail verification PASSED",
    ]
    assert stderr == ""
    verification = AuditVerification.objects.get()
    assert (verification.passed, verification.checkpoints_checked, verification.events_checked) == (True, 3, 30)


def test_no_record_leaves_no_verification_row():
    record_and_seal(3)

    assert run_verify("--no-record")[0] == 0
    assert not AuditVerification.objects.exists()


def test_an_event_changed_after_sealing_fails_and_names_its_sequence_number():
    events = record_and_seal(30)
    tampered = events[17]

    bypassing_the_trigger("UPDATE audit_auditevent SET outcome = 'failure' WHERE id = %s", [tampered.id])
    code, stdout, stderr = run_verify()

    assert code == 1
    assert "checkpoints checked: 3" in stdout
    assert "events checked: 30" in stdout
    assert stderr.splitlines() == [
        f"sequence {tampered.id}: event altered after sealing",
        f"FIRST BAD SEQUENCE: {tampered.id}",
    ]
    verification = AuditVerification.objects.get()
    assert (verification.passed, verification.first_bad_event_id) == (False, tampered.id)


def test_a_sealed_event_deleted_behind_the_triggers_back_is_reported_missing():
    events = record_and_seal(30)
    deleted = events[4]

    bypassing_the_trigger("DELETE FROM audit_auditevent WHERE id = %s", [deleted.id])
    code, stdout, stderr = run_verify()

    assert code == 1
    assert "events checked: 29" in stdout
    assert "events purged: 0" in stdout
    assert stderr.splitlines() == [
        f"sequence {deleted.id}: sealed event is missing (deleted)",
        f"FIRST BAD SEQUENCE: {deleted.id}",
    ]


def test_at_most_fifty_problems_are_printed_and_the_first_bad_one_is_named():
    events = record_and_seal(60)

    bypassing_the_trigger("UPDATE audit_auditevent SET outcome = 'denied' WHERE id >= %s", [events[0].id])
    code, _, stderr = run_verify()

    lines = stderr.splitlines()
    assert code == 1
    assert len(lines) == 52
    assert lines[0] == f"sequence {events[0].id}: event altered after sealing"
    assert lines[-2:] == ["... and 10 more problems", f"FIRST BAD SEQUENCE: {events[0].id}"]


def test_the_progress_bar_is_drawn_for_big_totals_only():
    small, big = io.StringIO(), io.StringIO()

    with ProgressBar(10, stream=small) as bar:
        bar(10)
    with ProgressBar(5000, stream=big, width=10) as bar:
        for _ in range(50):
            bar(100)

    assert small.getvalue() == ""
    drawn = big.getvalue()
    assert drawn.endswith("\r[##########] 5000/5000 events\n")
    assert "\r[#####.....] 2500/5000 events" in drawn
    assert drawn.count("\r") <= 12  # off a terminal: one redraw per bar cell, plus the final one
