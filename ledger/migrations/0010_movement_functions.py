"""Money tables change only through the ledger's functions (issue 12, ADR 0016).

Installs ledger/sql/movements.sql (the guard trigger on the four money tables
is 0011's); the transfer function's events now name the initiator, as every
movement's do, for ledger_verify to compare. Who owns the functions and who may run them (the definer role, the
runtime role) is set after every migrate by fintech/db_privileges.py.
"""

from django.db import migrations

from ledger.sql import SqlFile

TRANSFER_CREATE = SqlFile("transfer_create.sql", "b9bc669d023cdbf0edfdf6b18f0ad765a5ad82d5ed150c3421c01cb77c4f1e7a")
MOVEMENTS = SqlFile("movements.sql", "002775c7329f2b9116bd1b0e1f679cc9e1b52fd02ff2dfe23570956d5cda2539")

# The guard trigger on the money tables is installed by 0011, after the function it calls: once
# movements.sql changed, this migration installs nothing on a new database (fintech/sql_files.py).


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0009_policy_cool_off"),
        ("audit", "0005_verification_result_mac"),
    ]

    operations = [TRANSFER_CREATE.operation(), MOVEMENTS.operation()]
