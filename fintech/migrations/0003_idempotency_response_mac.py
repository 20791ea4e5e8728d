"""Stored idempotency outcomes carry a MAC under a key the database does not hold (issue 12, item 5).

The claim function returns it with the record. Records stored before this
migration (at most IDEMPOTENCY_KEY_TTL_SECONDS old) get their MAC computed
here, with the same settings the application uses, so their retries replay
as before.
"""

from django.db import migrations, models

FUNCTION = """
DROP FUNCTION IF EXISTS fintech_idempotency_claim(bigint, text, text, text);
CREATE FUNCTION fintech_idempotency_claim(
    p_lock_id bigint,
    p_client_id text,
    p_principal text,
    p_key text,
    OUT r_locked boolean,
    OUT r_fingerprint text,
    OUT r_status integer,
    OUT r_body jsonb,
    OUT r_mac text
)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    r_locked := pg_try_advisory_xact_lock(p_lock_id);
    IF NOT r_locked THEN
        RETURN;
    END IF;
    SELECT fingerprint, response_status, response_body, response_mac INTO r_fingerprint, r_status, r_body, r_mac
      FROM fintech_idempotencyrecord
     WHERE client_id = p_client_id AND principal = p_principal AND key = p_key;
END
$$;
"""

PREVIOUS = """
DROP FUNCTION IF EXISTS fintech_idempotency_claim(bigint, text, text, text);
CREATE FUNCTION fintech_idempotency_claim(
    p_lock_id bigint, p_client_id text, p_principal text, p_key text,
    OUT r_locked boolean, OUT r_fingerprint text, OUT r_status integer, OUT r_body jsonb
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


def mac_existing_records(apps, schema_editor):
    from fintech.idempotency import response_mac

    IdempotencyRecord = apps.get_model("fintech", "IdempotencyRecord")
    for record in IdempotencyRecord.objects.filter(response_mac="").iterator():
        record.response_mac = response_mac(
            record.client_id, record.principal, record.key, record.fingerprint, record.response_status,
            record.response_body,
        )  # fmt: skip
        record.save(update_fields=["response_mac"])


class Migration(migrations.Migration):
    dependencies = [("fintech", "0002_idempotency_claim_function")]

    operations = [
        migrations.AddField(
            model_name="idempotencyrecord",
            name="response_mac",
            field=models.CharField(default="", editable=False, max_length=64),
        ),
        migrations.RunSQL(FUNCTION, PREVIOUS),
        migrations.RunPython(mac_existing_records, migrations.RunPython.noop),
    ]
