"""The one way a /v1 caller is identified: an OAuth 2.1 bearer token in the Authorization header.

The principal comes only from the verified token (never from a body or query
parameter: a token anywhere but the header is ignored, so the call is
unauthenticated). Tokens are stored as SHA-256 checksums (RFC 9700 token
storage), so the lookup is one indexed query joining the user, the user's
customer profile and the client; DOT's general-purpose oauthlib request
parsing is not needed on the resource server side. Failures are 401 with an
RFC 6750 challenge; the audit middleware records them as `auth.failed`.

The customer profile rides along in the same query because nearly every /v1
view asks "is this a customer?" (`accounts.permissions.IsCustomer`) and the
limits read it again: a second round trip per request for a row that is
already one LEFT JOIN away. So does the token row's MAC (issue 12,
`accounts.oauth.token_macs`): a row written with the database login alone is
refused like an unknown token.
"""

from __future__ import annotations

import functools
import weakref

from django.db import DatabaseError, connections, router
from oauth2_provider.models import AccessToken, get_application_model
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from accounts.oauth.token_macs import access_token_mac_verified
from accounts.oauth.tokens import (
    MAX_TOKEN_LENGTH,
    certificate_mismatch_record,
    token_certificate_matches,
    token_checksum,
)
from fintech.db_retry import sqlstate_of

REALM = "fintech"


@functools.cache
def _lookup_plan() -> tuple[str, tuple[tuple[type, tuple[str, ...]], ...]]:
    """The lookup's SQL and, per model, the columns it reads: built once from the models' metadata.

    Only columns whose values need no conversion from the database are read;
    the rest (the profile's encrypted PII, JSON) stay deferred and load on
    first access like any `.only()` field. Authentication never decrypts a
    customer's personal data.
    """
    from accounts.models import AccessTokenMac, CustomerProfile, User  # models import this module (DRF settings)

    connection = connections[router.db_for_read(AccessToken)]
    models = (
        ("t", AccessToken),
        ("u", User),
        ("p", CustomerProfile),
        ("a", get_application_model()),
    )
    columns, plan = [], []
    for alias, model in models:
        fields = tuple(
            field
            for field in model._meta.concrete_fields
            if not field.get_db_converters(connection) and not connection.ops.get_db_converters(field.cached_col)
        )
        columns += [f"{alias}.{connection.ops.quote_name(field.column)}" for field in fields]
        plan.append((model, tuple(field.attname for field in fields)))
    tables = {alias: connection.ops.quote_name(model._meta.db_table) for alias, model in models}
    mac_table, mac_token, mac, x5t = (
        connection.ops.quote_name(name)
        for name in (
            AccessTokenMac._meta.db_table,
            "access_token_id",
            AccessTokenMac._meta.get_field("mac").column,
            AccessTokenMac._meta.get_field("x5t_s256").column,
        )
    )
    joins = (
        f" LEFT JOIN {tables['u']} u ON u.id = t.user_id"
        f" LEFT JOIN {tables['p']} p ON p.user_id = u.id"
        f" LEFT JOIN {tables['a']} a ON a.id = t.application_id"
        f" LEFT JOIN {mac_table} m ON m.{mac_token} = t.id"
    )
    # Identifiers come from model metadata, quoted; the one value is a bound parameter. The MAC and the
    # certificate binding it covers come last.
    select = ", ".join([*columns, f"m.{mac}", f"m.{x5t}"])
    sql = f"SELECT {select} FROM {tables['t']} t{joins} WHERE t.token_checksum = %s ORDER BY t.id LIMIT 1"  # noqa: S608  # nosec B608 - identifiers from model metadata, quoted
    return sql, tuple(plan)


_PREPARED_NAME = "fintech_bearer_token_find"
_prepared_connections: weakref.WeakSet = weakref.WeakSet()


# The session no longer has the statement (26000), or has one we did not record (42P05).
_PREPARED_LOST_SQLSTATES = frozenset({"26000", "42P05"})


