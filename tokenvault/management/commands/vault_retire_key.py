"""`vault_retire_key`: destroy an old KEK version once no record uses it.

`--dry-run` answers "could it be retired now?" (the same refusals: current
version, retire grace, records still wrapped under it) without a staff grant
and without changing anything, so nobody asks a second person to approve a
retirement that would be refused.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from fintech.problems import DomainError
from tokenvault.grants import GRANT_HELP, StaffGrantCommandMixin
from tokenvault.services import kek_retire
from tokenvault.services.keys import kek_retire_check


class Command(StaffGrantCommandMixin, BaseCommand):
    help = (
        "Destroy a KEK version for good. Refused for the current version and while records still use it. Four"
        " eyes: `vault_grant vault_retire_key --kek-version N` records the request; once a second person approved,"
        " `vault_grant vault_retire_key --kek-version N --approval ID` prints the grant." + GRANT_HELP
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "version", type=int, help="the vault KEK version to destroy, a number (required; never the current one)"
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="only check whether the version could be retired now and say so; destroy nothing, ask for no"
            " grant (default: %(default)s)",
        )

    def handle(self, *args, version: int, dry_run: bool, **options) -> None:
        if dry_run:
            try:
                kek_id = kek_retire_check(version=version)
            except DomainError as error:
                raise CommandError(f"{error.code}: {error.detail} (dry run: nothing was changed)") from None
            self.stdout.write(
                f"dry run: KEK {kek_id} version {version} can be retired now (no record uses it); without"
                " --dry-run this destroys it for good. Nothing was changed."
            )
            return
        try:
            # One vault transaction: a retirement refused (too soon, still in use) leaves the grant unspent.
            with transaction.atomic(using="vault"):
                grant = self.staff_grant_use({"version": version})
                kek_retire(version=version, actor=grant.actor)
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None
        self.stdout.write(f"KEK version {version} retired")
