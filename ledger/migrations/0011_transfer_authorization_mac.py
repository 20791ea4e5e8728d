"""Every transfer carries the authorization MAC of the application that decided it (issue 12, ADR 0016).

The functions refuse a movement without one; `ledger_verify` recomputes it
(ledger/authorization.py). The customer transfer function gains a parameter,
so its old signature is dropped first. The guard trigger on the money tables
is (re)installed here, after the function it calls, so a new database gets it
whatever 0010 installed.
"""

from django.db import migrations, models

from ledger.sql import SqlFile

TRANSFER_CREATE = SqlFile("transfer_create.sql", "db11eeaad4b24acffd5f510fe2283cce1e6f6eb7346ca6fe44a6c6c7ceddb465")
MOVEMENTS = SqlFile("movements.sql", "39da6ea30a629e8510ce18423a26fcaeb949a706e9e9a7bbef268d95d4eb7403")

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
        migrations.RunSQL(OLD_TRANSFER_CREATE, migrations.RunSQL.noop),
        TRANSFER_CREATE.operation(),
        MOVEMENTS.operation(),
        migrations.RunSQL(GUARD, UNGUARD),
    ]
