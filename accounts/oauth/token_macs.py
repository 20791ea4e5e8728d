"""Access token rows carry a MAC under a key the database does not hold (issue 12, item 5).

The threat: someone holding only the runtime role's database login INSERTs an
`oauth2_provider_accesstoken` row for a token value they chose (or UPDATEs the
user, client, scope or expiry of a real one) and presents it as a bearer token.
Tokens are stored as checksums, so writing a row is all it takes.

So every access token the authorization server saves gets an HMAC-SHA256 over
its checksum, user, client, scope and expiry (`AccessTokenMac`), under a key
derived from the Django secret with a salt of its own (`salted_hmac`, as
`fintech.idempotency` does). Every lookup that turns a presented token into a
principal checks it: the /v1 bearer lookup (`accounts.authentication`),
introspection (`accounts.oauth.tokens.access_token_find`) and DOT's validator
(userinfo). A row that fails is treated as no row at all (401 `invalid_token`,
`active: false`); the refusal is logged, counted and written to the audit trail
as `token.mac_invalid` with the row id and what the row claims, never the token.

Secrets in `SECRET_KEY_FALLBACKS` still verify (tried only after the current one
failed), so rotating the secret does not sign everyone out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter

from fintech.macs import row_mac_matches, row_mac_of

logger = logging.getLogger(__name__)
REFUSED = Counter(
    "fintech_oauth_access_token_mac_refused_total", "Presented access tokens whose row fails its MAC.", ["lookup"]
)

_SALT = "fintech.oauth.access_token"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def access_token_mac(token, *, x5t_s256: str = "") -> str:
    """The MAC of what a token row grants, under the current secret (fallbacks are tried by row_mac_matches).

    `x5t_s256`: the certificate the token is bound to (RFC 8705), covered only when there is one, so the MACs
    of unbound tokens issued before binding existed still verify.

    `token` is anything with DOT's AccessToken attributes (a historical model
    in a migration too). The expiry is whole microseconds since the epoch, what
    PostgreSQL keeps, so the value read back gives the same MAC as the one saved.
    """
    return row_mac_of(_SALT, _values(token, x5t_s256))


def _values(token, x5t_s256: str = "") -> list:
    expires = (token.expires - _EPOCH) // _MICROSECOND
    values = [token.token_checksum, token.user_id, token.application_id, token.scope, expires]
    return [*values, "x5t#S256", x5t_s256] if x5t_s256 else values


def access_token_macs_store(tokens: Iterable, *, x5t_s256: str = "") -> None:
    """Store (or replace) the MAC of each saved token: one INSERT ... ON CONFLICT for all of them.

    Called where tokens are issued (`FintechOAuth2Validator.save_bearer_token`
    for every grant) and by anything else that saves an AccessToken on purpose
    (test and benchmark helpers). A token saved without it is refused.
    """
    from accounts.oauth.models import AccessTokenMac  # the model module is loaded with accounts.models

    rows = [
        AccessTokenMac(access_token_id=token.pk, mac=access_token_mac(token, x5t_s256=x5t_s256), x5t_s256=x5t_s256)
        for token in tokens
    ]
    if rows:
        AccessTokenMac.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["access_token"], update_fields=["mac", "x5t_s256"]
        )


def access_token_mac_verified(token, stored_mac: str | None, *, lookup: str, request=None, x5t_s256: str = "") -> bool:
    """Whether the row's stored MAC is the MAC of what it grants; if not, say so (log, metric, audit trail).

    `lookup` names the door (bearer, introspection, oauth_validator) for the
    record; `request` is the Django request, when there is one, for the event's
    address and user agent.
    """
    if row_mac_matches(stored_mac, _SALT, _values(token, x5t_s256)):
        return True
    _refusal_record(token, lookup=lookup, request=request)
    return False


def _refusal_record(token, *, lookup: str, request) -> None:
    """The row was written or changed outside the application: whoever holds its token is not let in."""
    from audit.models import AuditEvent
    from audit.services.events import Actor, audit_event_record

    REFUSED.labels(lookup).inc()
    logger.error("access token row fails its MAC: refused", extra={"access_token_id": token.pk, "lookup": lookup})
    user, application = token.user, token.application
    audit_event_record(
        event_type="token.mac_invalid",
        outcome=AuditEvent.Outcome.DENIED,
        actor=Actor(),  # nobody the application issued anything to
        object_type="oauth.access_token",
        object_id=str(token.pk),
        payload={
            "lookup": lookup,
            "claimed_user": str(user.public_id) if user is not None else "",
            "claimed_client": application.client_id if application is not None else "",
        },
        request=request,
    )
