"""What the runtime database role may do, re-applied after every migrate.

The runtime role (web, workers) gets ordinary DML on every table, except
write-once tables, where it keeps only SELECT and INSERT. An app declares its
write-once models in its AppConfig as `write_once_models`; their tables also
carry triggers refusing UPDATE/DELETE/TRUNCATE (defence in depth: privileges
stop the runtime role, triggers stop everyone but a table owner who disables
them on purpose).
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.db import connections, router


def write_once_tables(using: str) -> list[str]:
    tables = []
    for app_config in apps.get_app_configs():
        for model_name in getattr(app_config, "write_once_models", ()):
            model = app_config.get_model(model_name)
            if router.allow_migrate_model(using, model):
                tables.append(model._meta.db_table)
    return sorted(tables)


def grant_runtime_privileges(sender=None, using: str = "default", **kwargs) -> None:
    """post_migrate receiver for the platform app, which is listed last: every table exists by then."""
    runtime_role = settings.DATABASE_RUNTIME_ROLES.get(using)
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)", [runtime_role])
        current_user, role_exists = cursor.fetchone()
        if not runtime_role or runtime_role == current_user or not role_exists:
            return  # a single-role deployment: triggers alone guard write-once tables
        role = connection.ops.quote_name(runtime_role)
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
        for table in write_once_tables(using):
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
            if not cursor.fetchone()[0]:
                continue  # its app was not migrated in this run (e.g. `migrate audit`)
            cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON TABLE {connection.ops.quote_name(table)} FROM {role}")
