"""`vault_retire_key`: destroy an old KEK version once no record uses it."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services.events import Actor
from fintech.problems import DomainError
from tokenvault.services import kek_retire


class Command(BaseCommand):
    help = "Destroy a KEK version for good. Refused for the current version and while records still use it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", type=int)

    def handle(self, *args, version: int, **options) -> None:
        try:
            kek_retire(version=version, actor=Actor.system("vault_retire_key"))
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None
        self.stdout.write(f"KEK version {version} retired")
