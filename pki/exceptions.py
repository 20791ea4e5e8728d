"""Domain errors of the platform CA, each with a stable code.

Tasks on the `cert` queue return them as `{"error": code, "detail": ...}`
(JSON through the result store, no pickled exception), and the commands turn
them back into `CommandError("<code>: <detail>")`.
"""

from __future__ import annotations

from fintech.problems import DomainError


class IssuingKeyNotHeld(DomainError):
    status = 503
    code = "issuing_key_not_held"
    title = "This process does not hold the issuing CA's key (only the cert worker does)"


class SanNotPermitted(DomainError):
    code = "san_not_permitted"
    title = "A subject alternative name is outside the CA's name constraints"


class ValidityRefused(DomainError):
    code = "validity_refused"
    title = "The requested validity is out of bounds"


class CertificateNotFound(DomainError):
    status = 404
    code = "certificate_not_found"
    title = "No certificate with that serial"


class CertificateNotActive(DomainError):
    status = 409
    code = "certificate_not_active"
    title = "The certificate is not active"


class CertificateNotOurs(DomainError):
    status = 409
    code = "certificate_not_ours"
    title = "The platform CA did not issue this certificate, so it can neither renew nor revoke it"


class RevocationReasonUnknown(DomainError):
    code = "revocation_reason_unknown"
    title = "Not an RFC 5280 revocation reason"


class CertificateWorkerUnavailable(DomainError):
    status = 503
    code = "cert_worker_unavailable"
    title = "No worker consuming the cert queue answered in time"
