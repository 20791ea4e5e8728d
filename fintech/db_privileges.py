"""What the runtime database role may do, re-applied after every migrate.

The runtime role (web, workers) gets ordinary DML on every table, except
write-once tables, where it keeps only SELECT and INSERT. An app declares its
write-once models in its AppConfig as `write_once_models`; their tables also
carry triggers refusing UPDATE/DELETE/TRUNCATE (defence in depth: privileges
stop the runtime role, triggers stop everyone but a table owner who disables
them on purpose).

The audit sealer's role (AUDIT_SEALER_DATABASE_ROLE, issue 12) alone INSERTs
checkpoints, seals, signing keys and verification results; the runtime role
keeps SELECT on those tables (`_grant_audit_sealer_role`).

The vault role's main-database role (VAULT_AUDIT_DATABASE_ROLE, ADR 0012) only
appends audit events: INSERT on that one table, the sequence behind its id, and
SELECT on just the columns PostgreSQL hands back to Django's INSERT ... RETURNING.
Everything else it may once have been given is revoked on every run, so a stray
grant does not survive the next migrate.

Money tables (an app's `definer_only_models`: the ledger's accounts, transfers,
postings and holds) are SELECT only for the runtime role: it changes them by
EXECUTE on the app's `definer_functions`, SECURITY DEFINER functions owned by
the definer role (settings.LEDGER_DEFINER_ROLE, NOLOGIN), which alone holds
their DML (issue 12, ADR 0016). Every other function of the app's stays
unreachable for the runtime role (EXECUTE revoked from PUBLIC).

Tables only migrate writes (an app's `runtime_read_only_models`, "app_label.Model": Django's permissions,
roles and content types) are SELECT only for the runtime role: a permission's codename or a role's name
is what grants power, and changing it would grant power without an access change on record (issue 12).

Tables whose content is written once but whose state moves on (an app's
`state_only_models`: {model: state fields}) give the runtime role INSERT,
SELECT and UPDATE of the state columns only: an outbox message's recipient
and payload cannot be rewritten, only its delivery state.

Each database also takes CONNECT away from PUBLIC and gives it back only to the
roles that use that database (its runtime role; on the audit trail's database,
the vault's audit role too), so the API's login cannot open the vault database
and the vault's login cannot open the main one (ADR 0012). Another role that
must connect (monitoring, backups) needs its own `GRANT CONNECT`.
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.db import connections, router


def _declared_tables(using: str, attribute: str) -> list[str]:
    """Tables of the models the apps list under `attribute` in their AppConfig, on this database."""
    tables = []
    for app_config in apps.get_app_configs():
        for model_name in getattr(app_config, attribute, ()):
            model = app_config.get_model(model_name)
            if router.allow_migrate_model(using, model):
                tables.append(model._meta.db_table)
    return sorted(tables)


def write_once_tables(using: str) -> list[str]:
    return _declared_tables(using, "write_once_models")


def runtime_read_only_tables(using: str) -> list[str]:
    """Tables of the "app_label.Model" names apps list as `runtime_read_only_models`: SELECT only at runtime."""
    tables = []
    for app_config in apps.get_app_configs():
        for label in getattr(app_config, "runtime_read_only_models", ()):
            model = apps.get_model(label)
            if router.allow_migrate_model(using, model):
                tables.append(model._meta.db_table)
    return sorted(tables)


def grant_runtime_privileges(sender=None, using: str = "default", **kwargs) -> None:
    """post_migrate receiver for the platform app, which is listed last: every table exists by then."""
    connection = connections[using]
    with connection.cursor() as cursor:
        _grant_definer_role(connection, cursor, using)
        _grant_runtime_role(connection, cursor, using)
        _grant_vault_audit_role(connection, cursor, using)
        _grant_audit_sealer_role(connection, cursor, using)
        _restrict_connect(connection, cursor, using)


def _other_role(cursor, role: str | None) -> bool:
    """Whether `role` exists and is not the migrating user (a single-role deployment grants nothing)."""
    cursor.execute("SELECT current_user, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)", [role])
    current_user, role_exists = cursor.fetchone()
    return bool(role) and role != current_user and role_exists


def _table_exists(cursor, table: str) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
    return cursor.fetchone()[0]


def _grant_runtime_role(connection, cursor, using: str) -> None:
    runtime_role = settings.DATABASE_RUNTIME_ROLES.get(using)
    if not _other_role(cursor, runtime_role):
        return  # a single-role deployment: triggers alone guard write-once tables
    role = connection.ops.quote_name(runtime_role)
    cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
    cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
    for table in write_once_tables(using):
        if not _table_exists(cursor, table):
            continue  # its app was not migrated in this run (e.g. `migrate audit`)
        cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON TABLE {connection.ops.quote_name(table)} FROM {role}")
    for table in runtime_read_only_tables(using):
        if _table_exists(cursor, table):
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLE {quoted} FROM {role}")
    for table in definer_only_tables(using):
        if _table_exists(cursor, table):
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLE {quoted} FROM {role}")
    for table, columns in state_only_tables(using):
        if _table_exists(cursor, table):
            quote = connection.ops.quote_name
            cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON TABLE {quote(table)} FROM {role}")
            cursor.execute(f"GRANT UPDATE ({', '.join(map(quote, columns))}) ON TABLE {quote(table)} TO {role}")


def state_only_tables(using: str) -> list[tuple[str, list[str]]]:
    """(table, columns the runtime role may UPDATE) of every app's `state_only_models`: content written once."""
    tables = []
    for app_config in apps.get_app_configs():
        for model_name, fields in getattr(app_config, "state_only_models", {}).items():
            model = app_config.get_model(model_name)
            if router.allow_migrate_model(using, model):
                tables.append((model._meta.db_table, sorted(model._meta.get_field(name).column for name in fields)))
    return sorted(tables)


