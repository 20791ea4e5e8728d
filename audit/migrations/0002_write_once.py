"""Write-once audit tables, enforced by the database.

Plain PL/pgSQL triggers, enabled ALWAYS so that even a session with
session_replication_role = replica (which skips ordinary triggers) cannot get
round them. Only a table owner can disable them (the runtime role owns
nothing). DELETE on audit events is allowed for one case only: a row older
than the retention floor whose checkpoint is in an exported archive, which is
what `audit_purge` deletes.
"""

from django.db import migrations

TABLES = [
    "audit_auditevent",
    "audit_auditcheckpoint",
    "audit_auditseal",
    "audit_auditsigningkey",
    "audit_auditarchive",
    "audit_auditverification",
]

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Nested, not AND-ed: PL/pgSQL does not promise short-circuit evaluation,
    -- and OLD has no occurred_at on the other tables.
    IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_auditevent' THEN
        IF OLD.occurred_at < now() - interval '7 years' AND EXISTS (
            SELECT 1 FROM audit_auditseal s
            JOIN audit_auditarchive a ON s.checkpoint_id BETWEEN a.first_checkpoint_id AND a.last_checkpoint_id
            WHERE s.event_id = OLD.id
        ) THEN
            RETURN OLD;  -- purge of a sealed, exported row past the retention floor
        END IF;
    END IF;
    RAISE EXCEPTION 'audit table % is write-once: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


def forwards_sql() -> str:
    statements = [FUNCTION]
    for table in TABLES:
        statements += [
            f"CREATE TRIGGER {table}_write_once BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();",
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();",
            f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_write_once;",
            f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_truncate;",
        ]
    return "\n".join(statements)


def backwards_sql() -> str:
    statements = []
    for table in TABLES:
        statements += [
            f"DROP TRIGGER IF EXISTS {table}_write_once ON {table};",
            f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};",
        ]
    return "\n".join([*statements, "DROP FUNCTION IF EXISTS audit_refuse_change();"])


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunSQL(forwards_sql(), backwards_sql())]
