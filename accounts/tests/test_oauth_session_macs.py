"""Issue 12, item 5 continued: OAuth session rows carry a MAC, so rewriting one fakes no second factor.

Also here: secret rotation and the migration for all three kinds of row, and
the runtime role's own login writing each of them and getting nothing from it.
"""

from __future__ import annotations

import importlib
import secrets
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection
from django.utils import timezone
from oauth2_provider.models import AccessToken, Grant, RefreshToken

from accounts.models import AccessTokenMac, GrantMac, OAuthSession, OAuthSessionMac, RefreshTokenMac
from accounts.oauth.row_macs import oauth_session_macs_store, row_mac_verified
from accounts.oauth.tokens import token_checksum
from accounts.services import customer_create
from accounts.tests.access_matrix import ALL_SCOPES
from accounts.tests.oauth_helpers import REDIRECT_URI, exchange_code, mobile_client, obtain_code, pkce_pair, refresh
from accounts.tests.row_mac_helpers import (
    INSERT_ACCESS,
    INSERT_GRANT,
    INSERT_REFRESH,
    code_flow_tokens,
    refresh_row,
    refusals,
    refused_grant,
    step_up_passes,
)


@pytest.fixture
def alice():
    return customer_create(email="alice@example.com", password=None)


@pytest.fixture
def app():
    return mobile_client()


# --- OAuth sessions (step-up, absolute lifetime) ----------------------------------------------


@pytest.mark.parametrize("change", ["mfa_verified_at", "authenticated_at", "user"])
@pytest.mark.django_db
def test_a_session_changed_afterwards_passes_for_no_second_factor_and_no_fresh_login(client, alice, app, change):
    tokens = code_flow_tokens(client, app, alice)  # a password-only login
    assert not step_up_passes(tokens["access_token"])
    values = {
        "mfa_verified_at": {"mfa_verified_at": timezone.now()},
        "authenticated_at": {"authenticated_at": timezone.now() + timedelta(days=365)},  # an everlasting family
        "user": {"user": customer_create(email="bob@example.com", password=None)},
    }[change]

    OAuthSession.objects.update(**values)

    assert not step_up_passes(tokens["access_token"])
    assert refused_grant(refresh(client, app, tokens["refresh_token"]))
    assert refusals("oauth.session").filter(payload__lookup="step_up").exists()
    assert refusals("oauth.session").filter(payload__lookup="refresh").exists()


@pytest.mark.django_db
def test_a_session_row_put_in_place_of_the_real_one_is_refused(client, alice, app):
    tokens = code_flow_tokens(client, app, alice)
    session = OAuthSession.objects.get()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM accounts_oauthsessionmac")
        cursor.execute("DELETE FROM accounts_oauthsession")
        cursor.execute(
            "INSERT INTO accounts_oauthsession (token_family, user_id, client_id, authenticated_at, mfa_verified_at,"
            " created_at) VALUES (%s, %s, %s, now(), now(), now())",
            [session.token_family, alice.pk, app.client_id],
        )

    assert not step_up_passes(tokens["access_token"])
    assert refused_grant(refresh(client, app, tokens["refresh_token"]))


@pytest.mark.django_db
def test_step_up_keeps_working_for_a_login_that_proved_mfa_after_its_tokens_rotate(client, alice, app):
    tokens = code_flow_tokens(client, app, alice, mfa=True)
    assert OAuthSessionMac.objects.count() == 1
    assert step_up_passes(tokens["access_token"])

    rotated = refresh(client, app, tokens["refresh_token"]).json()

    assert step_up_passes(rotated["access_token"])
    OAuthSession.objects.update(mfa_verified_at=timezone.now() - timedelta(hours=1))
    oauth_session_macs_store(OAuthSession.objects.all())  # an old second factor, as the server would record it
    assert not step_up_passes(rotated["access_token"])


# --- key rotation and the migration -----------------------------------------------------------


@pytest.mark.django_db
def test_macs_under_a_fallback_secret_verify_after_a_rotation(client, settings, alice, app):
    code_flow_tokens(client, app, alice)
    client.force_login(alice)
    obtain_code(client, mobile_client(), pkce_pair()[1])  # a code not exchanged yet (another app: a consent page)
    rows = {
        "refresh_token": RefreshToken.objects.select_related("fintech_mac").get(),
        "grant": Grant.objects.select_related("fintech_mac").get(),
        "session": OAuthSession.objects.select_related("fintech_mac").get(),
    }
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-" + secrets.token_hex(16)

    assert not any(row_mac_verified(kind, row, lookup="test") for kind, row in rows.items())
    settings.SECRET_KEY_FALLBACKS = [old]
    assert all(row_mac_verified(kind, row, lookup="test") for kind, row in rows.items())


@pytest.mark.django_db
def test_the_migration_gives_live_rows_their_mac_so_nobody_is_signed_out(client, alice, app):
    migration = importlib.import_module("accounts.migrations.0016_oauth_row_macs")
    first = code_flow_tokens(client, app, alice)
    tokens = refresh(client, app, first["refresh_token"]).json()  # one revoked refresh token, one live
    client.force_login(alice)
    verifier, challenge = pkce_pair()
    other_app = mobile_client()  # the same app would skip its consent page
    code = obtain_code(client, other_app, challenge)["code"]
    AccessToken.objects.update(expires=timezone.now() - timedelta(minutes=1))  # a refresh follows an expired token
    for model in (RefreshTokenMac, GrantMac, OAuthSessionMac, AccessTokenMac):  # as before 0016 (and 0015)
        model.objects.all().delete()

    migration.mac_live_rows(apps, SimpleNamespace(connection=connection))

    assert not RefreshTokenMac.objects.filter(refresh_token=refresh_row(first["refresh_token"])).exists()
    assert refresh(client, app, tokens["refresh_token"]).status_code == 200
    assert exchange_code(client, other_app, code, verifier).status_code == 200


# --- as the runtime role ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_runtime_role_can_write_these_rows_but_gets_no_token_and_no_step_up_from_them(client, runtime_connection):
    alice = customer_create(email="alice@example.com", password=None)
    app = mobile_client()
    tokens = code_flow_tokens(client, app, alice)
    family = refresh_row(tokens["refresh_token"]).token_family
    chosen_refresh, chosen_code, (verifier, challenge) = (
        secrets.token_urlsafe(32),
        secrets.token_urlsafe(32),
        pkce_pair(),
    )
    with runtime_connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == settings.DATABASE_RUNTIME_ROLES["default"]
        cursor.execute(INSERT_ACCESS, [token_checksum(secrets.token_urlsafe(32)), alice.pk, app.pk, ALL_SCOPES])
        cursor.execute(INSERT_REFRESH, [token_checksum(chosen_refresh), alice.pk, app.pk, cursor.fetchone()[0], family])
        cursor.execute(INSERT_GRANT, [chosen_code, alice.pk, app.pk, REDIRECT_URI, ALL_SCOPES, challenge])
        cursor.execute("UPDATE accounts_oauthsession SET mfa_verified_at = now()")

    assert refused_grant(refresh(client, app, chosen_refresh))
    assert refused_grant(exchange_code(client, app, chosen_code, verifier))
    assert not step_up_passes(tokens["access_token"])
    assert refresh(client, app, tokens["refresh_token"]).status_code == 400  # its session no longer verifies
