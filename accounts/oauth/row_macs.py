"""Refresh tokens, authorization codes and OAuth sessions carry a MAC too (issue 12, item 5).

A MAC on access token rows alone left the token endpoint as a way round it:
with only the runtime role's database login one could INSERT a refresh token
row for a value one chose (or a `Grant` row with a PKCE challenge of one's
own) and have `/o/token/` mint a properly MAC'd access token from it; or
rewrite the `OAuthSession` row whose `mfa_verified_at` step-up trusts. So each
of those rows gets an HMAC-SHA256 of what it vouches for, in a side table
(`accounts.oauth.models`), with the access tokens' key derivation
(`salted_hmac` under the Django secret) and a salt of its own per kind, so a
MAC of one kind never verifies as another:

* refresh token: checksum, user, client, linked access token, family and
  `revoked` (a revoked row put back to life does not verify; and the access
  token it points to must pass its own MAC, so bringing back the one its
  revocation deleted takes a copy of that row and its MAC, see the ADR);
* authorization code: code, user, client, expiry, redirect URI, scope, PKCE
  challenge and method, nonce and claims;
* OAuth session: family, user, client, login time and MFA time.

Written only by the authorization server where it creates or changes a row
(`accounts.oauth.validators`), checked where a row is believed (the token
endpoint's code and refresh grants, step-up). A failing row is treated as
absent and recorded like a failing access token: log, metric
`fintech_oauth_row_mac_refused_total`, audit event `token.mac_invalid` with the
row id and what the row claims, never a token or code. Secrets in
`SECRET_KEY_FALLBACKS` still verify, so rotating the secret signs nobody out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter

from fintech.macs import row_mac_matches, row_mac_of

logger = logging.getLogger(__name__)
REFUSED = Counter(
    "fintech_oauth_row_mac_refused_total",
    "Refresh token, authorization code and OAuth session rows refused because they fail their MAC.",
    ["kind", "lookup"],
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime | None) -> int | None:
    """Whole microseconds since the epoch, what PostgreSQL keeps: a value read back MACs as the one saved."""
    return None if moment is None else (moment - _EPOCH) // _MICROSECOND


# What each kind's MAC covers. `row` may be a historical model (the migration backfills with these).
def _refresh_token_values(row) -> list:
    family = str(row.token_family) if row.token_family else None
    return [row.token_checksum, row.user_id, row.application_id, row.access_token_id, family, _micros(row.revoked)]


def _grant_values(row) -> list:
    return [
        row.code,
        row.user_id,
        row.application_id,
        _micros(row.expires),
        row.redirect_uri,
        row.scope,
        row.code_challenge,
        row.code_challenge_method,
        row.nonce,
        row.claims,
    ]


def _session_values(row) -> list:
    return [
        str(row.token_family),
        row.user_id,
        row.client_id,
        _micros(row.authenticated_at),
        _micros(row.mfa_verified_at),
    ]


# kind: (salt, what the MAC covers, MAC model name in accounts, its key field, audit object type)
_KINDS: dict[str, tuple[str, Callable[..., list], str, str, str]] = {
    "refresh_token": (
        "fintech.oauth.refresh_token",
        _refresh_token_values,
        "RefreshTokenMac",
        "refresh_token",
        "oauth.refresh_token",
    ),
    "grant": ("fintech.oauth.grant", _grant_values, "GrantMac", "grant", "oauth.grant"),
    "session": ("fintech.oauth.session", _session_values, "OAuthSessionMac", "session", "oauth.session"),
}


def row_mac(kind: str, row) -> str:
    """The MAC of what `row` vouches for, under the current secret (fallbacks are tried by row_mac_matches)."""
    salt, values, *_ = _KINDS[kind]
    return row_mac_of(salt, values(row))


def row_macs_store(kind: str, rows: Iterable, *, model=None, using: str | None = None) -> None:
    """Store (or replace) the MAC of each saved row: one INSERT ... ON CONFLICT for all of them.

    Only for rows the application itself just wrote or just verified: storing
    a MAC is what makes a row believed. `model`: the MAC model to write through
    (a migration passes its historical one).
    """
    _, _, model_name, key, _ = _KINDS[kind]
    if model is None:
        from django.apps import apps

        model = apps.get_model("accounts", model_name)
    macs = [model(**{f"{key}_id": row.pk, "mac": row_mac(kind, row)}) for row in rows]
    if macs:
        model.objects.using(using).bulk_create(macs, update_conflicts=True, unique_fields=[key], update_fields=["mac"])


def refresh_token_macs_store(tokens: Iterable) -> None:
    row_macs_store("refresh_token", tokens)


def grant_macs_store(grants: Iterable) -> None:
    row_macs_store("grant", grants)


def oauth_session_macs_store(sessions: Iterable) -> None:
    row_macs_store("session", sessions)


def row_mac_verified(kind: str, row, *, lookup: str) -> bool:
    """Whether the row's stored MAC is the MAC of what it vouches for; if not, say so (log, metric, audit trail).

    The stored MAC is `row.fintech_mac` (select_related it to save a query).
    `lookup` names the door (refresh, token_endpoint, step_up) for the record.
    """
    stored = getattr(row, "fintech_mac", None)  # no MAC row: None (the reverse accessor's miss is an AttributeError)
    salt, values, *_ = _KINDS[kind]
    if stored is not None and row_mac_matches(stored.mac, salt, values(row)):
        return True
    _refusal_record(kind, row, lookup=lookup)
    return False


def _refusal_record(kind: str, row, *, lookup: str) -> None:
    """The row was written or changed outside the application: nothing is issued or believed from it."""
    from audit.models import AuditEvent
    from audit.services.events import Actor, audit_event_record

    REFUSED.labels(kind, lookup).inc()
    logger.error("oauth row fails its MAC: refused", extra={"oauth_row": kind, "row_id": str(row.pk), "lookup": lookup})
    user = row.user
    client = row.client_id if kind == "session" else getattr(row.application, "client_id", "")
    audit_event_record(
        event_type="token.mac_invalid",
        outcome=AuditEvent.Outcome.DENIED,
        actor=Actor(),  # nobody the application issued anything to
        object_type=_KINDS[kind][4],
        object_id=str(row.pk),  # a row id (a session's is its family): never a token or a code
        payload={
            "lookup": lookup,
            "claimed_user": str(user.public_id) if user is not None else "",
            "claimed_client": client,
        },
    )


def refresh_token_believed(token, *, lookup: str) -> bool:
    """Whether a refresh token row may be acted on: its MAC verifies and, if live, so does its access token's.

    Un-revoking a row means pointing it back at the access token its
    revocation deleted; that row must then pass its own MAC too, which without
    the key only a copy of the original (row and MAC) does.
    """
    if not row_mac_verified("refresh_token", token, lookup=lookup):
        return False
    if token.revoked is not None or token.access_token_id is None:
        return True  # DOT decides about revoked rows (grace period) and refuses orphans itself
    from accounts.models import AccessTokenMac
    from accounts.oauth.token_macs import access_token_mac_verified

    access = token.access_token
    stored_mac, x5t_s256 = AccessTokenMac.objects.filter(access_token_id=access.pk).values_list(
        "mac", "x5t_s256"
    ).first() or (None, "")
    return access_token_mac_verified(access, stored_mac, lookup=lookup, x5t_s256=x5t_s256)


def oauth_session_believed(token_family, *, lookup: str):
    """The `OAuthSession` of a refresh-token family if there is one and it passes its MAC, else None."""
    from accounts.models import OAuthSession

    if not token_family:
        return None
    session = OAuthSession.objects.select_related("fintech_mac").filter(token_family=token_family).first()
    if session is None or not row_mac_verified("session", session, lookup=lookup):
        return None
    return session
