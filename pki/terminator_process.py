"""The vault role's TLS terminator as a process: nginx in the foreground, reloaded when what it trusts changes.

Why a sidecar that polls: a revocation must take effect within 60 s (issue 14),
and the daily job renews the terminator's own certificate, but neither the
cert worker nor beat may touch nginx (another process, in production another
unit). So this process watches the two things that change under it, every
PKI_TERMINATOR_POLL_SECONDS:

* the CRL the cert worker publishes after every revocation and daily (the newest
  `CrlPublication` row, so terminators on other hosts see it too; the file
  PKI_CRL_PATH before rows held it): a new SHA-256 means a new CRL, and its
  number may only grow;
* its server certificate's `Certificate` row: a renewal (same key pair) sets
  `replaced_by`, so the newest certificate of the chain is served.

Either one rewrites nginx's files (pki.terminator.terminator_write), checks
them with `nginx -t` and reloads (SIGHUP): new workers take new connections,
old ones finish theirs, so nothing in flight is dropped. A CRL is checked
before nginx sees it (the current intermediate's signature, not stale),
because nginx would accept a file that is not one and then refuse every
client. Anything that fails (a write, the check, the database) is logged as an
error and the previous files are put back: nginx keeps serving the previous
configuration, and the next poll tries again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import subprocess  # nosec B404 - runs nginx, our own binary and files, never a shell
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.conf import settings
from django.db import close_old_connections

from pki import ca
from pki.dev_certificates import certificate_read, public_key_der
from pki.models import Certificate
from pki.selectors import certificate_newest_of, crl_newest_pem
from pki.terminator import NGINX_CONF, TerminatorFiles, nginx_check, nginx_reload, nginx_run, terminator_write

logger = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 10
STOP_TIMEOUT_SECONDS = 10
# What terminator_write writes: put back as they were when a change fails its check.
_WRITTEN_FILES = (NGINX_CONF, "server.pem", "server.key", "client-ca.pem", "crl.pem")


class TerminatorError(Exception):
    """nginx could not be started with the files it was given (at start only: later failures keep serving)."""


@dataclass
class Terminator:
    """One nginx in front of one upstream, and what it serves now (the serial and the CRL digest)."""

    prefix: Path  # nginx's directory: its configuration, copies of the files, logs (pki/terminator.py)
    listen: str
    upstream: str
    server_certificate_path: Path  # leaf then chain, as tls_dev_certificates writes it
    server_key_path: Path
    crl_path: Path
    server_name: str = "localhost"
    client_certificate: str = "required"  # pki.terminator.CLIENT_CERTIFICATE_MODES
    client_services: tuple[str, ...] = ()  # "required": only leaves of these services (pki.terminator)
    served_serial: str = ""
    crl_sha256: str = ""
    crl_number: int = 0  # never goes back: an older CRL replayed would un-revoke
    process: subprocess.Popen | None = field(default=None, repr=False)


def vault_terminator(prefix: Path | None = None) -> Terminator:
    """The vault listener from settings: mutual TLS on PKI_TERMINATOR_VAULT_LISTEN in front of
    PKI_TERMINATOR_VAULT_UPSTREAM, with the server certificate and key at PKI_TERMINATOR_CERT_PATH and
    PKI_TERMINATOR_KEY_PATH (dev: tls_dev_certificates' files; production: credentials of its unit)."""
    return Terminator(
        prefix=prefix or Path(settings.PKI_TLS_DIR) / "nginx-vault",
        listen=settings.PKI_TERMINATOR_VAULT_LISTEN,
        upstream=settings.PKI_TERMINATOR_VAULT_UPSTREAM,
        server_certificate_path=Path(settings.PKI_TERMINATOR_CERT_PATH),
        server_key_path=Path(settings.PKI_TERMINATOR_KEY_PATH),
        crl_path=Path(settings.PKI_CRL_PATH),
        client_services=tuple(settings.PKI_TERMINATOR_VAULT_CLIENT_SERVICES),
    )


def partner_terminator(prefix: Path | None = None) -> Terminator:
    """The partners' listener (RFC 8705) on PKI_TERMINATOR_PARTNER_LISTEN: any client certificate asked for and
    passed on ("pinned"), in front of the web role's Unix socket (PKI_TERMINATOR_WEB_SOCKET), where the application
    believes the certificate header (fintech/middleware/client_certificate.py). Served with the same server
    certificate and key as the vault's listener (PKI_TERMINATOR_CERT_PATH, PKI_TERMINATOR_KEY_PATH)."""
    return Terminator(
        prefix=prefix or Path(settings.PKI_TLS_DIR) / "nginx-partners",
        listen=settings.PKI_TERMINATOR_PARTNER_LISTEN,
        upstream=f"http://unix:{settings.PKI_TERMINATOR_WEB_SOCKET}:",
        server_certificate_path=Path(settings.PKI_TERMINATOR_CERT_PATH),
        server_key_path=Path(settings.PKI_TERMINATOR_KEY_PATH),
        crl_path=Path(settings.PKI_CRL_PATH),
        client_certificate="pinned",
    )


def _crl_source(terminator: Terminator) -> bytes:
    """The newest CRL the cert worker published: from the database, so a terminator on any host sees it (the
    file PKI_CRL_PATH is only on the cert worker's host); the file when no row holds one (before pki 0002)."""
    pem = crl_newest_pem()
    return pem.encode() if pem else terminator.crl_path.read_bytes()


def _crl_checked(crl_pem: bytes, *, not_below: int = 0) -> int:
    """The CRL's number if the current intermediate signed it, it is not stale and its number is not below
    `not_below`; ValueError otherwise. Whoever can write the database cannot forge a CRL (no issuing key) nor
    bring back an older one, which would un-revoke what was revoked since."""
    crl = x509.load_pem_x509_crl(crl_pem)
    if not ca.crl_signed_and_fresh(
        crl, ca.issuing_certificate(), now=dt.datetime.now(dt.UTC), fresh_for=dt.timedelta()
    ):
        raise ValueError("the CRL is not the current issuing CA's, or is past its nextUpdate")
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    if number < not_below:
        raise ValueError(f"the CRL's number {number} is below the one served ({not_below}): an older CRL")
    return number


def _newest_certificate(key_pem: bytes, serial: str) -> Certificate | None:
    """The renewal of `serial` to serve, when there is one with the same key; None to keep serving `serial`."""
    row = certificate_newest_of(serial=serial)
    if row is None or row.serial == serial:
        return None
    renewed = x509.load_pem_x509_certificate(row.certificate_pem.encode())
    if not ca.signed_by(renewed, ca.issuing_certificate()):  # the row is the database's word only
        logger.error("terminator: the renewal of its certificate is not signed by the issuing CA; not served",
                     extra={"serial": serial, "renewal": row.serial})  # fmt: skip
        return None
    key = load_pem_private_key(key_pem, password=None)
    if public_key_der(renewed.public_key()) != public_key_der(key.public_key()):
        logger.error(
            "terminator: the renewal of its certificate has another key; still serving the previous one",
            extra={"serial": serial, "renewal": row.serial},
        )
        return None
    if row.status == Certificate.Status.REVOKED:
        logger.error("terminator: the renewal of its certificate is revoked", extra={"renewal": row.serial})
    return row


def _files(terminator: Terminator, *, leaf_pem: str, crl_pem: bytes) -> TerminatorFiles:
    """What nginx serves with: the leaf and the platform chain, the key (unchanged by a renewal), the CA, the CRLs."""
    return TerminatorFiles(
        server_chain_pem=leaf_pem + ca.chain_pem(),
        server_key_pem=terminator.server_key_path.read_bytes(),
        client_ca_pem=ca.chain_pem(),
        crl_pem=crl_pem + ca.root_crl_pem(),  # nginx checks every level: the intermediate's CRL and the root's
    )


def _write(terminator: Terminator, files: TerminatorFiles) -> None:
    terminator_write(
        terminator.prefix, listen=terminator.listen, server_name=terminator.server_name,
        upstream=terminator.upstream, files=files, client_certificate=terminator.client_certificate,
        worker_user=_dev_worker_user(), client_services=terminator.client_services,
    )  # fmt: skip


def _dev_worker_user() -> str:
    """nginx started as root runs its workers as `nobody`, who cannot open the web role's socket (0660, the
    developer's group): on a machine where `make run` runs as root they stay root. Production's terminator runs
    as its own user in the socket's group (deploy/README.md)."""
    return "root" if os.geteuid() == 0 else ""


def terminator_start(terminator: Terminator) -> None:
    """Write the configuration, check it, start nginx in the foreground and wait until it listens."""
    certificate = certificate_read(terminator.server_certificate_path)
    if certificate is None:
        raise TerminatorError(f"no certificate at {terminator.server_certificate_path}: run tls_dev_certificates")
    key_pem = terminator.server_key_path.read_bytes()
    serial = ca.serial_hex(certificate)
    newest = _newest_certificate(key_pem, serial)
    leaf_pem = newest.certificate_pem if newest else ca.certificate_pem(certificate)
    crl_pem = _crl_source(terminator)
    crl_number = _crl_checked(crl_pem)
    _write(terminator, _files(terminator, leaf_pem=leaf_pem, crl_pem=crl_pem))
    check = nginx_check(terminator.prefix)
    if check.returncode != 0:
        raise TerminatorError(f"nginx -t refused {terminator.prefix / NGINX_CONF}: {check.stderr.strip()}")
    terminator.served_serial = newest.serial if newest else serial
    terminator.crl_sha256, terminator.crl_number = hashlib.sha256(crl_pem).hexdigest(), crl_number
    host, _, port = terminator.listen.rpartition(":")
    try:
        terminator.process = nginx_run(terminator.prefix, int(port), host=host, timeout_seconds=START_TIMEOUT_SECONDS)
    except RuntimeError as error:
        raise TerminatorError(str(error)) from error
    logger.info(
        "terminator: serving",
        extra={"listen": terminator.listen, "upstream": terminator.upstream, "serial": terminator.served_serial},
    )


def terminator_poll(terminator: Terminator) -> bool:
    """One check: a new CRL or a renewed certificate is written, checked and reloaded. Returns whether it reloaded.

    Never raises for what it finds: a failure is logged as an error, the previous files are put back, and nginx
    keeps serving what it served (the next poll tries again)."""
    close_old_connections()  # a long-running process: a connection the database dropped is replaced
    try:
        crl_pem = _crl_source(terminator)
        crl_sha256, crl_number = hashlib.sha256(crl_pem).hexdigest(), terminator.crl_number
        if crl_sha256 != terminator.crl_sha256:
            crl_number = _crl_checked(crl_pem, not_below=terminator.crl_number)
        newest = _newest_certificate(terminator.server_key_path.read_bytes(), terminator.served_serial)
    except Exception:
        logger.exception("terminator: cannot read the CRL or its certificate; still serving the previous ones")
        return False
    if crl_sha256 == terminator.crl_sha256 and newest is None:
        return False
    previous: dict[str, bytes] = {}
    try:
        previous = {name: (terminator.prefix / name).read_bytes() for name in _WRITTEN_FILES}
        leaf_pem = newest.certificate_pem if newest else _served_leaf_pem(terminator)
        _write(terminator, _files(terminator, leaf_pem=leaf_pem, crl_pem=crl_pem))
        check = nginx_check(terminator.prefix)
        if check.returncode != 0:
            raise TerminatorError(f"nginx -t: {check.stderr.strip()}")
        nginx_reload(terminator.prefix)
    except Exception:
        logger.exception("terminator: the new CRL or certificate was not applied; still serving the previous ones")
        _restore(terminator.prefix, previous)
        return False
    changed = {"crl_sha256": crl_sha256} if crl_sha256 != terminator.crl_sha256 else {}
    if newest is not None:
        changed.update(previous_serial=terminator.served_serial, serial=newest.serial)
        terminator.served_serial = newest.serial
    terminator.crl_sha256, terminator.crl_number = crl_sha256, crl_number
    logger.info("terminator: reloaded", extra=changed)
    return True


def _served_leaf_pem(terminator: Terminator) -> str:
    """The leaf nginx serves now: the first certificate of its server.pem."""
    return ca.certificate_pem(x509.load_pem_x509_certificate((terminator.prefix / "server.pem").read_bytes()))


def _restore(prefix: Path, previous: dict[str, bytes]) -> None:
    for name, content in previous.items():
        try:
            (prefix / name).write_bytes(content)
        except OSError:
            logger.exception("terminator: could not put back %s; nginx serves from memory until a reload", name)


def terminator_stop(terminator: Terminator) -> None:
    """Stop nginx (SIGTERM: it closes its listeners and exits); SIGKILL after STOP_TIMEOUT_SECONDS."""
    process = terminator.process
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


def terminator_serve(terminators: list[Terminator], *, poll_seconds: float, stop: threading.Event) -> int:
    """Start each nginx, poll until `stop` is set (the command's SIGTERM/SIGINT) or one dies; returns nginx's fate:
    0 when stopped, an nginx's exit status when it died by itself (the process supervisor then restarts us)."""
    try:
        for terminator in terminators:
            terminator_start(terminator)
        while not stop.wait(poll_seconds):
            for terminator in terminators:
                if terminator.process.poll() is not None:
                    logger.error("terminator: nginx exited", extra={"status": terminator.process.returncode})
                    return terminator.process.returncode or 1
                terminator_poll(terminator)
        return 0
    finally:
        for terminator in terminators:
            terminator_stop(terminator)
