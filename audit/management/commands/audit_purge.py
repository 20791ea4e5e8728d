"""`audit_purge`: delete archived audit events past the retention period."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser
from django.db import ProgrammingError

from audit.services.archives import MAX_PURGE_BATCH_EVENTS, PURGE_BATCH_EVENTS, ArchiveError, audit_events_purge
from fintech.operators import OPERATOR_CREDENTIALS_HELP, OperatorCommand

INSUFFICIENT_PRIVILEGE = "42501"


class Command(OperatorCommand):
    operator_permission = "audit.delete_auditarchive"
    help = (
        "Delete audit events that are sealed, inside an exported archive's checkpoint range and older than "
        "AUDIT_RETENTION_DAYS (never less than 7 years), whole checkpoints at a time in checkpoint order, "
        "stopping at the first checkpoint that does not qualify. Each batch commits with an audit.purged event "
        "naming the checkpoints it purged, so audit_verify keeps passing. Run it as the table owner: "
        "FINTECH_DATABASE_ROLE=owner python manage.py audit_purge. The runtime role has no DELETE privilege on "
        "audit tables, and the database's trigger refuses any other delete, whoever asks." + OPERATOR_CREDENTIALS_HELP
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would be deleted; delete nothing (default: %(default)s)"
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=PURGE_BATCH_EVENTS,
            help=f"events per transaction (1-{MAX_PURGE_BATCH_EVENTS}); a larger checkpoint goes alone"
            " (default: %(default)s)",
        )

    def handle(self, *args, dry_run: bool, batch_size: int, **options) -> None:
        operator = self.operator_authenticate()
        try:
            result = audit_events_purge(actor=operator.actor, dry_run=dry_run, batch_size=batch_size)
        except ArchiveError as error:
            raise CommandError(str(error)) from None
        except ProgrammingError as error:
            if getattr(error.__cause__, "sqlstate", None) == INSUFFICIENT_PRIVILEGE:
                raise CommandError(
                    f"the database refused the delete: {error}. audit_purge must run as the table owner "
                    "(FINTECH_DATABASE_ROLE=owner), and the write-once trigger refuses any row that is not sealed, "
                    "archived and older than 7 years."
                ) from error
            raise
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(f"cutoff: events that occurred before {result.cutoff.isoformat()}")
        if result.events:
            self.stdout.write(
                f"{verb} {result.events} events of checkpoints {result.first_checkpoint_id}-"
                f"{result.through_checkpoint_id} ({result.checkpoints} checkpoints)"
            )
        else:
            self.stdout.write("nothing to purge")
        self.stdout.write(f"purged through checkpoint: {result.through_checkpoint_id}")
        self.stdout.write(f"stopped: {result.stopped_because}")
