"""`fields_retire_key VERSION`: destroy a field-encryption KEK version nothing uses any more."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services.events import Actor
from fintech.problems import DomainError
from tokenvault.field_keys import field_kek_retire


class Command(BaseCommand):
    help = "Destroy an old field KEK version; refused while any stored value still uses it (run fields_rewrap)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", type=int)

    def handle(self, *args, version: int, **options) -> None:
        try:
            field_kek_retire(version=version, actor=Actor.system("fields_retire_key"))
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None
        self.stdout.write(f"field KEK version {version} retired")
