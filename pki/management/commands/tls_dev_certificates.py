"""`tls_dev_certificates`: dev/test only, the certificates `make run`'s TLS terminator and vault client use.

The one command that signs in its own process instead of asking the `cert` worker with a staff grant: it runs
before that worker exists, in `make run`'s console, which holds every key in dev (pki/dev_certificates.py says
why that is acceptable). It refuses where the CA is not the generated dev one (production), and in any process
whose settings do not hold the issuing key (fintech/process_keys.py).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fintech.process_keys import key_holders
from pki.dev_certificates import dev_certificates_ensure


class Command(BaseCommand):
    help = (
        "Dev/test only: ensure PKI_TLS_DIR (var/tls/) holds the vault terminator's server certificate, the API "
        "role's vault client certificate and ca.pem, and that a CRL is published; issues only what is missing "
        "or due. Refused in production."
    )

    def handle(self, *args, **options) -> None:
        if not settings.PKI_KEY_GENERATE:
            raise CommandError(
                "dev_certificates_refused: these settings do not generate the platform CA (production); "
                "production certificates come from cert_issue"
            )
        if not settings.PKI_ISSUING_KEY_PATH:
            raise CommandError(
                "issuing_key_not_held: this process does not hold the issuing key; run it with FINTECH_PROCESS "
                f"unset (make run's console) or as one of {', '.join(key_holders('pki_issuing_key'))}"
            )
        done = dev_certificates_ensure(directory=Path(settings.PKI_TLS_DIR))
        for line in done:
            self.stdout.write(line)
        summary = f"{len(done)} changes" if done else "up to date, nothing written"
        self.stderr.write(f"{settings.PKI_TLS_DIR}: {summary}")
