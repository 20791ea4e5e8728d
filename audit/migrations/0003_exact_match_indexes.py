"""Exact-match indexes on four audit columns, without their LIKE twins (issue 5 benchmark).

A `db_index=True` CharField gets a plain btree and a `varchar_pattern_ops` one;
every /v1 write inserts two audit rows, so the four twins nobody queries with
LIKE cost eight index entries per transfer. In the database the twins are
dropped and the plain indexes renamed (no rebuild of a large table); the
state operations are what makemigrations generated for the model.
"""

from django.db import migrations, models

# (column, index Django created for db_index=True, new name in AuditEvent.Meta.indexes)
_INDEXES = (
    ("event_type", "audit_auditevent_event_type_f13571f1", "audit_event_type_idx"),
    ("actor_user", "audit_auditevent_actor_user_fe9ec79e", "audit_event_actor_user_idx"),
    ("actor_staff", "audit_auditevent_actor_staff_94640e87", "audit_event_actor_staff_idx"),
    ("request_id", "audit_auditevent_request_id_b6fdcfa6", "audit_event_request_id_idx"),
)

FORWARDS = "".join(f"DROP INDEX IF EXISTS {old}_like; ALTER INDEX {old} RENAME TO {new};" for _, old, new in _INDEXES)
BACKWARDS = "".join(
    f"ALTER INDEX {new} RENAME TO {old}; CREATE INDEX {old}_like ON audit_auditevent ({column} varchar_pattern_ops);"
    for column, old, new in _INDEXES
)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_write_once"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARDS, BACKWARDS)],
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="actor_staff",
                    field=models.CharField(blank=True, help_text="staff member's public id", max_length=64),
                ),
                migrations.AlterField(
                    model_name="auditevent",
                    name="actor_user",
                    field=models.CharField(blank=True, help_text="public id of the user", max_length=64),
                ),
                migrations.AlterField(
                    model_name="auditevent",
                    name="event_type",
                    field=models.CharField(max_length=64),
                ),
                migrations.AlterField(
                    model_name="auditevent",
                    name="request_id",
                    field=models.CharField(blank=True, max_length=128),
                ),
                migrations.AddIndex(
                    model_name="auditevent",
                    index=models.Index(fields=["event_type"], name="audit_event_type_idx"),
                ),
                migrations.AddIndex(
                    model_name="auditevent",
                    index=models.Index(fields=["actor_user"], name="audit_event_actor_user_idx"),
                ),
                migrations.AddIndex(
                    model_name="auditevent",
                    index=models.Index(fields=["actor_staff"], name="audit_event_actor_staff_idx"),
                ),
                migrations.AddIndex(
                    model_name="auditevent",
                    index=models.Index(fields=["request_id"], name="audit_event_request_id_idx"),
                ),
            ],
        )
    ]
