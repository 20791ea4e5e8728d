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

TRANSFER_CREATE = SqlFile("transfer_create.sql", "c83227203f8c3988f1b21f38371bf21121c45cb55eca0e57d9cb8a447c860a72")
MOVEMENTS = SqlFile("movements.sql", "000ddf7df98549ca5db13983f231a07566932f9c98f710704485223f08178895")

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
            model_name="hold",
            name="review_required",
            field=models.BooleanField(db_default=False, editable=False),
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
