"""Helpers for the OAuth row MAC tests (issue 12): rows written as the database login alone would write them."""

from __future__ import annotations

import secrets

from django.db import connection
from oauth2_provider.models import AccessToken, RefreshToken

from accounts.oauth.tokens import token_checksum
from accounts.step_up import StepUpRequired, require_recent_mfa
from accounts.tests.access_matrix import ALL_SCOPES
from accounts.tests.mfa_helpers import force_login_with_mfa
from accounts.tests.oauth_helpers import exchange_code, obtain_code, pkce_pair
from audit.models import AuditEvent

INSERT_ACCESS = (
    "INSERT INTO oauth2_provider_accesstoken (token, token_checksum, user_id, application_id, scope, expires,"
    " created, updated, resource) VALUES ('', %s, %s, %s, %s, now() + interval '1 hour', now(), now(), '[]')"
    " RETURNING id"
)
INSERT_REFRESH = (
    "INSERT INTO oauth2_provider_refreshtoken (token, token_checksum, user_id, application_id, access_token_id,"
    " token_family, created, updated, revoked, resource) VALUES ('', %s, %s, %s, %s, %s, now(), now(), NULL, '[]')"
    " RETURNING id"
)
INSERT_GRANT = (
    "INSERT INTO oauth2_provider_grant (code, user_id, application_id, expires, redirect_uri, scope, created,"
    " updated, code_challenge, code_challenge_method, nonce, claims, resource)"
    " VALUES (%s, %s, %s, now() + interval '1 minute', %s, %s, now(), now(), %s, 'S256', '', '{}', '[]')"
    " RETURNING id"
)
LARGE_EUR = 500_000  # above the EUR step-up threshold


def code_flow_tokens(client, app, user, *, mfa: bool = False) -> dict:
    if mfa:  # the browser session proved a second factor just now
        force_login_with_mfa(client, user)
    else:
        client.force_login(user)
    verifier, challenge = pkce_pair()
    code = obtain_code(client, app, challenge)["code"]
    response = exchange_code(client, app, code, verifier)
    client.logout()
    assert response.status_code == 200, response.content
    return response.json()


def refresh_row(raw: str) -> RefreshToken:
    return RefreshToken.objects.get(token_checksum=token_checksum(raw))


def refused_grant(response) -> bool:
    return response.status_code == 400 and response.json()["error"] == "invalid_grant"


def refusals(object_type: str):
    return AuditEvent.objects.filter(event_type="token.mac_invalid", object_type=object_type)


def step_up_passes(raw_access_token: str) -> bool:
    token = AccessToken.objects.select_related("user", "application").get(
        token_checksum=token_checksum(raw_access_token)
    )
    try:
        require_recent_mfa(access_token=token, amount_minor=LARGE_EUR, currency="EUR")
    except StepUpRequired:
        return False
    return True


def forge_refresh_token(user, app, family) -> tuple[str, int, int]:
    """A refresh token row for a value of one's choosing, paired with a forged access token row: (value, ids)."""
    raw = secrets.token_urlsafe(32)
    with connection.cursor() as cursor:
        cursor.execute(INSERT_ACCESS, [token_checksum(secrets.token_urlsafe(32)), user.pk, app.pk, ALL_SCOPES])
        access_id = cursor.fetchone()[0]
        cursor.execute(INSERT_REFRESH, [token_checksum(raw), user.pk, app.pk, access_id, family])
        return raw, cursor.fetchone()[0], access_id
