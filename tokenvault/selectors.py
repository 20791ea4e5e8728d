"""Who may read vaulted values in clear through the API role, decided from the verified credential only.

The decision has two halves (ADR 0012). Here, in the API role: the OAuth
token must be a client acting for itself (client credentials, no end user)
and the client's policy (`OAuthClientPolicy.detokenize_token_types`, set by
staff) names the token types it may read. In the vault: each token's stored
type must be among those types. The policy is read on every call, so taking a
type away works at once, even for tokens issued before.
"""

from __future__ import annotations

from accounts.models import OAuthClientPolicy
from tokenvault.exceptions import DetokenizeForbidden
from tokenvault.models import VaultRecord

DETOKENIZE_SCOPE = "vault:detokenize"


def client_detokenize_token_types(*, application_id: int) -> frozenset[str]:
    """The token types an OAuth client's policy lets it detokenize; empty when none (or no policy)."""
    types = (
        OAuthClientPolicy.objects.filter(application_id=application_id)
        .values_list("detokenize_token_types", flat=True)
        .first()
    )
    return frozenset(types or ()) & frozenset(VaultRecord.TokenType.values)


def detokenize_permitted_types(*, access_token) -> frozenset[str]:
    """What the caller of `POST /v1/vault/detokenize` may read, or `DetokenizeForbidden`.

    The token's scope was checked before (`HasRequiredScopes`); a token bound
    to an end user never detokenizes, whatever its scope says.
    """
    if access_token.user_id is not None:
        raise DetokenizeForbidden("detokenization is for a client acting for itself, not for an end user")
    permitted = client_detokenize_token_types(application_id=access_token.application_id)
    if not permitted:
        raise DetokenizeForbidden("this client may not detokenize any token type")
    return permitted
