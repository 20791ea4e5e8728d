"""`vault_rewrap`: rewrap every data key under the current KEK, in resumable batches."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fintech.problems import DomainError
from tokenvault.grants import GRANT_HELP, StaffGrantCommandMixin
from tokenvault.services import MAX_REWRAP_BATCH, vault_rewrap, vault_rewrap_pending_count


class Command(StaffGrantCommandMixin, BaseCommand):
    help = (
        "Rewrap data keys still under old KEK versions. Safe to interrupt: rerun with --resume-from LAST_ID."
        + GRANT_HELP
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help=f"records per transaction (1-{MAX_REWRAP_BATCH}) (default: %(default)s)",
        )
        parser.add_argument(
            "--resume-from",
            type=int,
            default=None,
            metavar="ID",
            help="start after this record id (default: from the first record)",
        )
        parser.add_argument(
            "--max-batches", type=int, default=1_000_000, help="stop after this many batches (default: %(default)s)"
        )

    def handle(self, *args, batch_size: int, resume_from: int | None, max_batches: int, **options) -> None:
        actor = self.staff_grant_use({}).actor
        pending = vault_rewrap_pending_count()
        done = 0
        after_id = resume_from
        try:
            for _batch in range(max_batches):
                progress = vault_rewrap(batch_size=batch_size, after_id=after_id, actor=actor)
                if progress.last_id is None:
                    break
                done += progress.rewrapped
                after_id = progress.last_id
                self.stderr.write(f"rewrapped {done}/{pending} (last id {after_id})")
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail} (resume with --resume-from {after_id})") from None
        self.stdout.write(f"done: {done} records rewrapped" + (f", last id {after_id}" if after_id else ""))
