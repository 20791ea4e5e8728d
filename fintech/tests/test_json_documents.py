"""A JSON body nested deeper than the interpreter can parse is a 400, never a 500 (RecursionError)."""

from __future__ import annotations

import uuid

import pytest

from accounts.tests.access_matrix import issue_token
from accounts.tests.oauth_helpers import mobile_client
from fintech.json_documents import JSONNestedTooDeeply, json_body_loads
from ledger.tests.factories import customer

DEEP = b"[" * 100_000 + b"]" * 100_000


def test_the_loader_refuses_deep_nesting_as_invalid_json():
    with pytest.raises(ValueError) as refused:
        json_body_loads(DEEP)

    assert isinstance(refused.value, JSONNestedTooDeeply)
    assert json_body_loads(b'{"a": [1, {"b": 2}]}') == {"a": [1, {"b": 2}]}


@pytest.mark.django_db
@pytest.mark.parametrize("authenticated", [False, True])
def test_a_deeply_nested_body_is_answered_without_a_server_error(client, authenticated):
    headers = {"HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex}
    if authenticated:
        token = issue_token(application=mobile_client(), user=customer(), scope="transfers:write")
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"

    response = client.post("/v1/transfers", data=DEEP, content_type="application/json", **headers)

    assert response.status_code == (400 if authenticated else 401)
    assert response["Content-Type"] == "application/problem+json"