def definer_only_tables(using: str) -> list[str]:
    return _declared_tables(using, "definer_only_models")


def definer_functions(cursor, using: str) -> tuple[list[str], list[str], list[str]]:
    """Signatures of (SECURITY DEFINER entry points, other functions the runtime role may EXECUTE, every
    function named after an app with money tables)."""
    entry_points, callable_names, prefixes = [], [], []
    for app_config in apps.get_app_configs():
        names = getattr(app_config, "definer_functions", ())
        if names and definer_only_tables(using):
            entry_points.extend(names)
            callable_names.extend(getattr(app_config, "runtime_functions", ()))
            prefixes.append(f"{app_config.label}\\_%")
    if not prefixes:
        return [], [], []
    cursor.execute(
        "SELECT p.oid::regprocedure::text, p.proname FROM pg_proc p"
        " WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE ANY (%s) ORDER BY 1",
        [prefixes],
    )
    rows = cursor.fetchall()
    return (
        [signature for signature, name in rows if name in entry_points],
        [signature for signature, name in rows if name in callable_names],
        [signature for signature, _ in rows],
    )


def _grant_definer_role(connection, cursor, using: str) -> None:
    """The definer role owns the money functions and alone writes the money tables; the runtime role EXECUTEs.

    Without a definer role the functions stay the migrating user's (a
    single-role deployment: the deploy check says so in production).
    """
    tables = [table for table in definer_only_tables(using) if _table_exists(cursor, table)]
    if not tables:
        return
    quote = connection.ops.quote_name
    entry_points, runtime_callable, functions = definer_functions(cursor, using)
    definer = getattr(settings, "LEDGER_DEFINER_ROLE", "")
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s AND NOT rolcanlogin)"
        " AND pg_has_role(current_user, %s, 'MEMBER')"
        " AND (has_schema_privilege(current_user, 'public', 'CREATE WITH GRANT OPTION')"
        "      OR EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public' AND nspowner = current_user::regrole))",
        [definer, definer],
    )
    use_definer = bool(definer) and cursor.fetchone()[0] and _other_role(cursor, definer)
    if use_definer:
        role = quote(definer)
        cursor.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {role}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
        for table in write_once_tables(using):
            if _table_exists(cursor, table):
                cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON TABLE {quote(table)} FROM {role}")
    for signature in functions:
        if use_definer:
            cursor.execute(f"ALTER FUNCTION {signature} OWNER TO {quote(definer)}")
        cursor.execute(f"REVOKE EXECUTE ON FUNCTION {signature} FROM PUBLIC")
    runtime_role = settings.DATABASE_RUNTIME_ROLES.get(using)
    for signature in entry_points:
        cursor.execute(f"ALTER FUNCTION {signature} SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp")
    if _other_role(cursor, runtime_role):
        for signature in entry_points + runtime_callable:
            cursor.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {quote(runtime_role)}")


def vault_audit_grants() -> tuple[str, list[str], str]:
    """(table, columns Django reads back on INSERT, id column) of the one table the vault role appends to."""
    from audit.models import AuditEvent

    meta = AuditEvent._meta
    return meta.db_table, sorted(field.column for field in meta.db_returning_fields), meta.pk.column


