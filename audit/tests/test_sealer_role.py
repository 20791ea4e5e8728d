"""The sealer has a database login of its own; the web's cannot write what the verifier trusts (issue 12, item 3).

Checkpoints, seals, signing keys and verification results are INSERTed only
by `fintech_sealer` (the worker's AUDIT_SEALER_DATABASE_URL); the runtime role
the web connects as may read them and nothing more. These tests log in as each
role to the test database, which got the same post_migrate grants
(fintech/db_privileges.py) as a deployed one. The worker sealing through that
login end to end is audit/tests/test_tasks.py.
"""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings

from conftest import audit_sealer_database_url, database_url
from fintech.db_privileges import audit_sealer_grants

pytestmark = pytest.mark.django_db

INSERTS = {
    "audit_auditsigningkey": "INSERT INTO audit_auditsigningkey (key_id, public_key) VALUES ('insider', '\\x00')",
    "audit_auditcheckpoint": (
        "INSERT INTO audit_auditcheckpoint (sealed_at, first_event_id, last_event_id, event_count, merkle_root,"
        " previous_hash, checkpoint_hash, signature, key_id) VALUES (now(), 1, 1, 1, '', '', 'x', '\\x00', 'insider')"
    ),
    "audit_auditseal": "INSERT INTO audit_auditseal (event_id, checkpoint_id, leaf_hash) VALUES (1, 1, '')",
    "audit_auditverification": (
        "INSERT INTO audit_auditverification (passed, checkpoints_checked, events_checked, detail, result_mac)"
        " VALUES (true, 999, 999, '', '')"
    ),
}


def privileges(url: str, table: str) -> dict[str, bool]:
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT has_table_privilege(current_user, %(t)s, 'SELECT'), has_table_privilege(current_user, %(t)s,"
            " 'INSERT'), has_table_privilege(current_user, %(t)s, 'UPDATE'), has_table_privilege(current_user,"
            " %(t)s, 'DELETE')",
            {"t": table},
        ).fetchone()
    return dict(zip(("select", "insert", "update", "delete"), row, strict=True))


def test_the_sealer_tables_are_the_four_the_verifier_trusts():
    assert sorted(audit_sealer_grants()[0]) == sorted(INSERTS)


@pytest.mark.parametrize("table", sorted(INSERTS))
def test_the_runtime_role_reads_but_cannot_insert_into_the_sealer_tables(table):
    runtime = settings.DATABASE_RUNTIME_ROLES["default"]
    assert runtime != settings.AUDIT_SEALER_DATABASE_ROLE
    with psycopg.connect(database_url("default"), autocommit=True) as connection:
        assert connection.execute("SELECT current_user").fetchone()[0] == runtime
        connection.execute(f"SELECT count(*) FROM {table}")  # the admin still shows them
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            connection.execute(INSERTS[table])


def test_the_sealer_role_inserts_into_its_tables_and_only_reads_the_events_it_seals():
    url = audit_sealer_database_url()
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT current_user").fetchone()[0] == settings.AUDIT_SEALER_DATABASE_ROLE

    for table in INSERTS:
        assert privileges(url, table) == {"select": True, "insert": True, "update": False, "delete": False}, table
    for table in ("audit_auditevent", "audit_auditarchive"):
        assert privileges(url, table) == {"select": True, "insert": False, "update": False, "delete": False}, table
    for table in ("accounts_user", "ledger_transfer", "oauth2_provider_accesstoken", "fintech_idempotencyrecord"):
        assert not any(privileges(url, table).values()), table
