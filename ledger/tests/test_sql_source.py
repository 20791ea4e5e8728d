"""The money SQL has one source: `ledger/sql/*.sql`, installed by migrations, equal to what the database runs."""

from __future__ import annotations

import pytest

import ledger.migrations
from fintech.tests.sql_source_checks import (
    installed_functions_are_the_files_text,
    newest_install_is_of_the_current_text,
)
from ledger.sql import SQL


@pytest.mark.parametrize("path", SQL.files(), ids=lambda path: path.name)
def test_the_newest_migration_installing_a_file_was_written_for_its_current_text(path):
    newest_install_is_of_the_current_text(ledger.migrations, SQL, path.name)


@pytest.mark.django_db
@pytest.mark.parametrize("path", SQL.files(), ids=lambda path: path.name)
def test_every_function_the_database_runs_is_the_files_text(path):
    installed_functions_are_the_files_text(SQL, path.name)
