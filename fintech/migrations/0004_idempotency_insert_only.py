"""Idempotency records are insert-only for the runtime role; expired ones go through the owner's function.

A deleted record would let a retry run its call twice (money moved twice); a
rewritten one is already refused by its MAC (0003). After every migrate the
runtime role keeps SELECT and INSERT only (`PlatformConfig.write_once_models`,
fintech/db_privileges.py), and purging runs `fintech_idempotency_purge`, owned
by the table owner (SECURITY DEFINER), which deletes only records whose expiry
has passed by the database's clock: the caller chooses how many, never which.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION fintech_idempotency_purge(p_limit integer) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    WITH gone AS (
        DELETE FROM fintech_idempotencyrecord
         WHERE id IN (SELECT id FROM fintech_idempotencyrecord WHERE expires_at < statement_timestamp()
                       ORDER BY id LIMIT greatest(p_limit, 0))
        RETURNING 1)
    SELECT count(*)::integer FROM gone
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("fintech", "0003_idempotency_response_mac")]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION IF EXISTS fintech_idempotency_purge(integer);"),
    ]
