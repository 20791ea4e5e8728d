"""`fields_rotate_key`: a new KEK version for encrypted model fields becomes current."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from audit.services.events import Actor
from fintech.problems import DomainError
from tokenvault.fields import field_key_provider
from tokenvault.services import kek_rotate


class Command(BaseCommand):
    help = (
        "Create a new field-encryption KEK version (FIELD_KEK_DIR); new values use it at once. "
        "Old versions still unwrap: run fields_rewrap, then fields_retire_key."
    )

    def handle(self, *args, **options) -> None:
        try:
            version = kek_rotate(
                actor=Actor.system("fields_rotate_key"), provider=field_key_provider(), key_ring="fields"
            )
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None
        self.stdout.write(f"field KEK version {version} is now current")
