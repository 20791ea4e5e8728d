"""Default transfer limits per tier (EUR, USD, GBP) and the first two risk rules.

Values are copied here, not imported, so this migration seeds the same rows
forever. Operators change them afterwards as data (admin or SQL), which is
the point of keeping limits and rules in tables.
"""

from django.db import migrations

# tier -> (per transfer, per UTC day), in major units; every seeded currency has 2 decimals.
LIMITS = {
    "standard": (5_000, 10_000),
    "premium": (25_000, 50_000),
    "business": (100_000, 250_000),
}
CURRENCIES = ("EUR", "USD", "GBP")
RULES = [
    {
        "name": "Review transfers of 10,000.00 EUR or more",
        "kind": "review_threshold",
        "currency": "EUR",
        "threshold_minor": 10_000_00,
        "action": "flag",
    },
    {
        "name": "More than 10 transfers in one minute",
        "kind": "velocity",
        "currency": "",
        "max_count": 10,
        "window_minutes": 1,
        "action": "refuse",
    },
]


def seed(apps, schema_editor):
    TransferLimit = apps.get_model("ledger", "TransferLimit")
    TransferRule = apps.get_model("ledger", "TransferRule")
    for tier, (per_transfer, daily) in LIMITS.items():
        for currency in CURRENCIES:
            TransferLimit.objects.get_or_create(
                tier=tier,
                currency=currency,
                defaults={"per_transfer_max_minor": per_transfer * 100, "daily_outgoing_max_minor": daily * 100},
            )
    for rule in RULES:
        TransferRule.objects.get_or_create(name=rule["name"], defaults=rule)


def unseed(apps, schema_editor):
    apps.get_model("ledger", "TransferRule").objects.filter(name__in=[rule["name"] for rule in RULES]).delete()
    apps.get_model("ledger", "TransferLimit").objects.filter(tier__in=LIMITS, currency__in=CURRENCIES).delete()


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_ledger_triggers")]

    operations = [migrations.RunPython(seed, unseed)]
