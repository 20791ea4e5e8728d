"""The authorization server as configured: PKCE S256 only, rotating refresh tokens, no legacy grants."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import AccessToken, Grant, RefreshToken

from accounts.models import OAuthSession, User
from accounts.oauth.row_macs import oauth_session_macs_store
from accounts.oauth.token_macs import access_token_macs_store
from accounts.services import customer_create
from accounts.tests.access_matrix import issue_token
from accounts.tests.oauth_helpers import (
    REDIRECT_URI,
    authorize_query,
    basic_auth,
    exchange_code,
    mobile_client,
    obtain_code,
    partner_client,
    pkce_pair,
    refresh,
)
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer():
    return customer_create(email="oauth.customer@example.com", password=None)


@pytest.fixture
def app():
    return mobile_client()


@pytest.fixture
def logged_in(client, customer):
    client.force_login(customer)
    return client


def tokens_for(client, app):
    verifier, challenge = pkce_pair()
    code = obtain_code(client, app, challenge)["code"]
    response = exchange_code(client, app, code, verifier)
    assert response.status_code == 200, response.content
    return response.json()


def test_code_flow_with_pkce_issues_short_lived_hashed_tokens_and_iss(logged_in, app):
    verifier, challenge = pkce_pair()

    redirect = obtain_code(logged_in, app, challenge)
    response = exchange_code(logged_in, app, redirect["code"], verifier)

    assert redirect["state"] == "st4te"
    assert redirect["iss"] == "http://testserver"  # RFC 9207
    body = response.json()
    assert body["expires_in"] == 600
    assert body["token_type"] == "Bearer"
    assert {"access_token", "refresh_token", "id_token"} <= set(body)
    stored = AccessToken.objects.get()
    assert body["access_token"] not in (stored.token or "")  # stored as a checksum, not in clear
    assert OAuthSession.objects.get().user.email == "oauth.customer@example.com"


def test_the_token_works_on_v1_me_and_carries_the_principal(logged_in, app, client):
    token = tokens_for(logged_in, app)["access_token"]
    client.logout()

    response = client.get("/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 200
    assert response.json()["email"] == "o***@example.com"


def test_no_code_challenge_is_refused_before_any_code_exists(logged_in, app):
    response = logged_in.get(f"/o/authorize/?{authorize_query(app, None, code_challenge_method=None)}")

    assert response.status_code == 302
    assert response["Location"].startswith(f"{REDIRECT_URI}?error=invalid_request")
    assert "code=" not in response["Location"]
    assert not Grant.objects.exists()


def test_plain_code_challenge_method_is_refused(logged_in, app):
    verifier, _ = pkce_pair()
    query = authorize_query(app, verifier, code_challenge_method="plain")

    consent = logged_in.get(f"/o/authorize/?{query}")
    assert consent.status_code == 200  # the refusal comes when the code would be made
    form = {k: v for k, v in consent.context["form"].initial.items() if v is not None}
    response = logged_in.post(f"/o/authorize/?{query}", {**form, "allow": "Authorize"})

    assert response.status_code == 302
    assert response["Location"].startswith(f"{REDIRECT_URI}?error=invalid_request")
    assert "code=" not in response["Location"]
    assert not Grant.objects.exists()


def test_implicit_response_type_is_refused(logged_in, app):
    _, challenge = pkce_pair()

    response = logged_in.get(f"/o/authorize/?{authorize_query(app, challenge, response_type='token')}")

    assert response.status_code == 302
    assert response["Location"] == f"{REDIRECT_URI}?error=unsupported_response_type&state=st4te"
    assert not AccessToken.objects.exists()


def test_password_grant_is_unsupported(client, customer):
    application, secret = partner_client()

    response = client.post(
        "/o/token/",
        {"grant_type": "password", "username": "oauth.customer@example.com", "password": "x"},
        HTTP_AUTHORIZATION=basic_auth(application.client_id, secret),
    )

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"
    assert not AccessToken.objects.exists()


def test_a_code_used_twice_is_refused_and_revokes_the_first_tokens(logged_in, app):
    verifier, challenge = pkce_pair()
    code = obtain_code(logged_in, app, challenge)["code"]
    first = exchange_code(logged_in, app, code, verifier).json()

    second = exchange_code(logged_in, app, code, verifier)

    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert logged_in.get("/v1/me", HTTP_AUTHORIZATION=f"Bearer {first['access_token']}").status_code == 401
    assert refresh(logged_in, app, first["refresh_token"]).json()["error"] == "invalid_grant"
    assert AuditEvent.objects.filter(event_type="token.code_reuse_detected").count() == 1


def test_a_token_in_the_query_string_is_not_accepted(logged_in, app, client):
    token = tokens_for(logged_in, app)["access_token"]
    client.logout()

    response = client.get(f"/v1/me?access_token={token}")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_refresh_rotates_and_a_replayed_refresh_token_kills_the_family(logged_in, app):
    first = tokens_for(logged_in, app)
    second = refresh(logged_in, app, first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]

    replay = refresh(logged_in, app, first["refresh_token"])

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert refresh(logged_in, app, second["refresh_token"]).json()["error"] == "invalid_grant"
    assert logged_in.get("/v1/me", HTTP_AUTHORIZATION=f"Bearer {second['access_token']}").status_code == 401
    event = AuditEvent.objects.filter(event_type="token.reuse_detected").earliest("id")
    assert event.outcome == "denied"
    assert event.object_id == str(RefreshToken.objects.first().token_family)


def test_refresh_stops_at_the_absolute_lifetime_however_often_it_rotated(logged_in, app, settings):
    first = tokens_for(logged_in, app)
    OAuthSession.objects.update(authenticated_at=timezone.now() - timedelta(days=31))
    oauth_session_macs_store(OAuthSession.objects.all())  # a login that old, not a row changed behind our back

    response = refresh(logged_in, app, first["refresh_token"])

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_metadata_advertises_only_what_is_allowed(client):
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    oidc = client.get("/.well-known/openid-configuration").json()

    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["response_types_supported"] == ["code"]
    assert set(metadata["grant_types_supported"]) == {"authorization_code", "client_credentials", "refresh_token"}
    assert metadata["issuer"] == "http://testserver"
    assert oidc["issuer"] == "http://testserver"
    assert oidc["response_types_supported"] == ["code"]
    keys = client.get("/o/.well-known/jwks.json").json()["keys"]
    assert len(keys) >= 1
    assert keys[0]["kty"] == "RSA"


def test_redirect_uris_must_match_exactly(logged_in, app):
    _, challenge = pkce_pair()

    response = logged_in.get(f"/o/authorize/?{authorize_query(app, challenge, redirect_uri=REDIRECT_URI + 'x')}")

    assert response.status_code == 400  # never redirected to an unregistered URI
    assert not Grant.objects.exists()


class TestIntrospection:
    def test_only_clients_granted_introspection_learn_anything(self, client, logged_in, app):
        token = tokens_for(logged_in, app)["access_token"]
        outsider, outsider_secret = partner_client()
        auditor, auditor_secret = partner_client(can_introspect=True)

        anonymous = client.post("/o/introspect/", {"token": token})
        refused = client.post(
            "/o/introspect/", {"token": token}, HTTP_AUTHORIZATION=basic_auth(outsider.client_id, outsider_secret)
        )
        allowed = client.post(
            "/o/introspect/", {"token": token}, HTTP_AUTHORIZATION=basic_auth(auditor.client_id, auditor_secret)
        )
        by_get = client.get(
            f"/o/introspect/?token={token}", HTTP_AUTHORIZATION=basic_auth(auditor.client_id, auditor_secret)
        )

        assert anonymous.status_code == 401
        assert refused.status_code == 403
        assert "active" not in refused.json()
        assert allowed.status_code == 200
        assert allowed.json()["active"] is True
        assert allowed.json()["client_id"] == app.client_id
        assert "username" not in allowed.json()
        assert by_get.status_code == 405


def test_a_revoked_access_token_stops_working(logged_in, app, client):
    token = tokens_for(logged_in, app)["access_token"]

    revoked = client.post("/o/revoke_token/", {"token": token, "client_id": app.client_id})

    assert revoked.status_code == 200
    assert client.get("/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


def test_failed_and_refused_calls_are_security_events_with_the_request_id(logged_in, app, client):
    token = tokens_for(logged_in, app)["access_token"]
    client.logout()
    narrow = issue_token(application=app, user=User.objects.get(email="oauth.customer@example.com"), scope="cards:read")

    unauthenticated = client.get("/v1/me", HTTP_AUTHORIZATION="Bearer not-a-real-token")
    forbidden = client.get("/v1/me", HTTP_AUTHORIZATION=f"Bearer {narrow}")

    assert unauthenticated.status_code == 401
    assert 'error="invalid_token"' in unauthenticated["WWW-Authenticate"]
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in forbidden["WWW-Authenticate"]
    failed = AuditEvent.objects.get(event_type="auth.failed", request_id=unauthenticated["X-Request-ID"])
    denied = AuditEvent.objects.get(event_type="permission.denied", request_id=forbidden["X-Request-ID"])
    assert (failed.outcome, denied.outcome) == ("denied", "denied")
    assert denied.actor_user == str(User.objects.get(email="oauth.customer@example.com").public_id)
    assert token not in str(AuditEvent.objects.values_list("payload", flat=True))


def test_an_expired_token_and_a_deactivated_users_token_are_refused(logged_in, app, client):
    token = tokens_for(logged_in, app)["access_token"]
    client.logout()
    AccessToken.objects.update(expires=timezone.now() - timedelta(seconds=1))
    access_token_macs_store(AccessToken.objects.all())  # expired as issued, not a row changed behind our back

    expired = client.get("/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")

    AccessToken.objects.update(expires=timezone.now() + timedelta(minutes=5))
    access_token_macs_store(AccessToken.objects.all())
    User.objects.filter(email="oauth.customer@example.com").update(is_active=False)
    deactivated = client.get("/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert (expired.status_code, deactivated.status_code) == (401, 401)
    assert 'error="invalid_token"' in expired["WWW-Authenticate"]
