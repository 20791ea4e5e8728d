"""The ledger's SQL: PL/pgSQL functions kept as `.sql` files, the one source migrations load (fintech/sql_files.py)."""

from __future__ import annotations

from pathlib import Path

from fintech.sql_files import SqlDirectory
from fintech.sql_files import SqlFile as _SqlFile

SQL = SqlDirectory(Path(__file__).resolve().parent)


class SqlFile(_SqlFile):
    directory = SQL
