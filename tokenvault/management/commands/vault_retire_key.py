"""`vault_retire_key`: destroy an old KEK version once no record uses it."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from fintech.problems import DomainError
from tokenvault.grants import GRANT_HELP, StaffGrantCommandMixin
from tokenvault.services import kek_retire


class Command(StaffGrantCommandMixin, BaseCommand):
    help = (
        "Destroy a KEK version for good. Refused for the current version and while records still use it. Four"
        " eyes: the grant comes from `vault_grant vault_retire_key --kek-version N` once a second person approved."
        + GRANT_HELP
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", type=int, help="the KEK version to destroy (never the current one)")

    def handle(self, *args, version: int, **options) -> None:
        try:
            # One vault transaction: a retirement refused (too soon, still in use) leaves the grant unspent.
            with transaction.atomic(using="vault"):
                grant = self.staff_grant_use({"version": version})
                kek_retire(version=version, actor=grant.actor)
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None
        self.stdout.write(f"KEK version {version} retired")
