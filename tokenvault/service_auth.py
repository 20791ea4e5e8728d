"""Who may call the vault's internal API: a process holding the service credential (ADR 0012).

The API role sends `Authorization: Bearer <VAULT_SERVICE_TOKEN>`; the vault
compares SHA-256 digests of the presented and the accepted credentials with
`hmac.compare_digest`, against every accepted one (current and, during a
rotation, previous) without stopping at the first match, so neither the
comparison nor the order leaks anything through timing.

The credential proves which *service* calls, never which person: the caller
also asserts the acting principal (`Actor`) in the body, and the vault
records it in its audit rows as asserted by that service. The network link
adds the second factor later: mutual TLS terminates in front of the vault
(or in gunicorn with `cert_reqs`/`ca_certs`), and a permission checking the
verified client certificate joins `VaultInternalApi.permission_classes` next
to `IsVaultCaller` (both required), without changing any view.

A trusted caller's `X-Request-ID` is adopted after authentication, so the
vault's audit rows and log lines carry the id of the API request they serve.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from fintech.request_context import bind_request_id
from tokenvault.exceptions import ServiceCredentialInvalid, ServiceCredentialMissing

_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
MAX_CREDENTIAL_LENGTH = 512
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tokenvault"'}


@dataclass(frozen=True, slots=True)
class VaultCaller:
    """The authenticated calling service (DRF's `request.user`)."""

    name: str = "api"
    is_authenticated: bool = True


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def service_credential_matches(presented: str) -> bool:
    """True if `presented` is an accepted service credential; constant time over all of them."""
    accepted = [t for t in (settings.VAULT_SERVICE_TOKEN, settings.VAULT_SERVICE_TOKEN_PREVIOUS) if t]
    presented_digest = _digest(presented)
    matched = False
    for token in accepted:
        matched |= hmac.compare_digest(presented_digest, _digest(token))
    return matched


class ServiceTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        scheme, _, presented = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            raise ServiceCredentialMissing(headers=CHALLENGE)
        if len(presented) > MAX_CREDENTIAL_LENGTH or not service_credential_matches(presented):
            raise ServiceCredentialInvalid(headers=CHALLENGE)
        offered_id = request.META.get("HTTP_X_REQUEST_ID", "")
        if _ACCEPTABLE_REQUEST_ID.match(offered_id):
            request._request.request_id = offered_id
            # The middleware resets the context variable to its value before the request.
            bind_request_id(offered_id)
        return VaultCaller(), None

    def authenticate_header(self, request) -> str:
        return CHALLENGE["WWW-Authenticate"]


class IsVaultCaller(BasePermission):
    """Closed unless the service credential was verified (a view that forgets auth stays closed)."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, VaultCaller)
