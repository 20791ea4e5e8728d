"""`partner_certificate_pin`: ask for a partner client's TLS certificate to be pinned (or its pin removed).

Nothing changes until a second security admin approves the request in the
admin (four eyes, `accounts.approvals.kinds_client_certificates`): pinning a
certificate lets its key holder obtain the client's tokens (RFC 8705).
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError, CommandParser
from oauth2_provider.models import Application

from accounts.approvals.kinds_client_certificates import client_certificate_change_request
from fintech.operators import OPERATOR_CREDENTIALS_HELP, OperatorCommand
from fintech.problems import DomainError


class Command(OperatorCommand):
    operator_permission = "accounts.change_oauthclientpolicy"
    help = (
        "Ask for the partner's certificate (PEM file) to be pinned to its OAuth client, so it authenticates at "
        "the mTLS token endpoint with that certificate alone (self_signed_tls_client_auth) and its tokens are bound "
        "to it; or, with --remove, ask for the pin to be removed (its bound tokens end). A second security admin "
        "approves it in the admin. Prints the request's id." + OPERATOR_CREDENTIALS_HELP
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("client_id", help="OAuth client id of the partner's confidential client (required)")
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument(
            "--pem", type=Path, help="path of the partner's certificate, PEM, no private key (required, or --remove)"
        )
        target.add_argument(
            "--remove",
            action="store_true",
            help="remove the client's pinned certificate (required, or --pem; default: %(default)s)",
        )
        parser.add_argument("--reason", required=True, help="why, for the approver and the audit trail (required)")

    def handle(self, *args, client_id: str, pem: Path | None, remove: bool, reason: str, **options) -> None:
        application = Application.objects.filter(client_id=client_id).first()
        if application is None:
            raise CommandError(f"no OAuth client with client id {client_id!r}")
        text = ""
        if pem is not None:
            try:
                text = pem.read_text()
            except (OSError, UnicodeDecodeError) as error:
                raise CommandError(f"cannot read {pem}: {error}") from None
            if "PRIVATE KEY" in text:
                raise CommandError(
                    "the file holds a private key: send only the certificate (it stays with the partner)"
                )
        operator = self.operator_authenticate()
        try:
            approval = client_certificate_change_request(
                application=application, certificate_pem=text, requested_by=operator.user, reason=reason
            )
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None
        self.stdout.write(str(approval.public_id))
        self.stderr.write(f"requested: {approval.summary}. A second security admin approves it in the admin.")
