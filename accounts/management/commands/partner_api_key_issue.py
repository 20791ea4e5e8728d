"""`partner_api_key_issue`: give a partner server's OAuth client an API key; the key is printed once."""

from __future__ import annotations

from django.core.management.base import CommandError, CommandParser
from oauth2_provider.models import Application

from accounts.api_keys.services import MAX_LIFETIME_DAYS, partner_api_key_issue
from fintech.operators import OPERATOR_CREDENTIALS_HELP, OperatorCommand
from fintech.problems import DomainError


class Command(OperatorCommand):
    operator_permission = "accounts.add_partnerapikey"
    help = (
        "Issue an API key to a confidential OAuth client (client credentials grant). The partner sends it as "
        "X-API-Key together with its bearer token. The key is printed once and cannot be shown again."
        + OPERATOR_CREDENTIALS_HELP
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("client_id", help="OAuth client id of the partner's application (required)")
        parser.add_argument("--name", required=True, help="what the key is for, e.g. 'payouts server eu-1' (required)")
        parser.add_argument(
            "--scopes", required=True, help='space-separated, e.g. "accounts:read transfers:write" (required)'
        )
        parser.add_argument(
            "--expires-days",
            type=int,
            default=90,
            help=f"days until the key expires, 1-{MAX_LIFETIME_DAYS} (default: %(default)s)",
        )

    def handle(self, *args, client_id: str, name: str, scopes: str, expires_days: int, **options) -> None:
        application = Application.objects.filter(client_id=client_id).first()
        if application is None:
            raise CommandError(f"no OAuth client with client id {client_id!r}")
        operator = self.operator_authenticate()
        try:
            api_key, raw_key = partner_api_key_issue(
                application=application,
                name=name,
                scopes=scopes,
                expires_in_days=expires_days,
                actor=operator.actor,
            )
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None
        self.stderr.write(
            "WARNING: this is the only time the key is shown. It is not stored and cannot be recovered; "
            "hand it to the partner over a secure channel now."
        )
        self.stdout.write(raw_key)
        self.stderr.write(
            f"prefix: {api_key.prefix}  client: {application.client_id}  scopes: {api_key.scopes}  "
            f"expires: {api_key.expires_at.isoformat()}"
        )