def _grant_vault_audit_role(connection, cursor, using: str) -> None:
    from audit.models import AuditEvent

    audit_role = getattr(settings, "VAULT_AUDIT_DATABASE_ROLE", "")
    if not router.allow_migrate_model(using, AuditEvent) or not _other_role(cursor, audit_role):
        return  # not the audit trail's database, or no separate role (it would hold the runtime role's rights)
    table, returned_columns, id_column = vault_audit_grants()
    if not _table_exists(cursor, table):
        return  # the audit app was not migrated in this run
    quote = connection.ops.quote_name
    role = quote(audit_role)
    # Start from nothing each time: revoking a table privilege also revokes its column privileges.
    cursor.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
    cursor.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
    cursor.execute("SELECT current_database()")
    cursor.execute(f"GRANT CONNECT ON DATABASE {quote(cursor.fetchone()[0])} TO {role}")
    cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    cursor.execute(f"GRANT INSERT ON TABLE {quote(table)} TO {role}")
    # INSERT ... RETURNING needs SELECT on the returned columns (the id and the database defaults), only those.
    cursor.execute(f"GRANT SELECT ({', '.join(map(quote, returned_columns))}) ON TABLE {quote(table)} TO {role}")
    cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, id_column])
    cursor.execute(f"GRANT USAGE ON SEQUENCE {cursor.fetchone()[0]} TO {role}")


def audit_sealer_grants() -> tuple[dict[str, str], list[str]]:
    """({table only the audit sealer writes: its key column}, tables it reads besides them)."""
    from audit.models import AuditArchive, AuditCheckpoint, AuditEvent, AuditSeal, AuditSigningKey, AuditVerification

    written = {
        model._meta.db_table: model._meta.pk.column
        for model in (AuditCheckpoint, AuditSeal, AuditSigningKey, AuditVerification)
    }
    return written, [AuditEvent._meta.db_table, AuditArchive._meta.db_table]


def _grant_audit_sealer_role(connection, cursor, using: str) -> None:
    """The sealer's login alone INSERTs checkpoints, seals, signing keys and verification results (issue 12).

    It holds SELECT and INSERT on those tables and SELECT on the events and
    archives it seals and verifies, nothing else (revoked first on every run,
    like the vault's audit role). The runtime role keeps SELECT on them, so
    the web can show the trail but a stolen web login cannot write a
    checkpoint, a key or a "passed" result. Without a sealer role (a
    single-role deployment) nothing changes: sealing writes as the runtime role.
    """
    from audit.models import AuditCheckpoint

    sealer = getattr(settings, "AUDIT_SEALER_DATABASE_ROLE", "")
    if not router.allow_migrate_model(using, AuditCheckpoint) or not _other_role(cursor, sealer):
        return
    written, read = audit_sealer_grants()
    if not all(_table_exists(cursor, table) for table in [*written, *read]):
        return  # the audit app was not migrated in this run
    quote = connection.ops.quote_name
    role = quote(sealer)
    cursor.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
    cursor.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
    cursor.execute("SELECT current_database()")
    cursor.execute(f"GRANT CONNECT ON DATABASE {quote(cursor.fetchone()[0])} TO {role}")
    cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    runtime_role = settings.DATABASE_RUNTIME_ROLES.get(using)
    # The ledger's definer role too: its functions never write the trail's seals, so it holds no right to.
    others = [name for name in (runtime_role, getattr(settings, "LEDGER_DEFINER_ROLE", "")) if name != sealer]
    revoke_from = [quote(name) for name in others if _other_role(cursor, name)]
    for table, key_column in written.items():
        cursor.execute(f"GRANT SELECT, INSERT ON TABLE {quote(table)} TO {role}")
        if revoke_from:
            cursor.execute(
                f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLE {quote(table)} FROM {', '.join(revoke_from)}"
            )
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, key_column])
        sequence = cursor.fetchone()[0]
        if sequence:  # checkpoints and verifications number themselves; seals and keys have natural keys
            cursor.execute(f"GRANT USAGE ON SEQUENCE {sequence} TO {role}")
    for table in read:
        cursor.execute(f"GRANT SELECT ON TABLE {quote(table)} TO {role}")


def _restrict_connect(connection, cursor, using: str) -> None:
    """CONNECT on this database for its owner, its runtime role and (audit database) the vault's audit role only.

    Only the database's owner may change its ACL, and a single-role deployment
    has nobody to keep out: both cases leave it as it is.
    """
    runtime_role = settings.DATABASE_RUNTIME_ROLES.get(using)
    if not _other_role(cursor, runtime_role):
        return
    cursor.execute(
        "SELECT current_database(), pg_get_userbyid(datdba) = current_user FROM pg_database"
        " WHERE datname = current_database()"
    )
    database, owned = cursor.fetchone()
    if not owned:
        return
    quote = connection.ops.quote_name
    cursor.execute(f"REVOKE CONNECT ON DATABASE {quote(database)} FROM PUBLIC")
    cursor.execute(f"GRANT CONNECT ON DATABASE {quote(database)} TO {quote(runtime_role)}")
