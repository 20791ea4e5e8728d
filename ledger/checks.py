"""`check --deploy --database default`: the money tables are really behind the ledger's functions (ADR 0016).

A database check, so it runs only when asked for a database (Django skips
`Tags.database` checks otherwise): a deployment runs it after `migrate`. It
fails when the functions' owner can log in (a single-role setup, or a
definer role someone gave a password: whoever logs in as it writes money
tables freely) or when the runtime role can write a money table itself.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.db import connections

_MONEY_TABLES = ("ledger_ledgeraccount", "ledger_transfer", "ledger_posting", "ledger_hold")


@register(Tags.database, deploy=True)
def ledger_definer_check(app_configs=None, databases=None, **kwargs):
    if not databases or "default" not in databases:
        return []
    runtime_role = settings.DATABASE_RUNTIME_ROLES.get("default", "")
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT r.rolname, r.rolcanlogin FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner"
            " WHERE p.oid = to_regprocedure('ledger_movement_post(jsonb,jsonb)')"
        )
        row = cursor.fetchone()
        if row is None:
            return [Error("The ledger's functions are not installed: run migrate.", id="ledger.E001")]
        owner, owner_can_login = row
        cursor.execute(
            "SELECT t FROM unnest(%s::text[]) t WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)"
            " AND (has_table_privilege(%s, t, 'INSERT') OR has_table_privilege(%s, t, 'UPDATE')"
            "      OR has_table_privilege(%s, t, 'DELETE'))",
            [list(_MONEY_TABLES), runtime_role, runtime_role, runtime_role, runtime_role],
        )
        writable = [table for (table,) in cursor.fetchall()]
    errors = []
    if owner_can_login:
        errors.append(
            Error(
                f"The ledger's SECURITY DEFINER functions belong to {owner!r}, a role that can log in: whoever "
                "holds its password writes the money tables freely.",
                hint=f"Create the NOLOGIN role {settings.LEDGER_DEFINER_ROLE!r}, grant it to the migrating role, "
                "and run migrate again.",
                id="ledger.E002",
            )
        )
    if writable and runtime_role != owner:
        errors.append(
            Error(
                f"The runtime role {runtime_role!r} may write {', '.join(writable)} directly.",
                hint="Run migrate as the owner role: it re-applies the privileges (fintech/db_privileges.py).",
                id="ledger.E003",
            )
        )
    return errors
