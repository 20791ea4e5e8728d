"""The policy step and the transfer function from their `.sql` files (ledger/sql/, ADR 0014).

The transfer function's signature changed (accounts only by public id, the
limit time zone, the pending status), so the old one is dropped first.
Every currency that has limits gets a review threshold: the policy step now
refuses a currency without one (fail closed), and 0003 seeded EUR only.
"""

from django.db import migrations

from ledger.sql import SqlFile

POLICY = SqlFile("policy.sql", "b2ec13705c52bdcf67a7cc09f36a0153bfb9878a86055088a0a99cee0b411821")
TRANSFER_CREATE = SqlFile("transfer_create.sql", "2e1a9ead44e24304160207731ee14328dcadbec4f1e260a69b0da5885d2e0fcb")

DROP_OLD_TRANSFER_CREATE = """
DROP FUNCTION IF EXISTS ledger_transfer_create(
    bigint, bigint, bigint, uuid, uuid, bigint, bigint, text, text, text, timestamptz, uuid, text,
    text, text, text, text, text);
"""

THRESHOLDS = [("USD", 10_000_00), ("GBP", 10_000_00)]


def seed_thresholds(apps, schema_editor):
    TransferRule = apps.get_model("ledger", "TransferRule")
    for currency, threshold_minor in THRESHOLDS:
        TransferRule.objects.get_or_create(
            name=f"Review transfers of {threshold_minor // 100:,}.00 {currency} or more",
            defaults={
                "kind": "review_threshold",
                "currency": currency,
                "threshold_minor": threshold_minor,
                "action": "flag",
            },
        )


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0007_policy_counters_reviews"),
        ("accounts", "0001_initial"),
        ("audit", "0002_write_once"),
    ]

    operations = [
        migrations.RunSQL(DROP_OLD_TRANSFER_CREATE, migrations.RunSQL.noop),
        POLICY.operation(),
        TRANSFER_CREATE.operation(),
        migrations.RunPython(seed_thresholds, migrations.RunPython.noop),
    ]
