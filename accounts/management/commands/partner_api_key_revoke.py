"""`partner_api_key_revoke`: revoke a partner API key by its prefix, with a reason on record."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser

from accounts.api_keys.keys import is_prefix, key_prefix
from accounts.api_keys.services import partner_api_key_revoke
from fintech.operators import OPERATOR_CREDENTIALS_HELP, OperatorCommand
from fintech.problems import DomainError


class Command(OperatorCommand):
    operator_permission = "accounts.revoke_partnerapikey"
    help = (
        "Revoke a partner API key at once. Calls presenting it get 401 invalid_api_key from then on."
        + OPERATOR_CREDENTIALS_HELP
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "prefix", help="the key's prefix, e.g. fk_live_abcd2345 (required; never the whole key: it is refused)"
        )
        parser.add_argument("--reason", required=True, help="why, for the audit trail (ticket, incident...) (required)")

    def handle(self, *args, prefix: str, reason: str, **options) -> None:
        # A whole key on a command line sits in shell history and process lists: refuse it (before asking for
        # credentials, so nothing is recorded with it), name only its prefix, and say the key still needs revoking.
        whole_key_prefix = key_prefix(prefix)
        if whole_key_prefix is not None:
            raise CommandError(
                f"that is a whole API key, not its prefix: run again with {whole_key_prefix} only. Nothing was"
                " changed: the key is still valid, and now in your shell history, so do revoke it."
            )
        if not is_prefix(prefix):
            raise CommandError("not an API key prefix: expected fk_live_ and 8 characters. Nothing was changed.")
        operator = self.operator_authenticate()
        try:
            api_key = partner_api_key_revoke(prefix=prefix, reason=reason, actor=operator.actor)
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None
        self.stdout.write(f"revoked {api_key.prefix} at {api_key.revoked_at.isoformat()}")
