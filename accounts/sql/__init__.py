"""The accounts app's SQL: PL/pgSQL kept as `.sql` files, the one source migrations load.

The same rule as the ledger's (`ledger/sql/__init__.py`), repeated here
rather than imported because accounts sits below the ledger: a migration that
installs a file records its SHA-256 (`SqlFile(name, sha256)`) and installs it
only while the file is still that text; a changed file needs a newer
migration with the new hash. `accounts/tests/test_sql_source.py` fails until
it exists, and compares every installed function with the file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent
_FUNCTION = re.compile(r"CREATE OR REPLACE FUNCTION (\w+)\(.*?\$\$(.*?)\$\$;", re.DOTALL)


def sql_text(name: str) -> str:
    return (SQL_DIR / name).read_text(encoding="utf-8")


def sql_sha256(name: str) -> str:
    return hashlib.sha256(sql_text(name).encode("utf-8")).hexdigest()


def function_bodies(name: str) -> dict[str, str]:
    """{function name: body between the dollar quotes}, as PostgreSQL stores it in `pg_proc.prosrc`."""
    return {match.group(1): match.group(2) for match in _FUNCTION.finditer(sql_text(name))}


@dataclass(frozen=True)
class SqlFile:
    """A file a migration installs, and the hash of the text it was written for."""

    name: str
    sha256: str

    def operation(self):
        from django.db import migrations

        if sql_sha256(self.name) != self.sha256:
            return migrations.RunSQL(migrations.RunSQL.noop, migrations.RunSQL.noop)  # a newer migration installs it
        return migrations.RunSQL(sql_text(self.name), migrations.RunSQL.noop)
