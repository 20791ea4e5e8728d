"""`flush`, able to empty write-once tables in test databases only.

pytest-django's transactional tests end with a flush (TRUNCATE), which the
write-once triggers refuse. Where WRITE_ONCE_FLUSH_ALLOWED is on (test settings
only), this disables those triggers for the flush and re-enables them ALWAYS
afterwards; that needs table ownership, which only the owner role has.
Everywhere else it is Django's flush, and the triggers refuse it.
"""

from django.conf import settings
from django.core.management.commands.flush import Command as DjangoFlushCommand
from django.db import connections

from fintech.db_privileges import write_once_tables


class Command(DjangoFlushCommand):
    def handle(self, **options):
        database = options["database"]
        if not getattr(settings, "WRITE_ONCE_FLUSH_ALLOWED", False):
            return super().handle(**options)
        connection = connections[database]
        states = self._trigger_states(connection, write_once_tables(database))
        self._apply(connection, [(table, name, "DISABLE TRIGGER") for table, name, _ in states])
        try:
            return super().handle(**options)
        finally:
            self._apply(connection, [(table, name, self._RESTORE[state]) for table, name, state in states])

    # pg_trigger.tgenabled -> the clause that puts it back
    _RESTORE = {
        "O": "ENABLE TRIGGER",
        "A": "ENABLE ALWAYS TRIGGER",
        "R": "ENABLE REPLICA TRIGGER",
        "D": "DISABLE TRIGGER",
    }

    @staticmethod
    def _trigger_states(connection, tables: list[str]) -> list[tuple[str, str, str]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND c.relname = ANY(%s) ORDER BY 1, 2",
                [tables],
            )
            return [(table, name, str(state)) for table, name, state in cursor.fetchall()]

    @staticmethod
    def _apply(connection, changes: list[tuple[str, str, str]]) -> None:
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            for table, trigger, clause in changes:
                cursor.execute(f"ALTER TABLE {quote(table)} {clause} {quote(trigger)}")
