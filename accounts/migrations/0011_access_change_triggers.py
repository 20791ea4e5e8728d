"""Access changes made any way at all are recorded (issue 11, item 4): triggers from `accounts/sql/`.

`access_change_triggers.sql` installs the triggers on roles, single
permissions, staff flags and role definitions (what they record, and how an
approved change is told apart, is in the file). `AccessChangeAlert` is the
beat task's memory of which unapproved changes it alerted on.
Reversing drops the triggers and functions; the file itself is never reversed.
"""

import django.db.models.functions.datetime
from django.db import migrations, models

from accounts.sql import SqlFile

ACCESS_CHANGE_TRIGGERS = SqlFile(
    "access_change_triggers.sql", "f73f0da2d0150a55e7de8ba3fcc528de115181df3282d4034a2335078047eab4"
)

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS accounts_user_groups_access_changed ON accounts_user_groups;
DROP TRIGGER IF EXISTS accounts_user_user_permissions_access_changed ON accounts_user_user_permissions;
DROP TRIGGER IF EXISTS accounts_user_flags_access_changed ON accounts_user;
DROP TRIGGER IF EXISTS accounts_user_staff_created_access_changed ON accounts_user;
DROP TRIGGER IF EXISTS auth_group_permissions_access_changed ON auth_group_permissions;
DROP FUNCTION IF EXISTS accounts_user_groups_audit();
DROP FUNCTION IF EXISTS accounts_user_permissions_audit();
DROP FUNCTION IF EXISTS accounts_user_flags_audit();
DROP FUNCTION IF EXISTS accounts_group_permissions_audit();
DROP FUNCTION IF EXISTS accounts_role_change_record(integer, integer, text);
DROP FUNCTION IF EXISTS accounts_access_change_record(bigint, jsonb);
DROP FUNCTION IF EXISTS accounts_access_approval(bigint);
DROP FUNCTION IF EXISTS accounts_permission_code(integer);
DROP FUNCTION IF EXISTS accounts_written_in_this_transaction(xid);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0010_approvals_invitations"),
        ("audit", "0003_exact_match_indexes"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.CreateModel(
            name="AccessChangeAlert",
            fields=[
                ("event_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("alerted_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
            ],
        ),
        migrations.RunSQL(migrations.RunSQL.noop, DROP_TRIGGERS),
        ACCESS_CHANGE_TRIGGERS.operation(),
    ]
