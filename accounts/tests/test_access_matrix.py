"""Runs every row of the access matrix (accounts/tests/access_matrix.py)."""

from __future__ import annotations

import pytest
from django.urls import get_resolver
from django.urls.resolvers import URLPattern, URLResolver

from accounts.services import customer_create
from accounts.tests.access_matrix import (
    EXEMPT_ROUTES,
    OBJECT_ENDPOINTS,
    PRINCIPAL_ENDPOINTS,
    Principals,
    call,
)

pytestmark = pytest.mark.django_db

OBJECT_EXPECTATIONS = {"other_customer": 404, "other_client": 404, "no_token": 401, "wrong_scope": 403}
PRINCIPAL_EXPECTATIONS = {"other_client": 403, "no_token": 401, "wrong_scope": 403}


@pytest.fixture
def principals():
    return Principals(
        owner=customer_create(email="matrix.owner@example.com", password=None),
        other_customer=customer_create(email="matrix.other@example.com", password=None),
    )


def _v1_routes(patterns=None, prefix="") -> set[str]:
    routes = set()
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        text = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            routes |= _v1_routes(pattern.url_patterns, text)
        elif isinstance(pattern, URLPattern) and text.startswith("v1/"):
            routes.add(text)
    return routes


def test_every_v1_route_is_in_the_matrix():
    listed = {e.route for e in OBJECT_ENDPOINTS} | {e.route for e in PRINCIPAL_ENDPOINTS} | set(EXEMPT_ROUTES)

    assert _v1_routes() - listed == set(), "add the new endpoint to accounts/tests/access_matrix.py"


def _object_call(client, principals, endpoint, who):
    object_id = endpoint.make_object(principals.owner)
    token = principals.token(who, endpoint.scope)

    response = call(client, endpoint.method, endpoint.path.format(id=object_id), token, endpoint.body())

    expected = endpoint.success if who == "owner" else OBJECT_EXPECTATIONS[who]
    assert response.status_code == expected, response.content[:300]


@pytest.mark.parametrize(
    "endpoint", [e for e in OBJECT_ENDPOINTS if not e.through_vault], ids=lambda e: f"{e.method} {e.route}"
)
@pytest.mark.parametrize("who", ["owner", *OBJECT_EXPECTATIONS])
def test_object_endpoint(client, principals, endpoint, who):
    _object_call(client, principals, endpoint, who)


@pytest.mark.django_db(transaction=True, databases=["default", "vault"])
@pytest.mark.parametrize(
    "endpoint", [e for e in OBJECT_ENDPOINTS if e.through_vault], ids=lambda e: f"{e.method} {e.route}"
)
@pytest.mark.parametrize("who", ["owner", *OBJECT_EXPECTATIONS])
def test_object_endpoint_through_the_vault(client, principals, endpoint, who, vault_live):
    _object_call(client, principals, endpoint, who)


@pytest.mark.parametrize("endpoint", PRINCIPAL_ENDPOINTS, ids=lambda e: f"{e.method} {e.route}")
@pytest.mark.parametrize("who", ["owner", *PRINCIPAL_EXPECTATIONS])
def test_principal_endpoint(client, principals, endpoint, who):
    token = principals.token(who, endpoint.scope)

    response = call(client, endpoint.method, endpoint.path, token, endpoint.body())

    expected = endpoint.success if who == "owner" else PRINCIPAL_EXPECTATIONS[who]
    assert response.status_code == expected, response.content[:300]
