"""The vault role's main-database credential may only append audit events (ADR 0012, fintech/db_privileges.py).

A compromised vault process already holds every vaulted value; it must not
also read customers, balances or OAuth tokens from the main database, nor
rewrite the trail that records what it did. These tests connect as the role
itself (`fintech_vault_audit`) to the test database, which got the same
post_migrate grants as a deployed one.
"""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest
import requests
from django.conf import settings
from django.db import connection

from audit.models import AuditEvent
from audit.services.events import Actor
from conftest import database_url, subprocess_env, vault_audit_database_url
from fintech.db_privileges import grant_runtime_privileges, vault_audit_grants
from fintech.tests.test_settings import ROOT
from tokenvault.client import vault_client
from tokenvault.tests.test_roles import _run, _vault_role

LIVE = pytest.mark.django_db(transaction=True, databases=["default", "vault"])
AUDIT_TABLE = "audit_auditevent"
INSERT_EVENT = (
    "INSERT INTO audit_auditevent (event_type, outcome, actor_user, actor_client, actor_staff, object_type,"
    " object_id, purpose, request_id, user_agent, payload) VALUES ('vault.tokenized', 'success', '', 'client_x', '',"
    " 'tokenvault.record', %s, '', '', '', '{}') RETURNING id, occurred_at, xact_id"
)


@pytest.fixture
def audit_role_connection(django_db_setup):
    """A connection to the test main database as the vault role's audit-append role."""
    with psycopg.connect(vault_audit_database_url(), autocommit=True) as audit_connection:
        yield audit_connection


@pytest.mark.django_db(transaction=True)
def test_the_audit_role_appends_an_event_with_djangos_insert_returning(audit_role_connection):
    with audit_role_connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == settings.VAULT_AUDIT_DATABASE_ROLE
        cursor.execute(INSERT_EVENT, ["tok_card_role_test"])
        event_id, occurred_at, xact_id = cursor.fetchone()

    event = AuditEvent.objects.get(id=event_id)
    assert (event.event_type, event.object_id) == ("vault.tokenized", "tok_card_role_test")
    assert (event.occurred_at, event.xact_id) == (occurred_at, xact_id)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM accounts_user",
        "SELECT * FROM ledger_ledgeraccount",
        "SELECT * FROM ledger_transfer",
        "SELECT * FROM ledger_posting",
        "SELECT * FROM ledger_hold",
        "SELECT * FROM accounts_customerprofile",
        "SELECT * FROM accounts_paymentcard",
        "SELECT * FROM auditlog_logentry",
        "SELECT * FROM oauth2_provider_accesstoken",
        "SELECT * FROM oauth2_provider_refreshtoken",
        "SELECT * FROM django_session",
        "SELECT * FROM fintech_idempotencyrecord",
        "SELECT payload FROM audit_auditevent",  # only the columns INSERT ... RETURNING hands back
        "SELECT actor_user, object_id FROM audit_auditevent",
        "UPDATE audit_auditevent SET outcome = 'failure'",
        "DELETE FROM audit_auditevent",
        "TRUNCATE audit_auditevent",
        "INSERT INTO audit_auditcheckpoint DEFAULT VALUES",
        "UPDATE accounts_user SET is_staff = true",
        "SELECT nextval('ledger_posting_id_seq')",
    ],
)
def test_the_audit_role_is_refused_everything_else(audit_role_connection, statement):
    # InsufficientPrivilege, not UndefinedTable: each statement names a real table.
    with audit_role_connection.cursor() as cursor, pytest.raises(psycopg.errors.InsufficientPrivilege):
        cursor.execute(statement)


