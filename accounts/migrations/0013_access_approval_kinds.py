"""Only an applied request of a kind that grants access (staff.access, staff.invite) approves an access change.

Found in review: naming an applied second-factor reset of the same person,
touched in the transaction, passed as the approval of a role grant.
"""

from django.db import migrations

from accounts.sql import SqlFile

ACCESS_CHANGE_TRIGGERS = SqlFile(
    "access_change_triggers.sql", "cc8512415de24ee121e8f69c59255c525c7d2529f0f794c253c7b8b84f492c4f"
)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0012_oauth_client_policy_names")]

    operations = [ACCESS_CHANGE_TRIGGERS.operation()]
