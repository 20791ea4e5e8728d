"""Money tables change only through the ledger's functions (issue 12, ADR 0016).

Installs ledger/sql/movements.sql and the guard trigger on the four money
tables. Who owns the functions and who may run them (the definer role, the
runtime role) is set after every migrate by fintech/db_privileges.py.
"""

from django.db import migrations

from ledger.sql import SqlFile

MOVEMENTS = SqlFile("movements.sql", "5aa0c7c33bafbc323ae0e848054bc93bd237d411114f41beb0a6b838690ca25f")

MONEY_TABLES = ("ledger_ledgeraccount", "ledger_transfer", "ledger_posting", "ledger_hold")

GUARD = "".join(
    f"""
CREATE TRIGGER {table}_money_guard BEFORE INSERT OR UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION ledger_money_tables_guard();
ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_money_guard;
"""
    for table in MONEY_TABLES
)
UNGUARD = "".join(f"DROP TRIGGER IF EXISTS {table}_money_guard ON {table};" for table in MONEY_TABLES)


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0009_policy_cool_off"),
        ("audit", "0005_verification_result_mac"),
    ]

    operations = [MOVEMENTS.operation(), migrations.RunSQL(GUARD, UNGUARD)]
