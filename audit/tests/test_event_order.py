"""Events are what the database says they are: an id out of turn with its time fails verification (issue 12, item 4).

The database gives each event its id (the sequence) and then its time
(clock_timestamp(), audit migration 0006) in one trigger, so in id order time
never goes backwards by more than the verifier's CLOCK_TOLERANCE. Only the
table owner can switch that trigger off: these tests do, to write what an
insider with the owner's login could.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction

from audit.models import AuditEvent
from audit.services.sealing import audit_events_seal
from audit.services.verification import CLOCK_TOLERANCE, TrailVerifier, audit_trail_verify
from audit.tests.factories import record_event

pytestmark = pytest.mark.django_db


def written_behind_the_trigger(occurred_at, **fields) -> AuditEvent:
    """An event whose time the inserter chose: what only the owner can do, with the identity trigger off."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending trigger events: ALTER TABLE refuses those
        cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_identity")
    try:
        return AuditEvent.objects.create(
            occurred_at=occurred_at, event_type="api.call", outcome="success", actor_user="u1", **fields
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditevent ENABLE ALWAYS TRIGGER audit_auditevent_identity")


def test_the_database_stamps_each_event_when_its_row_is_written_not_when_its_transaction_began():
    first, second = record_event(1), record_event(2)  # one transaction: now() would give both the same time

    first.refresh_from_db()
    second.refresh_from_db()
    assert second.id > first.id
    assert second.occurred_at > first.occurred_at


def test_a_backdated_event_fails_verification_and_is_named_even_once_sealed():
    before = [record_event(n) for n in range(3)]
    backdated = written_behind_the_trigger(before[-1].occurred_at - timedelta(hours=3))
    after = record_event(4)
    audit_events_seal()  # the seal covers the backdated row as it is: only its time gives it away

    report = audit_trail_verify(record=False)

    assert not report.passed
    messages = [message for _, message in report.problems]
    assert len(messages) == 1, messages
    assert messages[0].startswith(f"sequence {backdated.id}: time went backwards")
    assert f"after sequence {before[-1].id}" in messages[0]
    assert report.first_bad_event_id == backdated.id
    assert after.id > backdated.id  # the honest event after it is not blamed


def test_each_backdated_row_is_named_not_only_the_first():
    anchor = record_event(1)
    first = written_behind_the_trigger(anchor.occurred_at - timedelta(days=2))
    second = written_behind_the_trigger(anchor.occurred_at - timedelta(days=1))  # later than `first`, still back

    report = audit_trail_verify(record=False)

    assert [event_id for event_id, _ in report.problems] == [first.id, second.id]


def test_a_difference_within_the_tolerance_is_not_a_problem():
    anchor = record_event(1)
    written_behind_the_trigger(anchor.occurred_at - CLOCK_TOLERANCE / 2)
    audit_events_seal()

    assert audit_trail_verify(record=False).passed


def test_the_check_compares_with_the_latest_time_seen_in_id_order():
    verifier = TrailVerifier({})
    start = record_event(1).occurred_at
    verifier.check_event_order(
        [(1, start), (2, start + timedelta(seconds=10)), (3, start + timedelta(seconds=5)), (5, start)]
    )

    assert [event_id for event_id, _ in verifier.report.problems] == [3, 5]


def test_ids_that_no_event_and_no_seal_hold_are_counted_as_sequence_gaps():
    record_event(1)
    for n in range(2):
        with pytest.raises(RuntimeError), transaction.atomic():
            record_event(10 + n)  # draws an id from the sequence, then rolls back
            raise RuntimeError
    record_event(2)
    audit_events_seal()

    report = audit_trail_verify(record=False)

    assert report.passed  # a rolled-back insert is not tampering
    assert report.sequence_gaps == 2