@pytest.mark.django_db(transaction=True)
def test_the_audit_role_holds_no_privilege_on_any_other_table_or_sequence(audit_role_connection):
    table, returned_columns, _ = vault_audit_grants()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')"
        )
        relations = cursor.fetchall()
        role = settings.VAULT_AUDIT_DATABASE_ROLE
        granted = []
        for name, kind in relations:
            if kind == "S":
                cursor.execute("SELECT has_sequence_privilege(%s, %s, 'USAGE, SELECT, UPDATE')", [role, name])
            else:
                cursor.execute(
                    "SELECT has_table_privilege(%s, %s, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES,"
                    " TRIGGER') OR has_any_column_privilege(%s, %s, 'SELECT, INSERT, UPDATE, REFERENCES')",
                    [role, name, role, name],
                )
            if cursor.fetchone()[0]:
                granted.append(name)
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        sequence = cursor.fetchone()[0].removeprefix("public.")
        cursor.execute(
            "SELECT column_name FROM information_schema.column_privileges"
            " WHERE grantee = %s AND table_name = %s AND privilege_type = 'SELECT' ORDER BY column_name",
            [role, table],
        )
        selectable = [row[0] for row in cursor.fetchall()]

    assert len(relations) > 40  # the whole schema was looked at, not an empty one
    assert sorted(granted) == sorted([table, sequence])
    assert selectable == returned_columns == ["id", "occurred_at", "xact_id"]


