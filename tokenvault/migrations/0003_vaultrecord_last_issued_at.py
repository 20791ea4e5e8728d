"""`last_issued_at`: when a caller last received the token (the orphan reaper's clock, ADR 0012).

Existing rows take their `created_at`: a convergent re-issue before this
migration left no trace, so creation is the only issue time known. The
column is added with now() as its default (no table rewrite on PostgreSQL),
then back-filled in the same migration, before any reaper can read it.
"""

import django.db.models.functions.datetime
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tokenvault", "0002_vaultrecord_detokenize_permissions"),
    ]

    operations = [
        migrations.AddField(
            model_name="vaultrecord",
            name="last_issued_at",
            field=models.DateTimeField(db_default=django.db.models.functions.datetime.Now()),
        ),
        migrations.RunSQL(
            sql="UPDATE tokenvault_vaultrecord SET last_issued_at = created_at",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
