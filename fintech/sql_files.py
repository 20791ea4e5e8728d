"""SQL kept as `.sql` files, the one source migrations load, for every app that has some (ledger, accounts).

A migration that installs a file records the file's SHA-256 next to it
(`SqlFile(name, sha256)`). It installs the file only while the file is still
the text it was written for; once the file changes, a newer migration with
the new hash installs it and the older one does nothing. Each app's
`tests/test_sql_source.py` (through `fintech.tests.sql_source_checks`) fails
until that migration exists, and compares every installed function with the file.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

_FUNCTION = re.compile(r"CREATE OR REPLACE FUNCTION (\w+)\(.*?\$\$(.*?)\$\$;", re.DOTALL)


@dataclass(frozen=True)
class SqlDirectory:
    """An app's `sql/` folder."""

    path: Path

    def text(self, name: str) -> str:
        return (self.path / name).read_text(encoding="utf-8")

    def sha256(self, name: str) -> str:
        return hashlib.sha256(self.text(name).encode("utf-8")).hexdigest()

    def function_bodies(self, name: str) -> dict[str, str]:
        """{function name: body between the dollar quotes}, as PostgreSQL stores it in `pg_proc.prosrc`."""
        return {match.group(1): match.group(2) for match in _FUNCTION.finditer(self.text(name))}

    def files(self) -> list[Path]:
        return sorted(self.path.glob("*.sql"))


@dataclass(frozen=True)
class SqlFile:
    """A file a migration installs, and the hash of the text it was written for; subclassed per app."""

    directory: ClassVar[SqlDirectory]
    name: str
    sha256: str

    def operation(self):
        from django.db import migrations

        if self.directory.sha256(self.name) != self.sha256:
            return migrations.RunSQL(migrations.RunSQL.noop, migrations.RunSQL.noop)  # a newer migration installs it
        return migrations.RunSQL(self.directory.text(self.name), migrations.RunSQL.noop)
