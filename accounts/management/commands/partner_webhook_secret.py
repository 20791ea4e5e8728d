"""`partner_webhook_secret CLIENT_ID`: print the secret a partner verifies our webhook signatures with."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from oauth2_provider.models import Application

from audit.models import AuditEvent
from audit.services.events import audit_event_record
from fintech.operators import OPERATOR_CREDENTIALS_HELP, OperatorCommand
from ledger.outbox.webhooks import webhook_secret_for_client


class Command(OperatorCommand):
    operator_permission = "accounts.change_oauthclientpolicy"
    help = (
        "Print the webhook signing secret of an OAuth client: HMAC-SHA256(WEBHOOK_SIGNING_KEY, client_id). "
        "It is derived, not stored, so it can be shown again; showing it is recorded in the audit trail. "
        "Rotating WEBHOOK_SIGNING_KEY changes every partner's secret." + OPERATOR_CREDENTIALS_HELP
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("client_id", help="OAuth client id of the partner's application (required)")

    def handle(self, *args, client_id: str, **options) -> None:
        if not Application.objects.filter(client_id=client_id).exists():
            raise CommandError(f"no OAuth client with client id {client_id!r}")
        try:
            secret = webhook_secret_for_client(client_id)
        except ImproperlyConfigured as error:
            raise CommandError(str(error)) from None
        operator = self.operator_authenticate()  # a secret that can forge webhooks: shown to a named person only
        with transaction.atomic(durable=True):
            audit_event_record(
                event_type="oauth.webhook_secret_shown",
                outcome=AuditEvent.Outcome.SUCCESS,
                actor=operator.actor,
                object_type="oauth.client",
                object_id=client_id,
            )
        self.stderr.write(
            "WARNING: this secret lets its holder forge webhooks to the partner. Hand it over a secure channel."
        )
        self.stdout.write(secret)
