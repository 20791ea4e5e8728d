"""The accounts SQL (access-change triggers) has one source: `accounts/sql/*.sql`, installed as written."""

from __future__ import annotations

import pytest

import accounts.migrations
from accounts.sql import SQL
from fintech.tests.sql_source_checks import (
    installed_functions_are_the_files_text,
    newest_install_is_of_the_current_text,
)


@pytest.mark.parametrize("path", SQL.files(), ids=lambda path: path.name)
def test_the_newest_migration_installing_a_file_was_written_for_its_current_text(path):
    newest_install_is_of_the_current_text(accounts.migrations, SQL, path.name)


@pytest.mark.django_db
@pytest.mark.parametrize("path", SQL.files(), ids=lambda path: path.name)
def test_every_function_the_database_runs_is_the_files_text(path):
    installed_functions_are_the_files_text(SQL, path.name)
