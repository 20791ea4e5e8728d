"""`cert_issue SERVICE --san NAME ... --days N --out DIR`: a key pair and certificate from the platform CA.

The `cert` worker generates the key and signs; the key comes back sealed to
this command's ephemeral key (pki.key_transport) and is written here, 0600,
once: it is in no database and no log. The operator authenticates first and
is named in the `pki.certificate_issued` audit event.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from fintech.key_files import key_file_create
from fintech.operators import OPERATOR_CREDENTIALS_HELP, OperatorCommand
from pki import key_transport, tasks
from pki.commands import cert_grant, cert_task_call

DEFAULT_DAYS = 90


class Command(OperatorCommand):
    operator_permission = "pki.manage_certificates"
    help = (
        "Issue a certificate for SERVICE from the platform CA (server and client TLS). Writes SERIAL.key.pem"
        " (0600), SERIAL.pem and SERIAL.chain.pem into --out." + OPERATOR_CREDENTIALS_HELP
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("service", help="the service the certificate is for, e.g. vault (required)")
        parser.add_argument(
            "--san", action="append", required=True, help="a DNS name inside the CA's permitted domains; repeat"
            " for more (required)"
        )  # fmt: skip
        parser.add_argument(
            "--days",
            type=int,
            default=DEFAULT_DAYS,
            help="validity in days, 1 to PKI_MAX_DAYS (397) (default: %(default)s)",
        )
        parser.add_argument(
            "--out", required=True, help="existing directory the key and certificates are written to (required)"
        )

    def handle(self, *args, service: str, san: list[str], days: int, out: str, **options) -> None:
        directory = Path(out)
        if not directory.is_dir():
            raise CommandError(f"--out {out!r} is not a directory")  # refused before anyone is asked anything
        if not 1 <= days <= settings.PKI_MAX_DAYS:  # the worker checks it too; here it costs no second factor
            raise CommandError(f"validity_refused: --days must be between 1 and {settings.PKI_MAX_DAYS}")
        operator = self.operator_authenticate()
        recipient, recipient_public = key_transport.recipient_generate()
        grant = cert_grant("cert_issue", {"service": service, "sans": san, "days": days}, operator)
        answer = cert_task_call(tasks.certificate_issue, service, san, days, grant, recipient_public)
        serial = answer["serial"]
        key_path = directory / f"{serial}.key.pem"
        if not key_file_create(key_path, key_transport.open_sealed(answer["sealed_key"], recipient=recipient)):
            raise CommandError(f"{key_path} exists: not overwritten (certificate {serial} was issued)")
        key_file_create(directory / f"{serial}.pem", answer["certificate_pem"].encode(), mode=0o644)
        key_file_create(directory / f"{serial}.chain.pem", answer["chain_pem"].encode(), mode=0o644)
        self.stdout.write(
            f"issued {serial} for {service}: {', '.join(answer['sans'])}, not after {answer['not_after']},"
            f" sha256 {answer['fingerprint_sha256']}; key {key_path} (0600, shown nowhere else)"
        )
