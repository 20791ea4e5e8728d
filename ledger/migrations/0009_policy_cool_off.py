"""The policy step refuses outgoing money during the cool-off after a second-factor reset (ADR 0015)."""

from django.db import migrations

from ledger.sql import SqlFile

POLICY = SqlFile("policy.sql", "8d710984c4b5ff177e5929f34041362b787520015b37bc36b018e4b234821a12")


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0008_policy_functions"),
        ("accounts", "0010_approvals_invitations"),
    ]

    operations = [POLICY.operation()]
