"""`vault_rotate_key`: create a new KEK version and make it current."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from audit.services.events import Actor
from fintech.problems import DomainError
from tokenvault.services import kek_rotate


class Command(BaseCommand):
    help = (
        "Create a new vault KEK version; new records use it at once. Old versions still unwrap: "
        "run vault_rewrap, then vault_retire_key to destroy the old version."
    )

    def handle(self, *args, **options) -> None:
        try:
            version = kek_rotate(actor=Actor.system("vault_rotate_key"))
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None
        self.stdout.write(f"KEK version {version} is now current")
