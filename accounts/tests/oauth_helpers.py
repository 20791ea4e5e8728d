"""Driving the authorization server in-process the way a client app would."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from accounts.oauth.clients import oauth_client_register_mobile, oauth_client_register_partner
from audit.services.events import Actor

REDIRECT_URI = "http://127.0.0.1:8765/callback"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def mobile_client():
    return oauth_client_register_mobile(
        name="Test mobile app", redirect_uris=[REDIRECT_URI], actor=Actor.system("test")
    )


def partner_client(*, can_introspect: bool = False):
    return oauth_client_register_partner(name="Test partner", can_introspect=can_introspect, actor=Actor.system("test"))


def authorize_query(application, challenge: str | None, **overrides) -> str:
    params = {
        "response_type": "code",
        "client_id": application.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile:read accounts:read",
        "state": "st4te",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return urlencode({k: v for k, v in params.items() if v is not None})


def obtain_code(client, application, challenge: str, **overrides) -> dict[str, str]:
    """Consent as the logged-in user; returns the redirect's query parameters (code, state, iss)."""
    query = authorize_query(application, challenge, **overrides)
    page = client.get(f"/o/authorize/?{query}")
    assert page.status_code == 200, page.content[:500]
    form = {k: v for k, v in page.context["form"].initial.items() if v is not None}
    response = client.post(f"/o/authorize/?{query}", {**form, "allow": "Authorize"})
    assert response.status_code == 302, response.content[:500]
    location = urlsplit(response["Location"])
    return {k: v[0] for k, v in parse_qs(location.query).items()}


def exchange_code(client, application, code: str, verifier: str):
    return client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": application.client_id,
            "code_verifier": verifier,
        },
    )


def refresh(client, application, refresh_token: str):
    return client.post(
        "/o/token/",
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": application.client_id},
    )


def basic_auth(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
