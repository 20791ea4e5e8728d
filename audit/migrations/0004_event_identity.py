"""Events are what the database says they are (issue 12, item 4): their id, time and transaction are its own.

Whoever inserts an audit event (the runtime role included) chooses neither its
`id` nor `occurred_at` nor `xact_id`: a BEFORE INSERT trigger, always enabled,
replaces the time and the transaction id with the database's, and refuses an
id that is not the one this very insert drew from the sequence (an id chosen to
fill a gap, or to sit among older events). Only the owner can disable it.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION audit_event_identity() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    NEW.occurred_at := now();
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
CREATE TRIGGER audit_auditevent_identity BEFORE INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_event_identity();
ALTER TABLE audit_auditevent ENABLE ALWAYS TRIGGER audit_auditevent_identity;
"""

REVERSE = """
DROP TRIGGER IF EXISTS audit_auditevent_identity ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_identity();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_exact_match_indexes")]

    operations = [migrations.RunSQL(FUNCTION, REVERSE)]
