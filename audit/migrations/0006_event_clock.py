"""An event's time is when its row is written, right after its id is drawn (issue 12, item 4).

0004 stamped `occurred_at` with now(), the start of the inserting transaction,
while the id comes from the sequence at INSERT: a transaction that began
earlier and inserted later got a higher id with an earlier time, by as long as
it had been running. clock_timestamp(), taken in the same trigger that checks
the id, puts ids and times in the same order to within microseconds, so the
verifier can flag an event whose time goes backwards (CLOCK_TOLERANCE in
audit/services/verification.py).
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_event_identity() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    NEW.occurred_at := {clock};
    NEW.xact_id := pg_current_xact_id()::text::bigint;
    IF NEW.id IS DISTINCT FROM currval(pg_get_serial_sequence('public.audit_auditevent', 'id')) THEN
        RAISE EXCEPTION 'audit events take their id from the sequence, not from the inserter'
            USING ERRCODE = 'AU002';
    END IF;
    RETURN NEW;
EXCEPTION WHEN object_not_in_prerequisite_state THEN  -- currval before any nextval: the id was chosen
    RAISE EXCEPTION 'audit events take their id from the sequence, not from the inserter' USING ERRCODE = 'AU002';
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_verification_result_mac")]

    operations = [
        migrations.RunSQL(FUNCTION.format(clock="clock_timestamp()"), FUNCTION.format(clock="now()")),
    ]
