"""`vault_reap_orphans [--dry-run] [--grace-hours N]`: shred vault records nothing references (ADR 0012)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError

from fintech.operators import OPERATOR_CREDENTIALS_HELP, OperatorCommand
from tokenvault.services.reaper import GRACE_HOURS_MIN, vault_orphans_reap


class Command(OperatorCommand):
    operator_permission = "accounts.manage_encryption_keys"
    help = (
        "Shred token vault records that no card or profile references and that nobody was issued for the "
        "grace period (default VAULT_ORPHAN_GRACE_HOURS). Runs in the API role, through the vault's "
        "internal API; each shred is audited by the vault as system:vault_reaper. --dry-run only counts and asks"
        " no credentials; otherwise" + OPERATOR_CREDENTIALS_HELP
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="list and count, shred nothing (default: %(default)s)"
        )
        parser.add_argument(
            "--grace-hours",
            type=int,
            default=None,
            help=f"hours since a record was last issued before it may be shredded, at least {GRACE_HOURS_MIN}"
            " (default: settings.VAULT_ORPHAN_GRACE_HOURS)",
        )

    def handle(self, *args, dry_run: bool, grace_hours: int | None, **options) -> None:
        grace_hours = settings.VAULT_ORPHAN_GRACE_HOURS if grace_hours is None else grace_hours
        if grace_hours < GRACE_HOURS_MIN:
            raise CommandError(f"--grace-hours must be at least {GRACE_HOURS_MIN}")
        if not dry_run:
            self.operator_authenticate()  # a person runs the shredding; the daily job is system:vault_reaper
        summary = vault_orphans_reap(grace_hours=grace_hours, dry_run=dry_run)
        verb = "would shred" if dry_run else "shredded"
        count = summary.orphans if dry_run else summary.shredded
        self.stdout.write(
            f"records not issued since {summary.not_issued_since.isoformat()}: {summary.examined}; "
            f"referenced: {summary.referenced}; orphans: {summary.orphans}; {verb}: {count}; "
            f"skipped (re-issued or already shredded): {summary.skipped}"
        )
