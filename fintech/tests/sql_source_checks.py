"""The two checks every app with `.sql` files runs (fintech/sql_files.py): one source, installed as written."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from django.db import connection

from fintech.sql_files import SqlDirectory, SqlFile


def newest_install_is_of_the_current_text(migrations: ModuleType, sql: SqlDirectory, name: str) -> None:
    """Edit a .sql file and this fails until a new migration records (and so installs) the new text."""
    installs = []
    for module in pkgutil.iter_modules(migrations.__path__):
        migration = importlib.import_module(f"{migrations.__name__}.{module.name}")
        installs += [(module.name, value) for value in vars(migration).values() if isinstance(value, SqlFile)]
    named = sorted((module, install.sha256) for module, install in installs if install.name == name)
    assert named, f"no migration installs {name}"
    assert named[-1][1] == sql.sha256(name)


def installed_functions_are_the_files_text(sql: SqlDirectory, name: str) -> None:
    bodies = sql.function_bodies(name)
    assert bodies
    with connection.cursor() as cursor:
        cursor.execute("SELECT proname, prosrc FROM pg_proc WHERE proname = ANY(%s)", [list(bodies)])
        installed = dict(cursor.fetchall())
    assert installed == bodies
