"""Swagger UI's "Authorize" on /v1/docs works in dev: `demo_seed` registers the docs client it names.

The docs page carries the client id and asks for PKCE; the client is public,
registered for exactly the redirect Swagger UI sends; the redirect route
hands over to Swagger UI's own oauth2-redirect page; and a code obtained for
that redirect is exchanged, with the verifier and no secret, for a token.
"""

from __future__ import annotations

import io
import json
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings
from django.core.management import call_command
from oauth2_provider.models import Application

from accounts.services import customer_create
from accounts.tests.oauth_helpers import pkce_pair
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


def docs_redirect() -> str:
    return settings.SPECTACULAR_SETTINGS["SWAGGER_UI_SETTINGS"]["oauth2RedirectUrl"]


def test_the_docs_page_offers_the_pkce_client(client):
    config = settings.SPECTACULAR_SETTINGS["SWAGGER_UI_OAUTH2_CONFIG"]
    assert config == {
        "clientId": settings.DOCS_OAUTH_CLIENT_ID,
        "usePkceWithAuthorizationCodeGrant": True,
        "scopes": "openid profile:read",
    }
    assert urlsplit(docs_redirect()).path == settings.DOCS_OAUTH_REDIRECT_PATH == "/v1/docs/oauth2-redirect.html"
    script = client.get("/v1/docs?script=")  # the split view's script: settings and initOAuth
    assert script.status_code == 200
    text = script.content.decode()
    assert f'"clientId": "{settings.DOCS_OAUTH_CLIENT_ID}"' in text and "usePkceWithAuthorizationCodeGrant" in text
    assert docs_redirect() in text


def test_the_redirect_route_hands_over_to_swagger_uis_page_with_the_query(client):
    response = client.get("/v1/docs/oauth2-redirect.html?code=abc&state=xyz")

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path.endswith("oauth2-redirect.html") and "swagger-ui-dist" in location.path
    assert parse_qs(location.query) == {"code": ["abc"], "state": ["xyz"]}


def test_demo_seed_registers_the_docs_client_once_and_it_completes_a_pkce_flow(var_dir, client):
    call_command("demo_seed", stdout=io.StringIO())
    call_command("demo_seed", stdout=io.StringIO())

    docs = Application.objects.get(client_id=settings.DOCS_OAUTH_CLIENT_ID)
    assert (docs.client_type, docs.authorization_grant_type) == ("public", "authorization-code")
    assert docs.redirect_uris.split() == [docs_redirect()]
    assert AuditEvent.objects.filter(event_type="oauth.client_registered", object_id=docs.client_id).count() == 1
    assert json.loads((var_dir / "demo-oauth-clients.json").read_text())["docs_client_id"] == docs.client_id

    client.force_login(customer_create(email="docs.reader@example.com", password=None))
    verifier, challenge = pkce_pair()
    query = urlencode({
        "response_type": "code", "client_id": docs.client_id, "redirect_uri": docs_redirect(),
        "scope": "openid profile:read", "state": "s", "code_challenge": challenge, "code_challenge_method": "S256",
    })  # fmt: skip
    page = client.get(f"/o/authorize/?{query}")
    assert page.status_code == 200, page.content[:300]
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    consent = client.post(f"/o/authorize/?{query}", {**form, "allow": "Authorize"})
    assert consent.status_code == 302 and consent["Location"].startswith(docs_redirect())
    code = parse_qs(urlsplit(consent["Location"]).query)["code"][0]

    token = client.post("/o/token/", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": docs_redirect(),
        "client_id": docs.client_id, "code_verifier": verifier,
    })  # fmt: skip

    assert token.status_code == 200, token.content
    assert client.get("/v1/me", HTTP_AUTHORIZATION=f"Bearer {token.json()['access_token']}").status_code == 200
