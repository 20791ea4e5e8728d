"""A real nginx in front of the real vault process, configured by pki/terminator.py (issue 14 acceptance).

No client certificate, one from another CA, a revoked one (after the CRL reload), an expired one: refused.
The platform's: served. A TLS 1.2 client: refused. The API role tokenizes a card through it over mTLS, its
service token still required. Cost: about 3 s (nginx starts in milliseconds; the vault process is shared).
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import free_port
from pki import ca
from pki.terminator import (
    TerminatorFiles,
    crl_write,
    nginx_binary,
    nginx_reload,
    nginx_run,
    terminator_write,
)

pytestmark = [
    pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (scripts/services.py installs it)"),
    pytest.mark.django_db(transaction=True, databases=["default", "vault"]),
]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _leaf(issuing: ca.IssuingCa, service: str, name: str, *, not_before=None, not_after=None):
    key = ca.leaf_key_generate()
    certificate = ca.leaf_sign(
        ca=issuing, public_key=key.public_key(), service=service, sans=[name],
        not_before=not_before or _now() - ca.BACKDATE, not_after=not_after or _now() + dt.timedelta(days=2),
    )  # fmt: skip
    return certificate, ca.leaf_key_pem(key)


def _crl(issuing: ca.IssuingCa, *revoked: x509.Certificate, number: int) -> bytes:
    crl = ca.crl_sign(
        ca=issuing, revoked=[(c.serial_number, _now(), x509.ReasonFlags.key_compromise) for c in revoked],
        number=number, now=_now() - ca.BACKDATE, next_update=_now() + dt.timedelta(days=7),
    )  # fmt: skip
    # nginx checks every level of the chain against a CRL: the intermediate's list and the root's.
    return crl.public_bytes(serialization.Encoding.PEM) + ca.root_crl_pem()


def _foreign_client(tmp_path):
    """A client certificate from a CA that is not the platform's."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.internal.example")])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(_now() - dt.timedelta(days=1))
        .not_valid_after(_now() + dt.timedelta(days=1)).sign(key, hashes.SHA256())
    )  # fmt: skip
    return _files(tmp_path, "foreign", certificate, ca.leaf_key_pem(key))


def _files(tmp_path, label: str, certificate: x509.Certificate, key_pem: bytes) -> tuple[str, str]:
    cert_path, key_path = tmp_path / f"{label}.pem", tmp_path / f"{label}.key"
    cert_path.write_text(_pem(certificate))
    key_path.write_bytes(key_pem)
    key_path.chmod(0o600)
    return str(cert_path), str(key_path)


@pytest.fixture
def terminator(tmp_path, vault_live):
    """nginx on a free port, TLS 1.3 only, requiring the platform's client certificates, in front of the vault."""
    issuing = ca.issuing_ca_load()
    server, server_key = _leaf(issuing, "vault", "localhost")
    port = free_port()
    prefix = tmp_path / "nginx"
    terminator_write(
        prefix, listen=f"127.0.0.1:{port}", server_name="localhost", upstream=vault_live.url, client_services=("api",),
        files=TerminatorFiles(server_chain_pem=_pem(server) + ca.chain_pem(), server_key_pem=server_key,
                              client_ca_pem=ca.chain_pem(), crl_pem=_crl(issuing, number=1)),
    )  # fmt: skip
    process = nginx_run(prefix, port)
    bundle = tmp_path / "platform-ca.pem"
    bundle.write_text(ca.chain_pem())
    yield {"url": f"https://localhost:{port}", "port": port, "prefix": prefix, "ca": str(bundle), "issuing": issuing}
    process.terminate()
    process.wait(timeout=10)


def _get(terminator, cert=None):
    return requests.get(f"{terminator['url']}/readyz", cert=cert, verify=terminator["ca"], timeout=5)


