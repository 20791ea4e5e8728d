"""A replayed identity capture answers from the idempotency record and never asks the vault again.

The national ID goes to the vault only when the capture actually runs: a retry
with the same Idempotency-Key gets the stored answer (ADR 0006), even while the
vault is down, and the national ID is not sent anywhere a second time.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client

from accounts.services import customer_create
from accounts.tests.access_matrix import issue_token
from accounts.tests.oauth_helpers import mobile_client
from conftest import free_port

LIVE = pytest.mark.django_db(transaction=True, databases=["default", "vault"])
BODY = {
    "full_name": "Grace Brewster Hopper",
    "date_of_birth": "1986-12-09",
    "phone": "+442079460733",
    "address": {"line1": "1 Navy Way", "city": "Arlington", "postal_code": "VA22", "country": "US"},
    "national_id": "RP445566T",
}


@pytest.fixture(autouse=True)
def field_keys(tmp_path, settings):
    settings.FIELD_KEK_DIR = str(tmp_path / "field-kek")
    settings.FIELD_KEK_GENERATE = True


def put(body: dict, key: str):
    user = customer_create(email=f"replay.{uuid.uuid4().hex[:8]}@example.com", password=None)
    token = issue_token(application=mobile_client(), user=user, scope="profile:read profile:write")
    return token, _put(token, body, key)


def _put(token: str, body: dict, key: str):
    return Client().put(
        "/v1/me/identity",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_IDEMPOTENCY_KEY=key,
    )


@LIVE
def test_a_stored_refusal_is_replayed_while_the_vault_is_down(vault_live, settings):
    _first_token, first = put(BODY, key="replay-first")
    assert first.status_code == 200, first.content
    token, refused = put({**BODY, "national_id": "RP445567T"}, key="replay-second")  # the phone is taken
    assert (refused.status_code, refused.json()["code"]) == (409, "identity_phone_in_use")

    settings.VAULT_URL = f"http://127.0.0.1:{free_port()}"  # the vault goes down
    replay = _put(token, {**BODY, "national_id": "RP445567T"}, key="replay-second")

    assert replay.status_code == 409, replay.content
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == refused.json()
