"""The accounts SQL has one source: `accounts/sql/*.sql`, installed by migrations, equal to what the database runs.

The same checks as `ledger/tests/test_sql_source.py`, for the access-change
triggers (issue 11, item 4) and whatever SQL the accounts app adds later.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from django.db import connection

import accounts.migrations
from accounts.sql import SQL_DIR, SqlFile, function_bodies, sql_sha256


def _latest_install_of(name: str) -> SqlFile:
    installs = []
    for module in pkgutil.iter_modules(accounts.migrations.__path__):
        migration = importlib.import_module(f"accounts.migrations.{module.name}")
        installs += [(module.name, value) for value in vars(migration).values() if isinstance(value, SqlFile)]
    named = sorted(install for install in installs if install[1].name == name)
    assert named, f"no migration installs {name}"
    return named[-1][1]


@pytest.mark.parametrize("path", sorted(SQL_DIR.glob("*.sql")), ids=lambda path: path.name)
def test_the_newest_migration_installing_a_file_was_written_for_its_current_text(path):
    """Edit a .sql file and this fails until a new migration records (and so installs) the new text."""
    assert _latest_install_of(path.name).sha256 == sql_sha256(path.name)


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted(SQL_DIR.glob("*.sql")), ids=lambda path: path.name)
def test_every_function_the_database_runs_is_the_files_text(path):
    bodies = function_bodies(path.name)
    assert bodies
    with connection.cursor() as cursor:
        cursor.execute("SELECT proname, prosrc FROM pg_proc WHERE proname = ANY(%s)", [list(bodies)])
        installed = dict(cursor.fetchall())
    assert installed == bodies
