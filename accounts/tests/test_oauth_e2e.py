"""End to end, as a third-party client would do it: Authlib against the running server.

Discovery, login with password and TOTP, consent, authorization code with PKCE
S256, token, a /v1/me call, refresh, then a replay of the old refresh token:
`invalid_grant`, and the newest refresh token is dead too.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.services import customer_create
from accounts.tests.oauth_helpers import REDIRECT_URI, mobile_client
from audit.models import AuditEvent

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
PASSWORD = "correct horse battery staple 42"


class FormReader(HTMLParser):
    """Collects the inputs of the page's forms: {name: value} of the first form with a field named `wanted`."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attributes.get("action") or "", "fields": {}})
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value") or ""


def form_with(html: str, field: str) -> dict:
    reader = FormReader()
    reader.feed(html)
    return next(form for form in reader.forms if field in form["fields"])


def submit(browser: requests.Session, page: requests.Response, field: str, values: dict) -> requests.Response:
    form = form_with(page.text, field)
    action = urljoin(page.url, form["action"]) if form["action"] else page.url
    return browser.post(action, data={**form["fields"], **values}, headers={"Referer": page.url}, allow_redirects=False)


def follow(browser: requests.Session, response: requests.Response, base: str) -> requests.Response:
    assert response.status_code == 302, (response.status_code, response.text[:300])
    return browser.get(urljoin(base, response.headers["Location"]), allow_redirects=False)


def test_a_third_party_client_runs_the_whole_flow_and_a_replayed_refresh_token_kills_the_family(live_server_process):
    base = live_server_process.url
    customer = customer_create(email="e2e.customer@example.com", password=PASSWORD)
    device = TOTPDevice.objects.create(user=customer, name="phone", confirmed=True)
    app = mobile_client()

    metadata = requests.get(f"{base}/.well-known/openid-configuration", timeout=5).json()
    assert metadata["issuer"] == base
    assert metadata["code_challenge_methods_supported"] == ["S256"]

    client = OAuth2Session(
        app.client_id,
        redirect_uri=REDIRECT_URI,
        scope="openid profile:read",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = generate_token(48)
    authorize_url, _state = client.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)

    browser = requests.Session()
    to_login = browser.get(authorize_url, allow_redirects=False)
    login_page = follow(browser, to_login, base)
    to_mfa = submit(browser, login_page, "password", {"username": customer.email, "password": PASSWORD})
    mfa_page = follow(browser, to_mfa, base)
    code = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift).token()
    back_to_authorize = submit(browser, mfa_page, "otp_code", {"otp_code": f"{code:06d}"})
    consent = follow(browser, back_to_authorize, base)
    assert consent.status_code == 200, consent.text[:300]
    redirect = submit(browser, consent, "client_id", {"allow": "Authorize"})
    assert redirect.status_code == 302
    callback = redirect.headers["Location"]
    assert callback.startswith(REDIRECT_URI)
    assert parse_qs(urlsplit(callback).query)["iss"] == [base]

    token = client.fetch_token(metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier)
    assert token["expires_in"] == 600
    me = client.get(f"{base}/v1/me")
    assert me.status_code == 200
    assert me.json()["mfa_enabled"] is True

    first_refresh = token["refresh_token"]
    rotated = client.refresh_token(metadata["token_endpoint"], refresh_token=first_refresh)
    assert rotated["refresh_token"] != first_refresh
    assert client.get(f"{base}/v1/me").status_code == 200

    with pytest.raises(OAuthError) as replay:
        client.refresh_token(metadata["token_endpoint"], refresh_token=first_refresh)
    assert replay.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as newest:
        client.refresh_token(metadata["token_endpoint"], refresh_token=rotated["refresh_token"])
    assert newest.value.error == "invalid_grant"
    assert client.get(f"{base}/v1/me").status_code == 401
    assert AuditEvent.objects.filter(event_type="token.reuse_detected").exists()
