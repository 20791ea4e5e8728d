"""Claiming an Idempotency-Key in one round trip: the advisory lock, then the stored record.

`fintech.idempotency` used to send two statements: `pg_try_advisory_xact_lock`
and then the record lookup. They cannot be merged into one plain SELECT: a
statement reads the snapshot taken when it started, so a record committed by
the previous holder between that moment and the lock being granted would be
invisible, and the operation would run twice. Inside a VOLATILE PL/pgSQL
function every statement takes a fresh snapshot (READ COMMITTED), so the
lookup runs after the lock is held and sees everything committed before.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION fintech_idempotency_claim(
    p_lock_id bigint,
    p_client_id text,
    p_principal text,
    p_key text,
    OUT r_locked boolean,
    OUT r_fingerprint text,
    OUT r_status integer,
    OUT r_body jsonb
)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    r_locked := pg_try_advisory_xact_lock(p_lock_id);
    IF NOT r_locked THEN
        RETURN;
    END IF;
    SELECT fingerprint, response_status, response_body INTO r_fingerprint, r_status, r_body
      FROM fintech_idempotencyrecord
     WHERE client_id = p_client_id AND principal = p_principal AND key = p_key;
END
$$;
"""

BACKWARDS = "DROP FUNCTION IF EXISTS fintech_idempotency_claim(bigint, text, text, text);"


class Migration(migrations.Migration):
    dependencies = [("fintech", "0001_initial")]

    operations = [migrations.RunSQL(FUNCTION, BACKWARDS)]
