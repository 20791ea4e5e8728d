"""`audit_export`: write sealed checkpoints to a read-only archive file and register it."""

from __future__ import annotations

from datetime import date

from django.core.management.base import CommandError, CommandParser

from audit.progress import ProgressBar
from audit.services.archives import ArchiveError, audit_archive_export
from fintech.operators import OPERATOR_CREDENTIALS_HELP, OperatorCommand


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"not a date (YYYY-MM-DD): {text!r}") from None


class Command(OperatorCommand):
    operator_permission = "audit.view_auditevent"
    help = (
        "Export every checkpoint holding an event that occurred in [--from, --to) (UTC days) to a gzip JSON "
        "Lines archive: whole checkpoints, with their events, seals and signing keys. The file is never "
        "overwritten, is made read-only (0444), verified by reading it back, and recorded as an AuditArchive "
        "with its sha256, together with an audit.exported event." + OPERATOR_CREDENTIALS_HELP
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from", dest="date_from", required=True, metavar="YYYY-MM-DD", help="first day, UTC (required)"
        )
        parser.add_argument(
            "--to", dest="date_to", required=True, metavar="YYYY-MM-DD", help="the day after the last, UTC (required)"
        )
        parser.add_argument(
            "--output-dir", metavar="DIR", help="where the archive is written (default: settings.AUDIT_ARCHIVE_DIR)"
        )

    def handle(self, *args, date_from: str, date_to: str, output_dir: str | None, **options) -> None:
        day_from, day_to = _day(date_from), _day(date_to)
        operator = self.operator_authenticate()
        bars: list[ProgressBar] = []

        def progress_for(total: int) -> ProgressBar:
            bars.append(ProgressBar(total))
            return bars[-1]

        try:
            result = audit_archive_export(
                date_from=day_from,
                date_to=day_to,
                actor=operator.actor,
                output_dir=output_dir,
                progress_for=progress_for,
            )
        except ArchiveError as error:
            raise CommandError(str(error)) from None
        finally:
            for bar in bars:
                bar.finish()
        archive = result.archive
        if result.unsealed_in_range:
            self.stderr.write(
                f"warning: {result.unsealed_in_range} events in the range are not sealed yet and are not exported"
            )
        self.stdout.write(f"archive: {result.path}")
        self.stdout.write(f"sha256: {archive.sha256}")
        self.stdout.write(
            f"checkpoints: {archive.first_checkpoint_id}-{archive.last_checkpoint_id} ({result.checkpoints})"
        )
        self.stdout.write(f"events: {result.events}")
