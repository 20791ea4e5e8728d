"""Transfers, holds and review decisions carry the application's authorization MAC (issue 12, ADR 0016).

The functions refuse a movement or a hold without one; the application checks
a hold's and its case decision's before money leaves it; `ledger_verify`
recomputes them all (ledger/authorization.py). The customer transfer function gains a parameter,
so its old signature is dropped first. The guard trigger on the money tables
is (re)installed here, after the function it calls, so a new database gets it
whatever 0010 installed.
"""

from django.db import migrations, models

from ledger.sql import SqlFile

TRANSFER_CREATE = SqlFile("transfer_create.sql", "45552df84f2f75d39d721ff76f9668b18462cf026138afd4733f7cf961ae1ee4")
MOVEMENTS = SqlFile("movements.sql", "2223b7ee799f01a807a1caed5f4f40b14b55437c48903cac5453abda81b2c38b")

OLD_TRANSFER_CREATE = (
    "DROP FUNCTION IF EXISTS ledger_transfer_create(uuid, uuid, bigint, bigint, text, text, text, timestamptz, text,"
    " uuid, text, text, text, text, text, text)"
)
MONEY_TABLES = ("ledger_ledgeraccount", "ledger_transfer", "ledger_posting", "ledger_hold")
UNGUARD = "".join(f"DROP TRIGGER IF EXISTS {table}_money_guard ON {table};" for table in MONEY_TABLES)
GUARD = UNGUARD + "".join(
    f"""
CREATE TRIGGER {table}_money_guard BEFORE INSERT OR UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION ledger_money_tables_guard();
ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_money_guard;
"""
    for table in MONEY_TABLES
)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0010_movement_functions")]

    operations = [
        migrations.AddField(
            model_name="transfer",
            name="authorization_mac",
            field=models.CharField(blank=True, db_default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="hold",
            name="authorization_mac",
            field=models.CharField(blank=True, db_default="", editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="reviewcase",
            name="decision_mac",
            field=models.CharField(blank=True, db_default="", editable=False, max_length=64),
        ),
        migrations.RunSQL(OLD_TRANSFER_CREATE, migrations.RunSQL.noop),
        TRANSFER_CREATE.operation(),
        MOVEMENTS.operation(),
        migrations.RunSQL(GUARD, UNGUARD),
    ]
