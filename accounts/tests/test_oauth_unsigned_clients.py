"""A client registered without a signing algorithm cannot be issued an ID token: `openid` is `invalid_scope`.

Without this, DOT accepts the scope and fails while signing the ID token (a
500 from the token endpoint, after the code was spent). Refusing the scope up
front, where every grant checks scopes, gives the client an answer it can act on.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from oauth2_provider.models import Application

from accounts.services import customer_create
from accounts.tests.oauth_helpers import (
    REDIRECT_URI,
    authorize_query,
    basic_auth,
    mobile_client,
    partner_client,
    pkce_pair,
)

pytestmark = pytest.mark.django_db


def test_a_confidential_client_without_algorithm_asking_for_openid_gets_invalid_scope(client):
    app, secret = partner_client()
    assert app.algorithm == Application.NO_ALGORITHM

    response = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "openid accounts:read"},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, secret),
    )

    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_scope"


def test_a_public_client_without_algorithm_asking_for_openid_is_sent_back_with_invalid_scope(client):
    app = mobile_client()
    Application.objects.filter(pk=app.pk).update(algorithm=Application.NO_ALGORITHM)
    app.refresh_from_db()
    client.force_login(customer_create(email="unsigned.client@example.com", password=None))
    _verifier, challenge = pkce_pair()

    response = client.get(f"/o/authorize/?{authorize_query(app, challenge)}")

    assert response.status_code == 302, response.content[:300]
    location = urlsplit(response["Location"])
    assert location.geturl().startswith(REDIRECT_URI)
    assert parse_qs(location.query)["error"] == ["invalid_scope"]


def test_the_same_client_without_openid_is_still_served(client):
    app, secret = partner_client()

    response = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "accounts:read"},
        HTTP_AUTHORIZATION=basic_auth(app.client_id, secret),
    )

    assert response.status_code == 200, response.content
    assert "id_token" not in response.json()
