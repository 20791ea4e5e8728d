"""`vault_rotate_key`: create a new KEK version and make it current."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from fintech.problems import DomainError
from tokenvault.grants import GRANT_HELP, StaffGrantCommandMixin
from tokenvault.services import kek_rotate


class Command(StaffGrantCommandMixin, BaseCommand):
    help = (
        "Create a new vault KEK version; new records use it at once. Old versions still unwrap: "
        "run vault_rewrap, then vault_retire_key to destroy the old version." + GRANT_HELP
    )

    def handle(self, *args, **options) -> None:
        grant = self.staff_grant_use({})
        try:
            version = kek_rotate(actor=grant.actor)
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None
        self.stdout.write(f"KEK version {version} is now current")