@pytest.mark.django_db(transaction=True)
def test_the_grants_are_reapplied_after_every_migrate_and_a_stray_grant_does_not_survive(audit_role_connection):
    role = connection.ops.quote_name(settings.VAULT_AUDIT_DATABASE_ROLE)
    with connection.cursor() as cursor:
        cursor.execute(f"GRANT SELECT ON accounts_user TO {role}")
        cursor.execute(f"GRANT UPDATE ON audit_auditevent TO {role}")
    with audit_role_connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM accounts_user")  # the stray grant works until the next migrate

    grant_runtime_privileges(using="default")
    grant_runtime_privileges(using="default")  # idempotent

    with audit_role_connection.cursor() as cursor:
        for statement in ("SELECT count(*) FROM accounts_user", "UPDATE audit_auditevent SET outcome = 'failure'"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                cursor.execute(statement)
        cursor.execute(INSERT_EVENT, ["tok_card_after_regrant"])
    assert AuditEvent.objects.filter(object_id="tok_card_after_regrant").count() == 1


@pytest.mark.django_db(transaction=True, databases=["default", "vault"])
def test_the_vault_database_grants_nothing_to_the_audit_role():
    # Not even CONNECT (test_vault_db_login.py has the other logins).
    url = database_url("vault", role=settings.VAULT_AUDIT_DATABASE_ROLE)
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(url, autocommit=True).close()


# --- the vault role's settings and process use it ---------------------------------------------

_DJANGO_AS_VAULT = """
import json, django
django.setup()
from django.conf import settings
from django.db import connections
from audit.services.events import Actor, audit_event_record
from tokenvault.checks import vault_role_separation_check
with connections["default"].cursor() as cursor:
    cursor.execute("SELECT current_user")
    user = cursor.fetchone()[0]
event = audit_event_record(event_type="vault.tokenized", outcome="success", actor=Actor(client="client_settings_test"),
                           object_type="tokenvault.record", object_id="tok_card_settings_test")
print(json.dumps({"user": user, "event_id": event.id, "xact_id": event.xact_id,
                  "checks": [error.id for error in vault_role_separation_check(None)]}))
"""


@pytest.mark.django_db(transaction=True)
def test_the_test_vault_role_settings_connect_as_the_audit_role_and_djangos_insert_works():
    env = {
        **subprocess_env(),
        "DJANGO_SETTINGS_MODULE": "fintech.settings.vault",
        "FINTECH_ENV": "test",
        "VAULT_AUDIT_DATABASE_URL": vault_audit_database_url(),
    }
    result = subprocess.run(
        [sys.executable, "-c", _DJANGO_AS_VAULT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["user"] == settings.VAULT_AUDIT_DATABASE_ROLE
    assert report["checks"] == []
    event = AuditEvent.objects.get(object_id="tok_card_settings_test")
    assert (event.id, event.xact_id) == (report["event_id"], report["xact_id"])
    assert event.actor_client == "client_settings_test"


@LIVE
def test_the_vault_process_is_ready_and_audits_through_the_audit_role(vault_live):
    vaulted = vault_client().tokenize(token_type="card", value="4111111111111111", actor=Actor(client="client_role"))

    assert requests.get(f"{vault_live.url}/readyz", timeout=5).status_code == 200
    assert AuditEvent.objects.get(object_id=vaulted.token).event_type == "vault.tokenized"
    with connection.cursor() as cursor:  # the vault keeps its connection (CONN_MAX_AGE): see who it is
        cursor.execute(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = current_database() AND usename = ANY(%s)",
            [[settings.VAULT_AUDIT_DATABASE_ROLE, settings.DATABASE_RUNTIME_ROLES["default"]]],
        )
        main_database_users = sorted(row[0] for row in cursor.fetchall())
    assert main_database_users == [settings.VAULT_AUDIT_DATABASE_ROLE]


AUDIT_SENTINEL = "postgres://fintech_vault_audit:audit-sentinel-password@main-db.invalid:5432/fintech"
MAIN_SENTINEL = "postgres://main-sentinel-user:main-sentinel-password@main-db.invalid:5432/fintech"
_REPORT = """
import json, django
django.setup()
from django.conf import settings
from tokenvault.checks import vault_role_separation_check
names = [n for n in dir(settings) if n.isupper()]
print(json.dumps({
    "default_user": settings.DATABASES["default"]["USER"],
    "default_sslmode": settings.DATABASES["default"]["OPTIONS"].get("sslmode"),
    "runtime_roles": settings.DATABASE_RUNTIME_ROLES,
    "mentions": {
        word: [n for n in names if word in repr(getattr(settings, n))] for word in ("main-sentinel", "audit-sentinel")
    },
    "checks": [error.id for error in vault_role_separation_check(None)],
}))
"""


def _report(env_overrides: dict[str, str], *, drop: tuple[str, ...] = ()) -> dict:
    """Production settings of a role, imported in a fresh process with throw-away values (as test_roles.py)."""
    result = _run(env_overrides, drop=drop, script=_REPORT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_production_vault_role_connects_to_the_main_database_only_as_the_audit_role():
    report = _report(_vault_role(DATABASE_URL=MAIN_SENTINEL, VAULT_AUDIT_DATABASE_URL=AUDIT_SENTINEL))

    assert report["default_user"] == "fintech_vault_audit"
    assert report["default_sslmode"] == "verify-full"
    assert report["runtime_roles"] == {"default": "fintech_vault_audit", "vault": "vault-sentinel-user"}
    assert report["mentions"]["main-sentinel"] == []
    assert report["checks"] == []


def test_the_production_vault_role_refuses_to_start_without_its_audit_database_url():
    result = _run(_vault_role(DATABASE_URL=MAIN_SENTINEL), drop=("VAULT_AUDIT_DATABASE_URL",))

    assert result.returncode != 0
    assert "VAULT_AUDIT_DATABASE_URL" in result.stderr


def test_the_production_vault_role_needs_no_main_database_url():
    report = _report(_vault_role(VAULT_AUDIT_DATABASE_URL=AUDIT_SENTINEL), drop=("DATABASE_URL",))

    assert report["default_user"] == "fintech_vault_audit"


def test_a_vault_role_given_another_main_database_role_fails_its_deploy_check():
    report = _report(_vault_role(VAULT_AUDIT_DATABASE_URL=MAIN_SENTINEL))

    assert report["checks"] == ["tokenvault.E008"]


def test_the_production_api_role_never_reads_the_audit_role_url():
    env = {"VAULT_AUDIT_DATABASE_URL": AUDIT_SENTINEL}
    report = _report(env, drop=("VAULT_KEK_DIR", "VAULT_DATABASE_URL"))

    assert report["mentions"]["audit-sentinel"] == []
    assert report["default_user"] == "app"
