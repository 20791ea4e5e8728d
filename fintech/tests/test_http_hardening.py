"""Security headers, request ids, client addresses and body limits, through the real middleware stack."""

from __future__ import annotations

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.strip().split()
        directives[name] = values
    return directives


def test_pages_get_a_policy_without_inline_scripts_and_are_never_framed(client):
    response = client.get("/accounts/login/")

    assert response.status_code == 200
    policy = csp_directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_admin_login_page_is_served_with_the_page_policy(client):
    response = client.get("/accounts/login/")

    assert response.status_code == 200
    assert "'unsafe-inline'" not in csp_directives(response["Content-Security-Policy"])["script-src"]


def test_json_responses_allow_nothing(client):
    response = client.get("/v1/does-not-exist")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert csp_directives(response["Content-Security-Policy"]) == {
        "default-src": ["'none'"],
        "frame-ancestors": ["'none'"],
    }


def test_swagger_ui_loads_its_script_from_a_url_not_inline(client):
    page = client.get("/v1/docs")
    script = client.get("/v1/docs?script=")

    assert page.status_code == 200
    assert b"<script>" not in page.content
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")


def test_every_response_carries_a_generated_request_id(client):
    first = client.get("/healthz")
    second = client.get("/healthz")

    assert len(first["X-Request-ID"]) == 32
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_a_client_cannot_choose_its_request_id(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="attacker-chosen-id-123")

    assert response["X-Request-ID"] != "attacker-chosen-id-123"


@override_settings(TRUSTED_PROXIES=["127.0.0.1/32"])
def test_a_trusted_proxy_passes_its_request_id_through(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="lb-4f2a9c1e-0001")

    assert response["X-Request-ID"] == "lb-4f2a9c1e-0001"


@override_settings(TRUSTED_PROXIES=["127.0.0.1/32"])
def test_a_malformed_request_id_from_a_proxy_is_replaced(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")

    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32


def test_bodies_over_the_limit_are_refused_before_reading(client, settings):
    settings.REQUEST_BODY_MAX_BYTES = 1024
    response = client.post("/v1/anything", data=b"x" * 2048, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


def test_a_garbage_content_length_is_a_clear_400(client):
    response = client.post("/v1/anything", data=b"{}", content_type="application/json", CONTENT_LENGTH="ten")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_content_length"
