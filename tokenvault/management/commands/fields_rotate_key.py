"""`fields_rotate_key`: a new KEK version for encrypted model fields becomes current."""

from __future__ import annotations

from django.core.management.base import CommandError

from fintech.operators import OPERATOR_CREDENTIALS_HELP, OperatorCommand
from fintech.problems import DomainError
from tokenvault.fields import field_key_provider
from tokenvault.services import kek_rotate


class Command(OperatorCommand):
    operator_permission = "accounts.manage_encryption_keys"
    help = (
        "Create a new field-encryption KEK version (FIELD_KEK_DIR); new values use it at once. "
        "Old versions still unwrap: run fields_rewrap, then fields_retire_key." + OPERATOR_CREDENTIALS_HELP
    )

    def handle(self, *args, **options) -> None:
        operator = self.operator_authenticate()
        try:
            version = kek_rotate(actor=operator.actor, provider=field_key_provider(), key_ring="fields")
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None
        self.stdout.write(f"field KEK version {version} is now current")
