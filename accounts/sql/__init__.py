"""The accounts app's SQL (the access-change triggers): `.sql` files, the one source migrations load.

The rule is fintech/sql_files.py's, the same as the ledger's.
"""

from __future__ import annotations

from pathlib import Path

from fintech.sql_files import SqlDirectory
from fintech.sql_files import SqlFile as _SqlFile

SQL = SqlDirectory(Path(__file__).resolve().parent)


class SqlFile(_SqlFile):
    directory = SQL