def _prepared_execute(connection, cursor, sql: str, checksum: str) -> None:
    """EXECUTE the lookup PREPAREd once per database session: planning its four-table join cost more than running it.

    Only outside a transaction (every /v1 request authenticates in autocommit),
    so the PREPARE never shares the fate of a caller's transaction. The mark
    is per Python connection, but the statement lives in the server session:
    a `DEALLOCATE` / `DISCARD ALL` (a pooler's server reset) or a pooler in
    transaction mode hands us a session without it (or with someone else's).
    Then this call runs the plain query and forgets the mark, so one lost
    statement costs one extra round trip instead of failing every request on
    that connection until it is recycled.
    """
    raw_connection = connection.connection
    try:
        if raw_connection not in _prepared_connections:
            cursor.execute(f"PREPARE {_PREPARED_NAME}(text) AS {sql.replace('%s', '$1')}")
            _prepared_connections.add(raw_connection)
        cursor.execute(f"EXECUTE {_PREPARED_NAME}(%s)", [checksum])
    except DatabaseError as error:
        if sqlstate_of(error) not in _PREPARED_LOST_SQLSTATES:
            raise
        _prepared_connections.discard(raw_connection)
        if sqlstate_of(error) == "42P05":
            cursor.execute(f"DEALLOCATE {_PREPARED_NAME}")  # not ours to trust: prepared again next time
        cursor.execute(sql, [checksum])


def bearer_token_find(raw: str, request=None) -> AccessToken | None:
    """`accounts.oauth.tokens.access_token_find`, with the user's customer profile joined in.

    One hand-built query instead of the ORM's select_related: compiling that
    queryset cost more CPU than anything else in a /v1 request. The instances
    are what select_related would give (`token.user`, `token.application`,
    `user.customer_profile` cached, or None), with unconverted columns deferred.
    A row whose MAC does not verify is None, as an unknown token is (`request`
    goes with the audit event that refusal writes).
    """
    if not raw or len(raw) > MAX_TOKEN_LENGTH:
        return None
    alias = router.db_for_read(AccessToken)
    connection = connections[alias]
    sql, plan = _lookup_plan()
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            cursor.execute(sql, [token_checksum(raw)])
        else:
            _prepared_execute(connection, cursor, sql, token_checksum(raw))
        row = cursor.fetchone()
    if row is None:
        return None
    instances, start = [], 0
    for model, attnames in plan:
        values = row[start : start + len(attnames)]
        start += len(attnames)
        instances.append(model.from_db(alias, attnames, values) if values[attnames.index("id")] is not None else None)
    token, user, profile, application = instances
    AccessToken._meta.get_field("user").set_cached_value(token, user)
    AccessToken._meta.get_field("application").set_cached_value(token, application)
    if user is not None:
        type(user)._meta.get_field("customer_profile").set_cached_value(user, profile)
        if profile is not None:
            type(profile)._meta.get_field("user").set_cached_value(profile, user)
    token.fintech_x5t_s256 = row[start + 1] or ""
    if not access_token_mac_verified(
        token, row[start], lookup="bearer", request=request, x5t_s256=token.fintech_x5t_s256
    ):
        return None
    return token


_NOT_LOOKED_UP = object()


def bearer_lookup(request) -> AccessToken | None:
    """The token of the request's `Authorization: Bearer` header, found once per request (a Django request).

    The rate limiter (fintech/middleware/rate_limit.py) needs the principal
    before the view, DRF's authentication in it: one lookup serves both.
    None: no bearer header, or a token that is unknown, has a bad MAC, is expired
    or belongs to an inactive user.
    """
    cached = getattr(request, "_bearer_token", _NOT_LOOKED_UP)
    if cached is not _NOT_LOOKED_UP:
        return cached
    scheme, _, raw = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    token = None
    if scheme.lower() == "bearer":
        token = bearer_token_find(raw.strip(), request)
        if token is not None and (token.is_expired() or (token.user is not None and not token.user.is_active)):
            token = None
        if token is not None and not token_certificate_matches(token, request):
            certificate_mismatch_record(token, request)
            token = None
    request._bearer_token = token
    return token


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, _raw = header.partition(" ")
        if scheme.lower() != "bearer":
            return None  # no bearer credential: anonymous, answered 401 without an error code
        token = bearer_lookup(request._request)
        if token is None:
            request._request.bearer_error = "invalid_token"
            raise exceptions.AuthenticationFailed("The access token is invalid, expired or revoked.")
        return token.user, token

    def authenticate_header(self, request) -> str:
        error = getattr(request._request, "bearer_error", None)
        return f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
