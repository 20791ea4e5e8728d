"""`audit_verify`: check the whole trail in the database, or one archive file offline."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Sum

from audit.models import AuditCheckpoint
from audit.progress import ProgressBar
from audit.services.archives import audit_archive_verify
from audit.services.checkpoint_export import archive_export_compare
from audit.services.events import Actor
from audit.services.verification import VerificationReport, audit_trail_verify
from audit.signing import trusted_public_keys

MAX_PROBLEMS_SHOWN = 50


class Command(BaseCommand):
    help = (
        "Verify the audit trail: every checkpoint's hash, signature and chain link, every sealed event against "
        "its seal, no event left unsealed behind the sealer, no event whose time goes backwards, and the newest "
        "checkpoint exported outside the database (AUDIT_CHECKPOINT_EXPORT_DIR) still in it. Exit status 0 when it "
        "passes, 1 otherwise (every problem, up to 50, and FIRST BAD SEQUENCE are printed to stderr; a failure is "
        "also raised as an alert to security admins). The outcome is recorded only in the audit sealer process "
        "(AUDIT_SEALER_PROCESS=1). With --archive FILE, verify an export file on its own, without any database "
        "access."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--archive",
            type=Path,
            metavar="FILE",
            help="verify this archive file offline (default: none: verify the database's trail)",
        )
        parser.add_argument(
            "--no-record",
            action="store_true",
            help="do not store the outcome as an AuditVerification row (default: %(default)s)",
        )

    def handle(self, *args, archive: Path | None, no_record: bool, **options) -> None:
        if archive is None:
            # Only the sealer's login may insert the outcome (issue 12); elsewhere the hourly run records it.
            record = not no_record and settings.AUDIT_SEALER_PROCESS
            report = self._verify_database(record=record)
        else:
            report = self._verify_archive(archive)
        self.stdout.write(f"checkpoints checked: {report.checkpoints_checked}")
        self.stdout.write(f"events checked: {report.events_checked}")
        self.stdout.write(f"events purged: {report.purged_events}")
        self.stdout.write(f"events unsealed: {report.unsealed_events}")
        if archive is None:
            self.stdout.write(f"sequence gaps: {report.sequence_gaps} (inserts rolled back, or deleted unsealed)")
            exported = "compared" if report.export_checked else "not configured (AUDIT_CHECKPOINT_EXPORT_DIR)"
            self.stdout.write(f"newest exported checkpoint: {exported}")
            if not no_record and not record:
                self.stdout.write("outcome not recorded: only the audit sealer process records it")
        if report.passed:
            self.stdout.write(self.style.SUCCESS("audit trail verification PASSED"))
            return
        for _, message in report.problems[:MAX_PROBLEMS_SHOWN]:
            self.stderr.write(message)
        if len(report.problems) > MAX_PROBLEMS_SHOWN:
            self.stderr.write(f"... and {len(report.problems) - MAX_PROBLEMS_SHOWN} more problems")
        first_bad = report.first_bad_event_id
        self.stderr.write(f"FIRST BAD SEQUENCE: {first_bad if first_bad is not None else 'unknown'}")
        raise CommandError(f"audit trail verification FAILED: {len(report.problems)} problems", returncode=1)

    def _verify_database(self, *, record: bool) -> VerificationReport:
        total = AuditCheckpoint.objects.aggregate(total=Sum("event_count"))["total"] or 0
        with ProgressBar(total) as progress:
            return audit_trail_verify(progress=progress, record=record, actor=Actor.system("audit_verify"))

    def _verify_archive(self, path: Path) -> VerificationReport:
        """Only the file: no query on this path, so it runs where no database is reachable."""
        if not path.is_file():  # a typo is not tampering: say so, and do not report a failed verification
            raise CommandError(f"no archive file at {path}", returncode=2)
        bars: list[ProgressBar] = []

        def progress_for(total: int) -> ProgressBar:
            bars.append(ProgressBar(total))
            return bars[-1]

        try:
            # The configured public keys (files, no database): the archive's own header is not a trust root.
            result = audit_archive_verify(path, progress_for=progress_for, trusted_keys=trusted_public_keys())
            archive_export_compare(result)  # what the sealer exported on each seal, outside the database
        finally:
            for bar in bars:
                bar.finish()
        self.stdout.write(f"archive: {result.path}")
        self.stdout.write(f"sha256: {result.sha256}")
        if result.first_checkpoint_id is not None:
            anchor = f"previous hash {result.anchor_hash}" if result.anchor_hash else "genesis"
            self.stdout.write(
                f"checkpoints: {result.first_checkpoint_id}-{result.last_checkpoint_id} (chain anchored at {anchor})"
            )
        self.stdout.write(f"signing keys: {', '.join(result.key_ids) or 'none'}")
        return result.report
