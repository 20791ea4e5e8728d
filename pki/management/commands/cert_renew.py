"""`cert_renew SERIAL`: renew one certificate the platform issued now, without waiting for the daily job.

Same key, same names, the same validity length from now; the old certificate
is superseded (still valid until its not-after, so nothing breaks before the
new one is deployed). Signed by the `cert` worker; audited as
`pki.certificate_renewed` naming the operator.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError, CommandParser

from fintech.key_files import key_file_create
from fintech.operators import OPERATOR_CREDENTIALS_HELP, OperatorCommand
from pki import tasks
from pki.commands import cert_grant, cert_task_call, serial_known


class Command(OperatorCommand):
    operator_permission = "pki.manage_certificates"
    help = "Renew the certificate SERIAL (hex) now, keeping its key pair." + OPERATOR_CREDENTIALS_HELP

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("serial", help="the certificate's serial, hex as cert_list shows it (required)")
        parser.add_argument(
            "--out", default="", help="directory to write NEWSERIAL.pem and its chain into (default: none, print only)"
        )

    def handle(self, *args, serial: str, out: str, **options) -> None:
        if out and not Path(out).is_dir():
            raise CommandError(f"--out {out!r} is not a directory")
        serial = serial_known(serial)
        operator = self.operator_authenticate()
        answer = cert_task_call(tasks.certificate_renew, serial, cert_grant("cert_renew", {"serial": serial}, operator))
        if out:
            key_file_create(Path(out) / f"{answer['serial']}.pem", answer["certificate_pem"].encode(), mode=0o644)
            key_file_create(Path(out) / f"{answer['serial']}.chain.pem", answer["chain_pem"].encode(), mode=0o644)
        self.stdout.write(
            f"renewed {answer['replaces']} as {answer['serial']}: not after {answer['not_after']},"
            f" sha256 {answer['fingerprint_sha256']}; {answer['replaces']} is superseded"
        )
