"""`cert_revoke SERIAL --reason R`: revoke a certificate the platform issued and republish the CRL at once.

The reason is one of RFC 5280's (§5.3.1). The `cert` worker records it (and, unless the reason is
`superseded`, revokes the other certificates of the same key) and signs a new CRL; audited as
`pki.certificate_revoked` naming the operator. The terminators pick the CRL up from the database within
PKI_TERMINATOR_POLL_SECONDS and reload (ADR 0018).
"""

from __future__ import annotations

from django.core.management.base import CommandParser

from fintech.operators import OPERATOR_CREDENTIALS_HELP, OperatorCommand
from pki import tasks
from pki.commands import cert_grant, cert_task_call, serial_known
from pki.models import REVOCATION_REASONS


class Command(OperatorCommand):
    operator_permission = "pki.manage_certificates"
    help = "Revoke the certificate SERIAL (hex) and publish a new CRL." + OPERATOR_CREDENTIALS_HELP

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("serial", help="the certificate's serial, hex as cert_list shows it (required)")
        parser.add_argument(
            "--reason", required=True, choices=sorted(REVOCATION_REASONS), help="RFC 5280 reason (required)"
        )

    def handle(self, *args, serial: str, reason: str, **options) -> None:
        serial = serial_known(serial)
        operator = self.operator_authenticate()
        grant = cert_grant("cert_revoke", {"serial": serial, "reason": reason}, operator)
        answer = cert_task_call(tasks.certificate_revoke, serial, reason, grant)
        self.stdout.write(f"revoked {answer['serial']} ({answer['reason']}) at {answer['revoked_at']}; CRL published")
