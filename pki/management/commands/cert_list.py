"""`cert_list`: every certificate the platform knows, soonest to expire first. Reads only: no operator sign-in."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from pki.models import Certificate
from pki.selectors import certificate_days_left, certificate_list


class Command(BaseCommand):
    help = "List certificates: subject, SANs, serial, SHA-256 fingerprint, not-after, days left, status."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--status", choices=Certificate.Status.values, default=None, help="only this status (default: all)"
        )

    def handle(self, *args, status: str | None, **options) -> None:
        now = timezone.now()
        rows = list(certificate_list(status=status))
        self.stdout.write("subject\tsans\tserial\tsha256\tnot_after\tdays_left\tstatus\tkind\tservice")
        for row in rows:
            fields = [row.subject_cn, ",".join(row.sans), row.serial, row.fingerprint_sha256, row.not_after.isoformat(),
                      str(certificate_days_left(row, now=now)), row.status, row.kind, row.service]  # fmt: skip
            self.stdout.write("\t".join(fields))
        self.stderr.write(f"{len(rows)} certificates")
