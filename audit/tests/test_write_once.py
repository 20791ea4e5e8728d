"""The database itself refuses to change the audit trail, whoever asks."""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.utils import DatabaseError

from accounts.services import customer_create
from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record, pii_read_record
from audit.services.sealing import audit_events_seal
from audit.tests.factories import record_event
from fintech.db_privileges import (
    audit_sealer_grants,
    definer_only_tables,
    runtime_read_only_tables,
    state_only_tables,
    write_once_tables,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_runtime_role_may_insert_and_read_but_never_change(runtime_connection):
    event = record_event()

    with runtime_connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == settings.DATABASE_RUNTIME_ROLES["default"]
        cursor.execute(
            "INSERT INTO audit_auditevent (event_type, outcome, actor_user, actor_client, actor_staff, object_type,"
            " object_id, purpose, request_id, user_agent, payload) VALUES ('api.call', 'success', '', '', '', '', '',"
            " '', '', '', '{}') RETURNING id"
        )
        assert cursor.fetchone()[0] > event.id
        for statement in (
            f"UPDATE audit_auditevent SET outcome = 'failure' WHERE id = {event.id}",
            f"DELETE FROM audit_auditevent WHERE id = {event.id}",
            "TRUNCATE audit_auditevent",
            "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_write_once",
            "SET session_replication_role = replica",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                cursor.execute(statement)

    assert AuditEvent.objects.get(id=event.id).outcome == "success"


def test_the_runtime_role_has_ordinary_rights_on_every_other_table(runtime_connection):
    """Except write-once tables (INSERT only), money tables (the ledger's functions only), state-only
    tables (UPDATE of their state columns only), the sealer's tables and what only migrate writes (permissions,
    roles, content types) (SELECT only): fintech/db_privileges.py."""
    write_once = set(write_once_tables("default"))
    read_only = set(runtime_read_only_tables("default"))
    definer_only = set(definer_only_tables("default"))
    sealer_only = set(audit_sealer_grants()[0])
    state_only = {table for table, _ in state_only_tables("default")}
    with runtime_connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = {row[0] for row in cursor.fetchall()}
        for table in sorted(tables):
            cursor.execute(
                "SELECT has_table_privilege(current_user, %s, 'INSERT'),"
                " has_table_privilege(current_user, %s, 'UPDATE')",
                [table, table],
            )
            can_insert, can_update = cursor.fetchone()
            assert can_insert == (table not in definer_only | sealer_only | read_only), table
            assert can_update == (table not in write_once | definer_only | state_only | read_only), table


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET outcome = 'failure'",
        "DELETE FROM audit_auditevent",
        "TRUNCATE audit_auditevent",
        "UPDATE audit_auditseal SET leaf_hash = 'x'",
        "DELETE FROM audit_auditcheckpoint",
    ],
)
def test_even_the_table_owner_is_refused_by_the_triggers(statement):
    record_event()
    assert audit_events_seal().events == 1  # so the seal and checkpoint tables have a row

    with pytest.raises(DatabaseError, match="write-once"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)

    assert AuditEvent.objects.filter(outcome="success").count() == 1


def test_deleting_a_user_does_not_touch_their_audit_events():
    user = customer_create(email="leaver@example.com", password=None)
    record_event(actor=Actor(user=str(user.public_id)))

    user.customer_profile.delete()
    user.delete()

    assert AuditEvent.objects.filter(actor_user=str(user.public_id), event_type="api.call").count() == 1


def test_a_pii_read_without_a_purpose_is_a_programming_error():
    with pytest.raises(ValueError, match="purposes"):
        pii_read_record(
            actor=Actor(staff="s1"), object_type="accounts.user", object_id="u1", fields=["email"], purpose=""
        )
    with pytest.raises(ValueError, match="purposes"):
        audit_event_record(event_type="pii.read", outcome="success", actor=Actor(staff="s1"), purpose="curiosity")

    assert not AuditEvent.objects.filter(event_type="pii.read").exists()


def test_the_database_also_refuses_a_pii_read_without_a_purpose():
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.create(event_type="pii.read", outcome="success", purpose="")


def test_payloads_are_masked_before_they_are_written():
    event = record_event(payload={"card_number": "4111 1111 1111 1111", "note": "mail alice@example.com", "n": 1})

    stored = AuditEvent.objects.get(id=event.id).payload
    assert stored["card_number"] == "[redacted]"
    assert "alice@example.com" not in stored["note"]
    assert stored["n"] == 1


def test_the_runtime_role_chooses_neither_an_events_id_nor_its_time_nor_its_transaction(runtime_connection):
    """Issue 12: a backdated cover record, or one filling a gap in the sequence, is not what the database says."""
    first, last = record_event(1), record_event(2)

    with runtime_connection.cursor() as cursor:
        columns = (
            "event_type, outcome, actor_user, actor_client, actor_staff, object_type, object_id, purpose,"
            " request_id, user_agent, payload"
        )
        values = "'pii.read', 'success', '', '', 'staff-1', '', '', 'kyc_review', '', '', '{}'"
        for chosen in (first.id + 100000, last.id - 1):  # ahead of the sequence, or into the past
            with pytest.raises(psycopg.DatabaseError, match="take their id from the sequence"):
                cursor.execute(f"INSERT INTO audit_auditevent (id, {columns}) VALUES ({chosen}, {values})")
        cursor.execute(
            f"INSERT INTO audit_auditevent (occurred_at, xact_id, {columns})"
            f" VALUES ('2020-01-01T00:00:00Z', 1, {values}) RETURNING id, occurred_at, xact_id"
        )
        event_id, occurred_at, xact_id = cursor.fetchone()
        for statement in (
            "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_identity",
            "SET session_replication_role = replica",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                cursor.execute(statement)

    assert event_id > last.id
    assert occurred_at >= last.occurred_at and occurred_at.year > 2020
    assert xact_id > 1
