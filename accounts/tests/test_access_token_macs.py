"""Issue 12, item 5: an access token row written with the database login alone is no token.

Rows are written here the way someone holding only the web process's database
login would: plain SQL (or an UPDATE), never through the authorization server.
"""

from __future__ import annotations

import hashlib
import importlib
import secrets
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection
from django.utils import timezone
from oauth2_provider.models import AccessToken

from accounts.authentication import bearer_token_find
from accounts.models import AccessTokenMac
from accounts.oauth.token_macs import access_token_mac, access_token_macs_store
from accounts.oauth.tokens import token_checksum
from accounts.services import customer_create
from accounts.tests.access_matrix import ALL_SCOPES, issue_token
from accounts.tests.oauth_helpers import (
    basic_auth,
    exchange_code,
    mobile_client,
    obtain_code,
    partner_client,
    pkce_pair,
    refresh,
)
from audit.models import AuditEvent

INSERT_TOKEN = (
    "INSERT INTO oauth2_provider_accesstoken (token, token_checksum, user_id, application_id, scope, expires,"
    " created, updated, resource) VALUES ('', %s, %s, %s, %s, now() + interval '1 hour', now(), now(), '[]')"
    " RETURNING id"
)


@pytest.fixture
def alice():
    return customer_create(email="alice@example.com", password=None)


@pytest.fixture
def app():
    return mobile_client()


def me(client, raw: str):
    return client.get("/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}")


def refused_everywhere(client, raw: str) -> None:
    """401 invalid_token on /v1 and on userinfo, inactive on introspection: as an unknown token is."""
    response = me(client, raw)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert client.get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    partner, secret = partner_client(can_introspect=True)
    introspected = client.post(
        "/o/introspect/", {"token": raw}, HTTP_AUTHORIZATION=basic_auth(partner.client_id, secret)
    )
    assert introspected.json() == {"active": False}


def code_flow_tokens(client, app, user) -> dict:
    client.force_login(user)
    verifier, challenge = pkce_pair()
    code = obtain_code(client, app, challenge)["code"]
    response = exchange_code(client, app, code, verifier)
    client.logout()
    assert response.status_code == 200, response.content
    return response.json()


def mac_verifies(raw: str) -> bool:
    token = AccessToken.objects.get(token_checksum=token_checksum(raw))
    return AccessTokenMac.objects.get(access_token=token).mac == access_token_mac(token)


@pytest.mark.django_db
def test_tokens_the_server_issues_carry_a_mac_and_work_on_every_door(client, alice, app):
    tokens = code_flow_tokens(client, app, alice)

    assert mac_verifies(tokens["access_token"])
    assert me(client, tokens["access_token"]).status_code == 200
    assert client.get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}").status_code == 200
    partner, secret = partner_client(can_introspect=True)
    introspected = client.post(
        "/o/introspect/", {"token": tokens["access_token"]}, HTTP_AUTHORIZATION=basic_auth(partner.client_id, secret)
    )
    assert introspected.json()["active"] is True


@pytest.mark.django_db
def test_the_refresh_and_client_credentials_grants_issue_tokens_with_valid_macs(client, alice, app):
    first = code_flow_tokens(client, app, alice)

    rotated = refresh(client, app, first["refresh_token"])
    partner, secret = partner_client()
    machine = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "accounts:read"},
        HTTP_AUTHORIZATION=basic_auth(partner.client_id, secret),
    )

    assert rotated.status_code == 200 and machine.status_code == 200
    assert mac_verifies(rotated.json()["access_token"]) and mac_verifies(machine.json()["access_token"])
    assert me(client, rotated.json()["access_token"]).status_code == 200


@pytest.mark.django_db
def test_a_row_inserted_with_the_database_login_is_refused_and_recorded(client, alice, app):
    raw = secrets.token_urlsafe(32)
    with connection.cursor() as cursor:
        cursor.execute(INSERT_TOKEN, [token_checksum(raw), alice.pk, app.pk, ALL_SCOPES])
        row_id = cursor.fetchone()[0]

    refused_everywhere(client, raw)

    events = AuditEvent.objects.filter(event_type="token.mac_invalid", object_id=str(row_id))
    assert {event.payload["lookup"] for event in events} == {"bearer", "oauth_validator", "introspection"}
    assert all(event.outcome == "denied" for event in events)
    # /v1 and /o/userinfo/ each look the token up once (the limiter's lookup is the view's on /v1).
    assert {e.payload["claimed_user"] for e in events.filter(payload__lookup="bearer")} == {str(alice.public_id)}
    assert raw not in str(AuditEvent.objects.values_list("payload", flat=True))


