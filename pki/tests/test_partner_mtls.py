"""RFC 8705 end to end: a real nginx mTLS listener ("pinned") in front of a real gunicorn on a Unix socket.

A partner pinned (four eyes) to certificate A gets a token at /o/token/ with
that certificate alone; the token works over a connection presenting A, is
refused (401 invalid_token) with certificate B or none, and introspection
shows its `cnf.x5t#S256`. The application believes the certificate nginx
passes because it came over the socket: the same header sent to gunicorn's TCP
port authenticates nobody. Cost: about 4 s (gunicorn starts once per test).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from accounts.api_keys.services import partner_api_key_issue
from accounts.tests.oauth_helpers import partner_client
from accounts.tests.test_certificate_bound_tokens import pin
from audit.services.events import Actor
from conftest import LiveServer, free_port, stop_process
from fintech.middleware.client_certificate import x5t_s256
from pki import ca
from pki.terminator import TerminatorFiles, nginx_binary, nginx_run, terminator_write

pytestmark = [
    pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (scripts/services.py installs it)"),
    pytest.mark.django_db(transaction=True),
]


def _partner_certificate(directory: Path, label: str) -> tuple[x509.Certificate, tuple[str, str]]:
    """A partner's own self-signed client certificate and key files (the platform CA is not involved)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{label}.partner.example")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = directory / f"{label}.pem", directory / f"{label}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(ca.leaf_key_pem(key))
    key_path.chmod(0o600)
    return certificate, (str(cert_path), str(key_path))


@pytest.fixture
def mtls_listener(tmp_path):
    """gunicorn on TCP (probed) and a short Unix socket path; nginx's pinned listener proxying to the socket."""
    socket_dir = Path(tempfile.mkdtemp(prefix="mtls-", dir="/tmp"))  # a Unix socket path has ~100 bytes at most
    web_socket = socket_dir / "web.sock"
    server = LiveServer(tmp_path, unix_socket=web_socket)
    if os.geteuid() == 0:  # nginx started as root runs its workers as nobody: let them open the socket
        socket_dir.chmod(0o711)
        web_socket.chmod(0o666)
    issuing = ca.issuing_ca_load()
    key = ca.leaf_key_generate()
    now = dt.datetime.now(dt.UTC)
    server_certificate = ca.leaf_sign(
        ca=issuing, public_key=key.public_key(), service="api-mtls", sans=["localhost"],
        not_before=now - ca.BACKDATE, not_after=now + dt.timedelta(days=2),
    )  # fmt: skip
    port = free_port()
    prefix = tmp_path / "nginx"
    terminator_write(
        prefix, listen=f"127.0.0.1:{port}", server_name="localhost", upstream=f"http://unix:{web_socket}:",
        client_certificate="pinned",
        files=TerminatorFiles(
            server_chain_pem=ca.certificate_pem(server_certificate) + ca.chain_pem(),
            server_key_pem=ca.leaf_key_pem(key), client_ca_pem=ca.chain_pem(), crl_pem=ca.root_crl_pem(),
        ),
    )  # fmt: skip
    nginx = nginx_run(prefix, port)
    bundle = tmp_path / "platform-ca.pem"
    bundle.write_text(ca.chain_pem())
    yield {"url": f"https://localhost:{port}", "direct": server.url, "ca": str(bundle)}
    stop_process(nginx)
    server.stop()
    shutil.rmtree(socket_dir, ignore_errors=True)


def test_a_token_got_with_certificate_a_is_good_with_a_only(mtls_listener, tmp_path):
    application, _ = partner_client(can_introspect=True)
    _, api_key = partner_api_key_issue(
        application=application, name="mtls e2e", scopes="accounts:read", expires_in_days=30,
        actor=Actor.system("test"),
    )  # fmt: skip
    certificate_a, files_a = _partner_certificate(tmp_path, "a")
    _, files_b = _partner_certificate(tmp_path, "b")
    pin(application, certificate_a.public_bytes(serialization.Encoding.PEM).decode())
    url, verify = mtls_listener["url"], mtls_listener["ca"]
    form = {"grant_type": "client_credentials", "client_id": application.client_id, "scope": "accounts:read"}

    assert requests.post(f"{url}/o/token/", data=form, cert=files_b, verify=verify, timeout=10).status_code == 401
    issued = requests.post(f"{url}/o/token/", data=form, cert=files_a, verify=verify, timeout=10)
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "X-API-Key": api_key}

    mine = requests.get(f"{url}/v1/partner/whoami", headers=headers, cert=files_a, verify=verify, timeout=10)
    assert mine.status_code == 200, mine.text
    assert mine.json()["client_id"] == application.client_id
    for cert in (files_b, None):
        refused = requests.get(f"{url}/v1/partner/whoami", headers=headers, cert=cert, verify=verify, timeout=10)
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]

    seen = requests.post(
        f"{url}/o/introspect/", data={"token": token, "client_id": application.client_id}, cert=files_a,
        verify=verify, timeout=10,
    ).json()  # fmt: skip
    assert seen["active"] is True and seen["cnf"] == {"x5t#S256": x5t_s256(certificate_a)}

    # The header nginx would set, sent straight to gunicorn's TCP port: nobody is authenticated by it.
    forged = {"X-Client-Cert": quote(Path(files_a[0]).read_text()), "X-Client-Verify": "SUCCESS"}
    direct = mtls_listener["direct"]
    assert requests.post(f"{direct}/o/token/", data=form, headers=forged, timeout=10).status_code == 401
    assert requests.get(f"{direct}/v1/partner/whoami", headers={**headers, **forged}, timeout=10).status_code == 401
