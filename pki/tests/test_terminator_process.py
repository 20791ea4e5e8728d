"""The terminator sidecar (pki/terminator_process.py): a real nginx in front of the real vault process, polled by hand.

Each test calls the poll step directly (no 10 s sleep): after a revocation the revoked client is refused and
another still served, while a request in flight across the reload completes and a kept-alive session keeps
working; after the daily job's kind of renewal the new serial is served; a CRL that is not one, or a configuration
`nginx -t` refuses, is logged, the previous files are put back and nginx keeps serving them.
Cost: about 4 s (nginx starts in milliseconds), plus about 10 s for the session's vault process when no other test
started it.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from pathlib import Path

import pytest
import requests
from cryptography import x509

from conftest import free_port
from pki import services
from pki.dev_certificates import API_VAULT_CLIENT, CA_BUNDLE, VAULT_SERVER, dev_certificates_ensure
from pki.models import CrlPublication
from pki.terminator import nginx_binary
from pki.terminator_process import Terminator, terminator_poll, terminator_start, terminator_stop

pytestmark = [
    pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (scripts/services.py installs it)"),
    pytest.mark.django_db(transaction=True, databases=["default", "vault"]),
]

RELOAD_TIMEOUT_SECONDS = 10


@pytest.fixture
def sidecar(tmp_path, settings, vault_live):
    """The dev certificate set in tmp_path, its CRL in tmp_path, and the terminator serving the vault with them."""
    settings.PKI_CRL_PATH = str(tmp_path / "crl.pem")
    tls = tmp_path / "tls"
    dev_certificates_ensure(directory=tls)
    terminator = Terminator(
        prefix=tmp_path / "nginx", listen=f"127.0.0.1:{free_port()}", upstream=vault_live.url,
        server_certificate_path=VAULT_SERVER.certificate_path(tls), server_key_path=VAULT_SERVER.key_path(tls),
        crl_path=Path(settings.PKI_CRL_PATH),
    )  # fmt: skip
    terminator_start(terminator)
    yield terminator, tls
    terminator_stop(terminator)


def _url(terminator: Terminator) -> str:
    return f"https://localhost:{terminator.listen.rpartition(':')[2]}/readyz"


def _client(tmp_path, label: str) -> tuple[str, tuple[str, str]]:
    """A client certificate of the platform CA, recorded like any other: (its serial, (cert path, key path))."""
    row, key_pem = services.certificate_issue(service="api", sans=["api.internal.example"], days=2, operator=None)
    cert_path, key_path = tmp_path / f"{label}.pem", tmp_path / f"{label}.key"
    cert_path.write_text(row.certificate_pem)
    key_path.write_bytes(key_pem)
    key_path.chmod(0o600)
    return row.serial, (str(cert_path), str(key_path))


def _status(terminator: Terminator, tls: Path, cert) -> int:
    return requests.get(_url(terminator), cert=cert, verify=str(tls / CA_BUNDLE), timeout=5).status_code


def _until(predicate, *, in_a_row: int = 5) -> None:
    """The reload hands new connections to new workers within milliseconds, and an old worker may still accept
    one in that moment: wait until `predicate` holds for `in_a_row` new connections running, bounded."""
    deadline, held = time.monotonic() + RELOAD_TIMEOUT_SECONDS, 0
    while held < in_a_row and time.monotonic() < deadline:
        held = held + 1 if predicate() else 0
        if not held:
            time.sleep(0.05)


def _tls_connection(terminator: Terminator, tls: Path, cert: tuple[str, str]) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(tls / CA_BUNDLE))
    context.load_cert_chain(*cert)
    raw = socket.create_connection(("127.0.0.1", int(terminator.listen.rpartition(":")[2])), timeout=5)
    return context.wrap_socket(raw, server_hostname="localhost")


def test_a_revoked_client_is_refused_after_one_poll_and_nothing_in_flight_is_dropped(sidecar, tmp_path):
    terminator, tls = sidecar
    revoked_serial, revoked = _client(tmp_path, "revoked")
    _, good = _client(tmp_path, "good")
    kept_alive = requests.Session()  # verify per request: REQUESTS_CA_BUNDLE would override the session's
    kept_alive.cert = good
    assert kept_alive.get(_url(terminator), verify=str(tls / CA_BUNDLE), timeout=5).status_code == 200
    assert _status(terminator, tls, revoked) == 200
    # A request in flight across the reload: headers and half its body now, the rest after.
    in_flight = _tls_connection(terminator, tls, good)
    in_flight.sendall(b"POST /readyz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nConnection: close\r\n\r\nab")

    services.certificate_revoke(serial=revoked_serial, reason="keyCompromise", operator=None)  # republishes the CRL
    reloaded = terminator_poll(terminator)

    assert reloaded is True
    _until(lambda: _status(terminator, tls, revoked) == 400)
    assert _status(terminator, tls, revoked) == 400  # "The SSL certificate error"
    assert _status(terminator, tls, good) == 200
    # The session carries on without an error (nginx closed its idle connection; it opened another).
    assert kept_alive.get(_url(terminator), verify=str(tls / CA_BUNDLE), timeout=5).status_code == 200
    in_flight.sendall(b"cd")
    answer = in_flight.recv(65536)
    in_flight.close()
    # The vault's own answer (its X-Request-ID; a POST without a CSRF token is its 403), not a reset or a 502.
    assert answer.startswith(b"HTTP/1.1 403 ") and b"\r\nX-Request-ID: " in answer, answer[:300]
    assert terminator_poll(terminator) is False  # nothing new since: no second reload


def test_a_renewed_server_certificate_is_served_after_one_poll(sidecar):
    terminator, tls = sidecar
    client = (str(API_VAULT_CLIENT.certificate_path(tls)), str(API_VAULT_CLIENT.key_path(tls)))
    before = terminator.served_serial

    renewed = services.certificate_renew(serial=before, operator=None)  # what the daily job does: same key
    reloaded = terminator_poll(terminator)

    def served_serial() -> str:
        with _tls_connection(terminator, tls, client) as connection:
            return format(x509.load_der_x509_certificate(connection.getpeercert(binary_form=True)).serial_number, "x")

    assert reloaded is True
    _until(lambda: served_serial() == renewed.serial)
    assert served_serial() == renewed.serial != before
    assert terminator.served_serial == renewed.serial
    assert _status(terminator, tls, client) == 200


def test_a_crl_that_is_not_one_is_logged_and_the_previous_configuration_keeps_serving(sidecar, settings, caplog):
    terminator, tls = sidecar
    client = (str(API_VAULT_CLIENT.certificate_path(tls)), str(API_VAULT_CLIENT.key_path(tls)))
    served_crl = (terminator.prefix / "crl.pem").read_bytes()
    newest = CrlPublication.objects.order_by("-number").first()
    CrlPublication.objects.filter(pk=newest.pk).update(crl_pem="not a CRL\n")  # with the database login alone

    with caplog.at_level(logging.ERROR, logger="pki.terminator_process"):
        reloaded = terminator_poll(terminator)

    assert reloaded is False
    assert [record.levelno for record in caplog.records] == [logging.ERROR]
    assert (terminator.prefix / "crl.pem").read_bytes() == served_crl
    assert terminator.process.poll() is None
    assert _status(terminator, tls, client) == 200


def test_a_configuration_nginx_refuses_is_logged_put_back_and_the_previous_one_keeps_serving(sidecar, caplog):
    terminator, tls = sidecar
    client = (str(API_VAULT_CLIENT.certificate_path(tls)), str(API_VAULT_CLIENT.key_path(tls)))
    served = {name: (terminator.prefix / name).read_bytes() for name in ("nginx.conf", "crl.pem")}
    terminator.upstream = "http://"  # `nginx -t`: no host in the upstream
    services.crl_publish()  # a new CRL to apply

    with caplog.at_level(logging.ERROR, logger="pki.terminator_process"):
        reloaded = terminator_poll(terminator)

    assert reloaded is False
    assert "nginx -t" in caplog.text
    assert {name: (terminator.prefix / name).read_bytes() for name in served} == served
    assert terminator.process.poll() is None
    assert _status(terminator, tls, client) == 200


def test_an_older_crl_brought_back_through_the_database_does_not_un_revoke(sidecar, tmp_path, caplog):
    """The database login cannot forge a CRL (no issuing key), but it could copy an older genuine one into a newer
    row: the terminator refuses a CRL number lower than the one it serves, and the revoked client stays out."""
    terminator, tls = sidecar
    before = CrlPublication.objects.order_by("-number").first()
    serial, revoked = _client(tmp_path, "soon-revoked")
    services.certificate_revoke(serial=serial, reason="keyCompromise", operator=None)
    assert terminator_poll(terminator) is True
    _until(lambda: _status(terminator, tls, revoked) == 400)
    newest = CrlPublication.objects.order_by("-number").first()
    CrlPublication.objects.create(
        number=newest.number + 1, this_update=newest.this_update, next_update=newest.next_update,
        revoked_count=0, sha256=before.sha256, path=before.path, crl_pem=before.crl_pem,
    )  # fmt: skip

    with caplog.at_level(logging.ERROR, logger="pki.terminator_process"):
        assert terminator_poll(terminator) is False

    assert "below the one served" in caplog.text
    assert _status(terminator, tls, revoked) == 400


def test_a_renewal_row_not_signed_by_the_issuing_ca_is_not_served(sidecar, caplog):
    """The database login could point the served certificate at a row of its own (same public key, signed by
    another key): the terminator serves only what the intermediate signed."""
    import datetime as dt

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from pki.models import Certificate

    terminator, _ = sidecar
    served = Certificate.objects.get(serial=terminator.served_serial)
    genuine = x509.load_pem_x509_certificate(served.certificate_pem.encode())
    now = dt.datetime.now(dt.UTC)
    forged = (
        x509.CertificateBuilder().subject_name(genuine.subject).issuer_name(genuine.issuer)
        .public_key(genuine.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
        .sign(ec.generate_private_key(ec.SECP384R1()), hashes.SHA384())
    )  # fmt: skip
    row = Certificate.objects.create(
        service=served.service,
        subject_cn=served.subject_cn,
        sans=served.sans,
        serial=format(forged.serial_number, "x"),
        fingerprint_sha256=forged.fingerprint(hashes.SHA256()).hex(),
        not_before=forged.not_valid_before_utc,
        not_after=forged.not_valid_after_utc,
        kind="issued",
        certificate_pem=forged.public_bytes(serialization.Encoding.PEM).decode(),
    )
    Certificate.objects.filter(pk=served.pk).update(replaced_by=row, status="superseded")

    with caplog.at_level(logging.ERROR, logger="pki.terminator_process"):
        assert terminator_poll(terminator) is False

    assert "not signed by the issuing CA" in caplog.text
    assert terminator.served_serial == served.serial
