"""The TLS client certificate of a request, believed only when the terminator vouches for it (RFC 8705).

nginx terminates TLS and passes the client's certificate on as a header
(`X-Client-Cert`, the URL-escaped PEM: pki/terminator.py sets it on every
request, replacing whatever the client sent). A header is only as good as the
path it came by, so it is believed for requests that arrived over the web
role's Unix socket alone: in production gunicorn listens on nothing else and
only nginx's group may open the socket (ADR 0018, the deploy check on the
bind); a request over TCP (a developer's direct `make run` port, the tests'
client) has its certificate headers dropped here, before anything reads them.

What the rest of the code sees is one value that a client cannot write:
`request.META[TLS_CLIENT_X5T_S256]`, the base64url SHA-256 of the DER
certificate (RFC 8705 §3.1 `x5t#S256`; nginx's own fingerprint variable is
SHA-1, so it is computed here from the PEM).
The key is not an `HTTP_*` name, so no request header can produce it, and DOT
copies META into what the OAuth validator reads, which is how the token
endpoint sees it.
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from django.http import HttpRequest

from fintech.client_address import arrived_through_terminator

logger = logging.getLogger(__name__)

TLS_CLIENT_X5T_S256 = "fintech.tls_client_x5t_s256"
_HEADERS = ("HTTP_X_CLIENT_CERT", "HTTP_X_CLIENT_VERIFY")
MAX_CERTIFICATE_HEADER_LENGTH = 16_384


def x5t_s256(certificate: x509.Certificate) -> str:
    """RFC 8705 §3.1: base64url (no padding) of the SHA-256 of the DER certificate."""
    return base64.urlsafe_b64encode(certificate.fingerprint(hashes.SHA256())).rstrip(b"=").decode()


def _certificate_of(escaped: str) -> x509.Certificate | None:
    if not escaped or len(escaped) > MAX_CERTIFICATE_HEADER_LENGTH:
        return None
    try:
        return x509.load_pem_x509_certificate(unquote(escaped).encode())
    except ValueError:
        logger.warning("tls client certificate header is not a PEM certificate: ignored")
        return None


class ClientCertificateMiddleware:
    """First in the chain: drop the certificate headers, then restore what the terminator vouched for."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        escaped = request.META.get("HTTP_X_CLIENT_CERT", "")
        for name in _HEADERS:
            request.META.pop(name, None)
        request.META.pop(TLS_CLIENT_X5T_S256, None)
        if escaped and arrived_through_terminator(request):
            certificate = _certificate_of(escaped)
            if certificate is not None:
                request.META[TLS_CLIENT_X5T_S256] = x5t_s256(certificate)
        return self.get_response(request)


def request_x5t_s256(request) -> str:
    """The thumbprint of the certificate the request's TLS connection presented; "" when none (or not believed)."""
    if isinstance(request, HttpRequest):
        return request.META.get(TLS_CLIENT_X5T_S256, "") or ""
    # An oauthlib request: DOT copied META into its headers. Read from its __dict__ only: oauthlib answers any
    # missing attribute with the request parameter of that name, which the client writes.
    headers = request.__dict__.get("headers") or {}
    value = headers.get(TLS_CLIENT_X5T_S256, "")
    return value if isinstance(value, str) else ""
