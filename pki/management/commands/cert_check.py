"""`cert_check --within DAYS`: exit status 1 when an active certificate expires within DAYS (cron, monitoring).

Prints each such certificate on stdout; nothing and exit 0 when all is well.
Reads only, so no operator sign-in: a monitoring job runs it unattended.
"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from pki.selectors import certificate_days_left, certificates_expiring

DEFAULT_WITHIN_DAYS = 30


class Command(BaseCommand):
    help = "Exit non-zero when an active certificate expires within --within days (expired ones included)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--within", type=int, default=DEFAULT_WITHIN_DAYS, help="days ahead to look (default: %(default)s)"
        )

    def handle(self, *args, within: int, **options) -> None:
        if within < 0:
            raise CommandError("--within must be 0 or more days")
        now = timezone.now()
        expiring = list(certificates_expiring(within=dt.timedelta(days=within), now=now))
        for row in expiring:
            self.stdout.write(
                f"{row.serial}\t{row.service}\t{row.subject_cn}\t{row.not_after.isoformat()}\t"
                f"{certificate_days_left(row, now=now)} days left\t{row.kind}"
            )
        if expiring:
            raise CommandError(f"{len(expiring)} active certificates expire within {within} days", returncode=1)
        self.stdout.write(f"no active certificate expires within {within} days")