@pytest.mark.django_db
def test_a_mac_written_with_the_database_login_does_not_help(client, alice, app):
    """Without the key, the best a database login can write is a copy of another row's MAC or a guess."""
    genuine = issue_token(application=app, user=alice, scope="profile:read")
    copied = AccessTokenMac.objects.get(access_token__token_checksum=token_checksum(genuine)).mac
    for mac in (copied, hashlib.sha256(b"a guess at the key").hexdigest()):
        raw = secrets.token_urlsafe(32)
        with connection.cursor() as cursor:
            cursor.execute(INSERT_TOKEN, [token_checksum(raw), alice.pk, app.pk, ALL_SCOPES])
            cursor.execute(
                "INSERT INTO accounts_accesstokenmac (access_token_id, mac) VALUES (%s, %s)",
                [cursor.fetchone()[0], mac],
            )

        assert me(client, raw).status_code == 401
    assert me(client, genuine).status_code == 200


@pytest.mark.parametrize("change", ["scope", "user", "application", "expires"])
@pytest.mark.django_db
def test_a_real_token_whose_row_was_changed_afterwards_is_refused(client, alice, app, change):
    raw = code_flow_tokens(client, app, alice)["access_token"]
    assert me(client, raw).status_code == 200
    bob = customer_create(email="bob@example.com", password=None)
    values = {
        "scope": {"scope": ALL_SCOPES},
        "user": {"user": bob},
        "application": {"application": mobile_client()},
        "expires": {"expires": timezone.now() + timedelta(days=30)},
    }[change]

    AccessToken.objects.filter(token_checksum=token_checksum(raw)).update(**values)  # an UPDATE, no application code

    refused_everywhere(client, raw)


@pytest.mark.django_db
def test_a_token_without_any_mac_row_is_refused(client, alice, app):
    raw = issue_token(application=app, user=alice, scope="profile:read")
    AccessTokenMac.objects.filter(access_token__token_checksum=token_checksum(raw)).delete()

    assert me(client, raw).status_code == 401


@pytest.mark.django_db
def test_macs_under_a_fallback_secret_verify_after_a_rotation(settings, alice, app):
    raw = issue_token(application=app, user=alice, scope="profile:read")
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-" + secrets.token_hex(16)

    assert bearer_token_find(raw) is None  # the old secret is gone: its MACs with it
    settings.SECRET_KEY_FALLBACKS = [old]
    assert bearer_token_find(raw).user_id == alice.pk


@pytest.mark.django_db
def test_the_migration_gives_unexpired_tokens_issued_before_it_their_mac(alice, app):
    migration = importlib.import_module("accounts.migrations.0015_accesstokenmac")
    live, expired = (
        AccessToken(user=alice, application=app, scope="profile:read", token="", expires=timezone.now() + delta)
        for delta in (timedelta(minutes=5), -timedelta(minutes=5))
    )
    for token, raw in ((live, "live"), (expired, "expired")):
        token.token_checksum = token_checksum(raw)
    AccessToken.objects.bulk_create([live, expired])  # as they were before the migration: no MAC

    migration.mac_existing_tokens(apps, SimpleNamespace(connection=connection))

    assert bearer_token_find("live").user_id == alice.pk
    assert not AccessTokenMac.objects.filter(access_token__token_checksum=token_checksum("expired")).exists()


@pytest.mark.django_db(transaction=True)
def test_the_runtime_role_can_write_a_token_and_a_mac_but_not_get_in(client, runtime_connection):
    alice = customer_create(email="alice@example.com", password=None)
    app = mobile_client()
    raw = secrets.token_urlsafe(32)
    with runtime_connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == settings.DATABASE_RUNTIME_ROLES["default"]
        cursor.execute(INSERT_TOKEN, [token_checksum(raw), alice.pk, app.pk, ALL_SCOPES])
        row_id = cursor.fetchone()[0]
        guess = hashlib.sha256(f"{token_checksum(raw)}{alice.pk}{app.pk}".encode()).hexdigest()
        cursor.execute("INSERT INTO accounts_accesstokenmac (access_token_id, mac) VALUES (%s, %s)", [row_id, guess])

    assert me(client, raw).status_code == 401
    access_token_macs_store(AccessToken.objects.filter(pk=row_id))  # only code holding the key makes it a token
    assert me(client, raw).status_code == 200
