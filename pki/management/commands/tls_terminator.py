"""`tls_terminator`: nginx in front of the vault role (mutual TLS) and of the web role for partners (RFC 8705),
reloaded on a new CRL or a renewed certificate.

A long-running process of its own role, FINTECH_PROCESS=terminator (Procfile `terminator:`; production:
deploy/systemd/fintech-terminator.service); the work is pki/terminator_process.py's. Its one key is its TLS server
key (`terminator_server_key`, fintech/process_keys.py: PKI_TERMINATOR_CERT_PATH, PKI_TERMINATOR_KEY_PATH), which it
hands to nginx; the CRL and the CA certificates are public, and it reads the `Certificate` rows to follow its
certificate's renewals. Any other process (ops holds the staff grant signing key) is refused. SIGTERM or SIGINT
stops nginx and then itself.
"""

from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pki.terminator import nginx_binary
from pki.terminator_process import TerminatorError, partner_terminator, terminator_serve, vault_terminator


class Command(BaseCommand):
    help = (
        "Serve the vault role behind nginx with mutual TLS on PKI_TERMINATOR_VAULT_LISTEN (VAULT_TLS_PORT), and the "
        "web role's Unix socket to partners with pinned certificates on PKI_TERMINATOR_PARTNER_LISTEN (API_MTLS_PORT), "
        "reloading it within PKI_TERMINATOR_POLL_SECONDS of a new CRL or a renewal of its certificate. "
        "Runs as FINTECH_PROCESS=terminator; dev needs the files of tls_dev_certificates under PKI_TLS_DIR."
    )

    def handle(self, *args, **options) -> None:
        if not (settings.PKI_TERMINATOR_CERT_PATH and settings.PKI_TERMINATOR_KEY_PATH):
            raise CommandError(
                "terminator_key_not_held: this process does not hold the terminator's server key; run it as "
                "FINTECH_PROCESS=terminator (fintech/process_keys.py)"
            )
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        if nginx_binary() is None:  # dev settings then send the vault client straight to the vault over loopback
            self.stderr.write(
                "terminator: nginx is not installed (scripts/services.py installs nginx-light as root): no TLS "
                "terminator, the vault is reached over loopback HTTP and partners have no mTLS listener"
            )
            stop.wait()
            return
        terminators = [vault_terminator(), partner_terminator()]
        for terminator in terminators:
            self.stderr.write(
                f"terminator: https://{terminator.listen} ({terminator.client_certificate} client certificates)"
                f" -> {terminator.upstream} (prefix {terminator.prefix})"
            )
        try:
            status = terminator_serve(terminators, poll_seconds=settings.PKI_TERMINATOR_POLL_SECONDS, stop=stop)
        except (TerminatorError, OSError, ValueError) as error:
            raise CommandError(f"terminator_not_started: {error}") from error
        if status:
            raise CommandError(f"terminator_stopped: nginx exited with status {status}", returncode=status)
