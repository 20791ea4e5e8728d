"""Issue 12, item 5 continued: refresh token and authorization code rows carry a MAC.

Rows are written here the way someone holding only the web process's database
login would: plain SQL (or an UPDATE), never through the authorization server.
The first test is the bypass reported against the access-token MACs: a refresh
token row inserted for a value one chose, exchanged at /o/token/.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from oauth2_provider.models import AccessToken, Grant, RefreshToken

from accounts.models import GrantMac, OAuthSession, RefreshTokenMac
from accounts.oauth.row_macs import grant_macs_store, refresh_token_macs_store, row_mac_verified
from accounts.oauth.token_macs import access_token_macs_store
from accounts.oauth.tokens import token_checksum
from accounts.services import customer_create
from accounts.tests.access_matrix import ALL_SCOPES, issue_token
from accounts.tests.oauth_helpers import REDIRECT_URI, exchange_code, mobile_client, obtain_code, pkce_pair, refresh
from accounts.tests.row_mac_helpers import (
    INSERT_GRANT,
    code_flow_tokens,
    forge_refresh_token,
    refresh_row,
    refusals,
    refused_grant,
)
from audit.models import AuditEvent


@pytest.fixture
def alice():
    return customer_create(email="alice@example.com", password=None)


@pytest.fixture
def app():
    return mobile_client()


# --- refresh tokens ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_reported_bypass_a_refresh_token_row_inserted_for_a_chosen_value_mints_nothing(client, alice, app):
    family = refresh_row(code_flow_tokens(client, app, alice)["refresh_token"]).token_family  # a real login's
    raw, refresh_id, access_id = forge_refresh_token(alice, app, family)
    issued = AccessToken.objects.count()

    response = refresh(client, app, raw)

    assert refused_grant(response)
    assert AccessToken.objects.count() == issued
    event = refusals("oauth.refresh_token").get(object_id=str(refresh_id))
    assert event.outcome == "denied"
    assert event.payload == {"lookup": "refresh", "claimed_user": str(alice.public_id), "claimed_client": app.client_id}
    assert raw not in str(AuditEvent.objects.values_list("payload", flat=True))
    # Only the MAC stood in the way: code holding the key makes the same rows work, as they did before it.
    access_token_macs_store(AccessToken.objects.filter(pk=access_id))
    refresh_token_macs_store(RefreshToken.objects.filter(pk=refresh_id))
    assert refresh(client, app, raw).status_code == 200


@pytest.mark.django_db
def test_a_refresh_token_mac_copied_or_guessed_with_the_database_login_does_not_help(client, alice, app):
    genuine = refresh_row(code_flow_tokens(client, app, alice)["refresh_token"])
    for mac in (genuine.fintech_mac.mac, hashlib.sha256(b"a guess at the key").hexdigest()):
        raw, refresh_id, access_id = forge_refresh_token(alice, app, genuine.token_family)
        access_token_macs_store(AccessToken.objects.filter(pk=access_id))  # even with a valid access token MAC
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO accounts_refreshtokenmac (refresh_token_id, mac) VALUES (%s, %s)", [refresh_id, mac]
            )

        assert refused_grant(refresh(client, app, raw))


@pytest.mark.parametrize("change", ["user", "application", "access_token", "token_family"])
@pytest.mark.django_db
def test_a_real_refresh_token_whose_row_was_changed_afterwards_is_refused(client, alice, app, change):
    raw = code_flow_tokens(client, app, alice)["refresh_token"]
    other_app = mobile_client()
    values = {
        "user": lambda: {"user": customer_create(email="bob@example.com", password=None)},
        "application": lambda: {"application": other_app},
        # a token of any scope one likes: the refreshed token would inherit it
        "access_token": lambda: {
            "access_token": AccessToken.objects.get(
                token_checksum=token_checksum(issue_token(application=app, user=alice, scope=ALL_SCOPES))
            )
        },
        # another login of the same user, say one that proved MFA
        "token_family": lambda: {
            "token_family": refresh_row(code_flow_tokens(client, other_app, alice)["refresh_token"]).token_family
        },
    }[change]()
    row = refresh_row(raw)

    RefreshToken.objects.filter(pk=row.pk).update(**values)  # an UPDATE, no application code

    assert refused_grant(refresh(client, other_app if change == "application" else app, raw))
    assert refusals("oauth.refresh_token").filter(object_id=str(row.pk)).exists()


@pytest.mark.parametrize("how", ["revoke_endpoint", "rotation"])
@pytest.mark.django_db
def test_a_revoked_refresh_token_cannot_be_brought_back(client, alice, app, how):
    """Un-revoking takes the access token row its revocation deleted: without its MAC that row is refused too."""
    tokens = code_flow_tokens(client, app, alice)
    row = refresh_row(tokens["refresh_token"])
    paired = AccessToken.objects.get(pk=row.access_token_id)
    if how == "revoke_endpoint":
        revoked = client.post(
            "/o/revoke_token/",
            {"token": tokens["refresh_token"], "token_type_hint": "refresh_token", "client_id": app.client_id},
        )
        assert revoked.status_code == 200
    else:
        assert refresh(client, app, tokens["refresh_token"]).status_code == 200
        rotated_out = RefreshToken.objects.select_related("fintech_mac").get(pk=row.pk)
        assert rotated_out.revoked is not None
        assert row_mac_verified("refresh_token", rotated_out, lookup="test")  # re-MAC'd as revoked
    assert not AccessToken.objects.filter(pk=paired.pk).exists()

    with connection.cursor() as cursor:  # the access token put back as it was, the refresh token un-revoked
        cursor.execute(
            "INSERT INTO oauth2_provider_accesstoken (id, token, token_checksum, user_id, application_id, scope,"
            " expires, created, updated, resource) VALUES (%s, '', %s, %s, %s, %s, %s, now(), now(), '[]')",
            [paired.pk, paired.token_checksum, alice.pk, app.pk, paired.scope, timezone.now() + timedelta(hours=1)],
        )
    RefreshToken.objects.filter(pk=row.pk).update(revoked=None, access_token_id=paired.pk)

    assert refused_grant(refresh(client, app, tokens["refresh_token"]))
    assert refusals("oauth.refresh_token").exists() or refusals("oauth.access_token").exists()


@pytest.mark.django_db
def test_rotation_keeps_working_and_every_refresh_token_issued_carries_a_mac(client, alice, app):
    tokens = code_flow_tokens(client, app, alice)
    for _ in range(3):
        response = refresh(client, app, tokens["refresh_token"])
        assert response.status_code == 200, response.content
        tokens = response.json()

    assert client.get("/v1/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 200
    assert RefreshTokenMac.objects.count() == RefreshToken.objects.count() == 4
    rows = RefreshToken.objects.select_related("fintech_mac")
    assert all(row_mac_verified("refresh_token", row, lookup="test") for row in rows)
    assert not AuditEvent.objects.filter(event_type="token.mac_invalid").exists()


@pytest.mark.django_db
def test_a_family_without_its_login_on_record_cannot_be_refreshed(client, alice, app):
    """Deleting the session would otherwise lift the absolute lifetime that counts from it."""
    raw = code_flow_tokens(client, app, alice)["refresh_token"]
    OAuthSession.objects.all().delete()

    assert refused_grant(refresh(client, app, raw))


# --- authorization codes ----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_authorization_code_row_inserted_with_ones_own_pkce_challenge_is_refused(client, alice, app):
    code, (verifier, challenge) = secrets.token_urlsafe(32), pkce_pair()
    with connection.cursor() as cursor:
        cursor.execute(INSERT_GRANT, [code, alice.pk, app.pk, REDIRECT_URI, ALL_SCOPES, challenge])
        grant_id = cursor.fetchone()[0]

    response = exchange_code(client, app, code, verifier)

    assert refused_grant(response)
    assert not AccessToken.objects.exists()
    event = refusals("oauth.grant").get(object_id=str(grant_id))
    assert event.payload == {
        "lookup": "token_endpoint",
        "claimed_user": str(alice.public_id),
        "claimed_client": app.client_id,
    }
    assert code not in str(AuditEvent.objects.values_list("payload", flat=True))
    grant_macs_store(Grant.objects.filter(pk=grant_id))  # only code holding the key makes it a code
    assert exchange_code(client, app, code, verifier).status_code == 200


@pytest.mark.parametrize("change", ["code_challenge", "user", "scope", "redirect_uri", "expires"])
@pytest.mark.django_db
def test_a_real_authorization_code_whose_row_was_changed_afterwards_is_refused(client, alice, app, change):
    client.force_login(alice)
    verifier, challenge = pkce_pair()
    code = obtain_code(client, app, challenge)["code"]
    client.logout()
    assert GrantMac.objects.filter(grant__code=code).exists()
    mine, my_challenge = pkce_pair()  # intercepting the code is worth nothing without the verifier: unless
    values = {
        "code_challenge": {"code_challenge": my_challenge},
        "user": {"user": customer_create(email="bob@example.com", password=None)},
        "scope": {"scope": ALL_SCOPES},
        "redirect_uri": {"redirect_uri": "http://127.0.0.1:9999/elsewhere"},
        "expires": {"expires": timezone.now() + timedelta(days=1)},
    }[change]

    Grant.objects.filter(code=code).update(**values)

    assert refused_grant(exchange_code(client, app, code, mine if change == "code_challenge" else verifier))
    assert refusals("oauth.grant").exists()
    assert not AccessToken.objects.exists()
