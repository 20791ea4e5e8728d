"""The TLS terminator in front of the vault role: an nginx configuration built from the platform CA (issue 14).

Why nginx writes it this way:

* TLS 1.3 only (seed 004), the platform's server certificate, and a client
  certificate *required* from the platform CA (`ssl_verify_client on`, the
  chain root + intermediate, depth 2) and checked against the CRL the cert
  worker publishes (`ssl_crl`). A missing, foreign, revoked or expired
  certificate never reaches the application.
* Headers that carry the verified certificate are set by nginx on every
  request (`proxy_set_header` replaces what a client sent), so nothing behind
  it can be told a certificate it did not see; so is X-Request-ID (nginx's own
  id), since the application believes the socket's forwarding headers.
* The vault's service token stays as the second factor: nginx forwards the
  `Authorization` header untouched.
* A CRL or certificate change is picked up by `nginx -s reload`, which drains
  old workers without dropping connections.

The directory layout is `prefix/` holding `nginx.conf`, `server.pem`,
`server.key`, `client-ca.pem`, `crl.pem` and nginx's own temp and log
directories, so a test (or `make run`) runs it with `nginx -p PREFIX -c
nginx.conf` as an unprivileged process.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess  # nosec B404 - runs nginx, our own binary and files, never a shell
import time
from dataclasses import dataclass
from pathlib import Path

from fintech.key_files import file_replace

NGINX_CONF = "nginx.conf"

_TEMPLATE = """# Written by pki/terminator.py: do not edit; regenerate.
{worker_user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server_tokens off;
    server {{
        listen {listen} ssl;
        server_name {server_name};
        ssl_protocols TLSv1.3;
        ssl_certificate {prefix}/server.pem;
        ssl_certificate_key {prefix}/server.key;
{client_auth}{client_services}        ssl_session_tickets off;
        client_max_body_size 1m;
        location / {{
            proxy_pass {upstream};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto https;
            proxy_set_header X-Client-Verify $ssl_client_verify;
            proxy_set_header X-Client-Cert $ssl_client_escaped_cert;
            proxy_set_header X-Request-ID $request_id;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def plain_name(text: str) -> bool:
    """Letters, digits, '-' and '_' only: a service or user name safe to write into nginx's configuration."""
    return bool(text) and text.replace("-", "").replace("_", "").isalnum()


@dataclass(frozen=True)
class TerminatorFiles:
    """What the terminator serves with (PEM text): its certificate chain and key, whom it trusts, the CRL."""

    server_chain_pem: str
    server_key_pem: bytes
    client_ca_pem: str
    crl_pem: bytes


# How a listener treats client certificates:
# "required": the platform CA's, unrevoked and current (the vault's listener);
# "pinned": any certificate is asked for and passed on; the application matches its SHA-256 thumbprint
#   against the client's pinned one (RFC 8705 self_signed_tls_client_auth, the partners' listener). nginx
#   still checks possession of the key (the TLS handshake's CertificateVerify) and the validity dates are
#   checked by the application;
# "none": no certificate asked for (a public listener); the headers then say NONE, whatever a client sent.
CLIENT_CERTIFICATE_MODES = {
    "required": """        ssl_client_certificate {prefix}/client-ca.pem;
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_crl {prefix}/crl.pem;
""",
    "pinned": """        ssl_verify_client optional_no_ca;
""",
    "none": "",
}


def terminator_write(
    prefix: Path,
    *,
    listen: str,
    server_name: str,
    upstream: str,
    files: TerminatorFiles,
    client_certificate: str = "required",
    worker_user: str = "",
    client_services: tuple[str, ...] = (),
) -> Path:
    """Write the configuration and its files under `prefix` (keys 0600); returns the configuration's path.

    `client_certificate` is one of CLIENT_CERTIFICATE_MODES; TLS 1.3 and the headers are the same in each.
    `worker_user`: the user nginx's workers run as when it is started as root (nginx's default is `nobody`).
    `client_services` ("required" mode): only leaves issued for these services (the OU `cert_issue` writes) get
    through; any other certificate of the platform CA (another service's, a server's) gets 403."""
    if not all(map(plain_name, client_services)):
        raise ValueError("client_services are service names: letters, digits, '-' and '_'")
    if client_services and client_certificate != "required":
        raise ValueError("client_services restricts verified platform certificates: client_certificate='required'")
    if worker_user and not plain_name(worker_user):
        raise ValueError("worker_user must be a user name")
    if client_certificate not in CLIENT_CERTIFICATE_MODES:
        raise ValueError(f"client_certificate must be one of {', '.join(CLIENT_CERTIFICATE_MODES)}")
    prefix.mkdir(parents=True, exist_ok=True, mode=0o700)
    for directory in ("logs", "tmp"):
        (prefix / directory).mkdir(exist_ok=True)
    (prefix / "server.pem").write_text(files.server_chain_pem)
    file_replace(prefix / "server.key", files.server_key_pem, mode=0o600)
    (prefix / "client-ca.pem").write_text(files.client_ca_pem)
    crl_write(prefix, files.crl_pem)
    conf = prefix / NGINX_CONF
    client_auth = CLIENT_CERTIFICATE_MODES[client_certificate].format(prefix=prefix)
    conf.write_text(
        _TEMPLATE.format(
            prefix=prefix,
            listen=listen,
            server_name=server_name,
            upstream=upstream,
            client_auth=client_auth,
            worker_user=f"user {worker_user};\n" if worker_user else "",
            client_services=(
                f'        if ($ssl_client_s_dn !~ "(^|,)OU=({"|".join(client_services)})(,|$)") {{ return 403; }}\n'
                if client_services
                else ""
            ),
        )
    )
    return conf


def crl_write(prefix: Path, crl_pem: bytes) -> None:
    """Replace the CRL atomically (a reload must never read half a file)."""
    file_replace(prefix / "crl.pem", crl_pem, mode=0o644)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or (str(Path("/usr/sbin/nginx")) if Path("/usr/sbin/nginx").exists() else None)


def nginx_command(prefix: Path, *args: str) -> list[str]:
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx is not installed (Debian package nginx-light; scripts/services.py)")
    return [binary, "-p", str(prefix), "-c", str(prefix / NGINX_CONF), "-e", str(prefix / "logs" / "error.log"),
            *args]  # fmt: skip


def nginx_reload(prefix: Path) -> None:
    """Graceful reload: new workers read the new certificate and CRL; old ones finish their connections."""
    pid = int((prefix / "nginx.pid").read_text().strip())
    os.kill(pid, signal.SIGHUP)


def nginx_check(prefix: Path) -> subprocess.CompletedProcess:
    return subprocess.run(nginx_command(prefix, "-t", "-q"), capture_output=True, text=True, check=False)  # noqa: S603  # nosec B603


def nginx_run(prefix: Path, port: int, *, host: str = "127.0.0.1", timeout_seconds: float = 10) -> subprocess.Popen:
    """nginx in the foreground on the configuration under `prefix`, once it accepts connections on host:port
    (the terminator sidecar, tests, benchmarks). RuntimeError, with the end of nginx's error log, if something
    already listens there (a probe would take its answer for nginx's), or nginx exits or does not listen in time.
    """
    with socket.socket() as probe:
        if probe.connect_ex((host, port)) == 0:
            raise RuntimeError(f"something already listens on {host}:{port}")
    process = subprocess.Popen(nginx_command(prefix, "-g", "daemon off;"))  # noqa: S603  # nosec B603
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (prefix / "logs" / "error.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"nginx exited with status {process.returncode}: {log}")
        with socket.socket() as probe:
            if probe.connect_ex((host, port)) == 0:
                return process
        time.sleep(0.05)
    process.kill()
    process.wait(timeout=timeout_seconds)
    raise RuntimeError(f"nginx did not listen on {host}:{port} within {timeout_seconds}s")
