"""Domain errors of the token vault: each a `fintech.problems.DomainError` with a stable code.

No `detail` here ever contains a card number, a national id or a key: details
reach the client verbatim.
"""

from fintech.problems import DomainError


class InvalidTokenType(DomainError):
    status = 400
    code = "vault_invalid_token_type"
    title = "Unknown token type"


class InvalidCardNumber(DomainError):
    status = 400
    code = "vault_invalid_card_number"
    title = "The card number is not valid"


class InvalidNationalId(DomainError):
    status = 400
    code = "vault_invalid_national_id"
    title = "The national id is not valid"


class InvalidMetadata(DomainError):
    status = 400
    code = "vault_invalid_metadata"
    title = "The token metadata is not valid"


class InvalidPurpose(DomainError):
    status = 400
    code = "vault_invalid_purpose"
    title = "Reading a vaulted value needs a recognised purpose"


class TokenNotFound(DomainError):
    status = 404
    code = "vault_token_not_found"
    title = "Token not found"


class TokenShredded(DomainError):
    status = 410
    code = "vault_token_shredded"
    title = "The value behind this token was destroyed"


class DetokenizeForbidden(DomainError):
    status = 403
    code = "vault_detokenize_forbidden"
    title = "Not allowed to read this value in clear"


class TokenizeConflict(DomainError):
    status = 503
    code = "vault_tokenize_conflict"
    title = "Could not allocate a token; try again"


class CiphertextTampered(DomainError):
    """Authentication of a ciphertext or wrapped key failed: altered, or moved to another record."""

    status = 500
    code = "vault_ciphertext_tampered"
    title = "A vaulted value failed its integrity check"


class KeyUnavailable(DomainError):
    status = 503
    code = "vault_key_unavailable"
    title = "A vault key is not available"


class KekInUse(DomainError):
    status = 409
    code = "vault_kek_in_use"
    title = "This key version still protects vaulted values"


class KekIsCurrent(DomainError):
    status = 409
    code = "vault_kek_is_current"
    title = "The current key version cannot be retired"


class KekRetireTooSoon(DomainError):
    """A tokenize that read the version just before a rotation may still insert under it (ADR 0011)."""

    status = 409
    code = "vault_kek_retire_too_soon"
    title = "This key version stopped being current too recently to be retired"


# --- The vault as a separate role (ADR 0012) -------------------------------------------


class VaultUnavailable(DomainError):
    """The API role could not get an answer from the vault role: down, slow, 5xx or misconfigured.

    Nothing was vaulted or read on our side; the caller may retry later.
    """

    status = 503
    code = "vault_unavailable"
    title = "The token vault is not reachable"


class VaultRefused(DomainError):
    """A refusal from the vault whose code this client has no class for; status and code are the vault's."""

    def __init__(self, *, status: int, code: str, title: str, detail: str | None = None, extra: dict | None = None):
        self.status = status
        self.code = code
        self.title = title
        super().__init__(detail, extra=extra)


class ServiceCredentialMissing(DomainError):
    status = 401
    code = "vault_service_credential_missing"
    title = "The vault's internal API needs a service credential"


class ServiceCredentialInvalid(DomainError):
    status = 401
    code = "vault_service_credential_invalid"
    title = "The service credential is not valid"


class DetokenizeRateLimited(DomainError):
    status = 429
    code = "vault_detokenize_rate_limited"
    title = "Too many values detokenized; try again later"


class DetokenizeLimitUnavailable(DomainError):
    """The rate limiter's store did not answer: without a count no value may be released (fail closed)."""

    status = 503
    code = "vault_detokenize_limit_unavailable"
    title = "Detokenization is unavailable; try again later"


class ReapCutoffTooRecent(DomainError):
    """The orphan reaper's cutoff must leave in-flight saves alone (tokenize, then the caller's write)."""

    status = 400
    code = "vault_reap_cutoff_too_recent"
    title = "The reap cutoff is too recent"