def test_only_a_current_platform_certificate_gets_through(terminator, tmp_path):
    issuing = terminator["issuing"]
    good = _files(tmp_path, "api", *_leaf(issuing, "api", "api.internal.example"))
    expired = _files(tmp_path, "expired", *_leaf(
        issuing, "api", "api.internal.example", not_before=_now() - dt.timedelta(days=3),
        not_after=_now() - dt.timedelta(days=1),
    ))  # fmt: skip

    assert _get(terminator, cert=good).status_code == 200
    assert _get(terminator).status_code == 400  # "No required SSL certificate was sent"
    assert _get(terminator, cert=_foreign_client(tmp_path)).status_code == 400
    assert _get(terminator, cert=expired).status_code == 400
    # The platform's, but another service's (here a server certificate): not a client of this listener.
    server_leaf = _files(tmp_path, "server", *_leaf(issuing, "vault-terminator", "vault.internal.example"))
    assert _get(terminator, cert=server_leaf).status_code == 403

    revoked_cert, revoked_key = _leaf(issuing, "api", "api.internal.example")
    revoked = _files(tmp_path, "revoked", revoked_cert, revoked_key)
    assert _get(terminator, cert=revoked).status_code == 200
    crl_write(terminator["prefix"], _crl(issuing, revoked_cert, number=2))
    nginx_reload(terminator["prefix"])
    deadline = time.monotonic() + 10
    while _get(terminator, cert=revoked).status_code != 400 and time.monotonic() < deadline:
        time.sleep(0.1)  # the reload hands over to new workers; old ones finish their connections
    assert _get(terminator, cert=revoked).status_code == 400
    assert _get(terminator, cert=good).status_code == 200


def test_a_tls_1_2_client_is_refused(terminator):
    context = ssl.create_default_context(cafile=terminator["ca"])
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", terminator["port"]), timeout=5) as raw, pytest.raises(ssl.SSLError):
        context.wrap_socket(raw, server_hostname="localhost").do_handshake()


def test_the_api_role_tokenizes_a_card_through_the_terminator_over_mutual_tls(terminator, settings, tmp_path):
    from audit.services.events import Actor
    from tokenvault.client import vault_client

    cert, key = _files(tmp_path, "api", *_leaf(terminator["issuing"], "api", "api.internal.example"))
    settings.VAULT_URL = terminator["url"]
    settings.VAULT_CA_BUNDLE = terminator["ca"]
    settings.VAULT_CLIENT_CERT_PATH, settings.VAULT_CLIENT_KEY_PATH = cert, key

    tokenized = vault_client().tokenize(token_type="card", value="4111111111111111", actor=Actor.system("test"))
    assert tokenized.token.startswith("tok_card_")
    # The service token stays the second factor: the right certificate with a wrong token is still refused.
    refused = requests.post(
        f"{terminator['url']}/internal/v1/tokenize", json={}, cert=(cert, key), verify=terminator["ca"], timeout=5,
        headers={"Authorization": "Bearer not-the-service-token"},
    )  # fmt: skip
    assert refused.status_code in (401, 403)


def test_what_the_application_is_told_about_a_certificate_comes_from_nginx_alone(tmp_path):
    """A client's own X-Client-Verify / X-Client-Cert headers are replaced on every request, on both listeners."""
    import http.server
    import json
    import threading

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(
                {k: self.headers.get(k) for k in ("X-Client-Verify", "X-Client-Cert", "X-Request-ID")}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    echo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    issuing = ca.issuing_ca_load()
    server, server_key = _leaf(issuing, "api", "localhost")
    bundle = tmp_path / "platform-ca.pem"
    bundle.write_text(ca.chain_pem())
    client = _files(tmp_path, "client", *_leaf(issuing, "partner", "partner.internal.example"))
    forged = {"X-Client-Verify": "SUCCESS", "X-Client-Cert": "forged", "X-Request-ID": "forged-id"}
    try:
        for required in (True, False):
            port = free_port()
            prefix = tmp_path / f"nginx-{required}"
            terminator_write(
                prefix, listen=f"127.0.0.1:{port}", server_name="localhost",
                upstream=f"http://127.0.0.1:{echo.server_port}", client_certificate="required" if required else "none",
                files=TerminatorFiles(server_chain_pem=_pem(server) + ca.chain_pem(), server_key_pem=server_key,
                                      client_ca_pem=ca.chain_pem(), crl_pem=_crl(issuing, number=1)),
            )  # fmt: skip
            process = nginx_run(prefix, port)
            try:
                url = f"https://localhost:{port}/"
                seen = requests.get(url, headers=forged, verify=str(bundle), timeout=5,
                                    cert=client if required else None).json()  # fmt: skip
            finally:
                process.terminate()
                process.wait(timeout=10)
            assert seen["X-Request-ID"] != "forged-id" and len(seen["X-Request-ID"]) == 32  # nginx's $request_id
            if required:
                assert seen["X-Client-Verify"] == "SUCCESS" and seen["X-Client-Cert"].startswith("-----BEGIN")
            else:
                assert seen["X-Client-Verify"] == "NONE" and not seen["X-Client-Cert"]
    finally:
        echo.shutdown()
