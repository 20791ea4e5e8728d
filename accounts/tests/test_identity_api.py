"""/v1/me/identity over HTTP, with the national ID going to a real vault process (root conftest `vault_live`)."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from django.test import Client

from accounts.models import CustomerProfile
from accounts.services import customer_create
from accounts.tests.access_matrix import issue_token
from accounts.tests.oauth_helpers import mobile_client
from audit.models import AuditEvent
from conftest import database_dump
from fintech.models import IdempotencyRecord
from tokenvault.models import VaultRecord

pytestmark = pytest.mark.usefixtures("field_keys")  # accounts/tests/conftest.py
LIVE = pytest.mark.django_db(transaction=True, databases=["default", "vault"])
NATIONAL_ID = "QQ 12 34 56 C"
NATIONAL_ID_COMPACT = "QQ123456C"
BODY = {
    "full_name": "Ada King Lovelace",
    "date_of_birth": "1985-12-10",
    "phone": "+44 20 7946 0461",
    "address": {"line1": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"},
    "national_id": NATIONAL_ID,
}
MASKED = {
    "captured": True,
    "full_name": "A*** K*** L***",
    "birth_year": 1985,
    "phone": "+44•••••••461",
    "address": {"country": "GB", "postal_code": "SW•••"},
    "national_id_on_file": True,
}


def new_customer(scope: str = "profile:read profile:write"):
    user = customer_create(email=f"identity.{uuid.uuid4().hex[:8]}@example.com", password=None)
    return user, issue_token(application=mobile_client(), user=user, scope=scope)


def put(token: str, body: dict | None = None, key: str | None = None):
    return Client().put(
        "/v1/me/identity",
        data=json.dumps(BODY if body is None else body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex,
    )


def get(token: str):
    return Client().get("/v1/me/identity", HTTP_AUTHORIZATION=f"Bearer {token}")


def without_time(body: dict) -> dict:
    return {key: value for key, value in body.items() if key != "captured_at"}


@LIVE
def test_capture_vaults_the_national_id_and_answers_only_masked_fragments(vault_live, caplog):
    caplog.set_level(logging.DEBUG)
    user, token = new_customer()

    response = put(token, key="identity-1")

    assert response.status_code == 200, response.content
    assert without_time(response.json()) == MASKED
    profile = CustomerProfile.objects.get(user=user)
    record = VaultRecord.objects.using("vault").get(token=profile.national_id_token)
    assert (record.token_type, record.convergent) == ("national_id", True)
    text = response.content.decode() + caplog.text + vault_live.log_text()
    for clear in [
        NATIONAL_ID,
        NATIONAL_ID_COMPACT,
        "123456",
        "Lovelace",
        "20 7946 0461",
        "2079460461",
        "1985-12-10",
        "James",
    ]:
        assert clear not in text
    assert without_time(get(token).json()) == MASKED
    assert AuditEvent.objects.filter(event_type="pii.read", object_id=str(user.public_id)).count() == 2
    assert AuditEvent.objects.filter(event_type="identity.captured", object_id=str(user.public_id)).count() == 1


@LIVE
def test_a_retry_replays_and_a_second_capture_is_refused(vault_live):
    _user, token = new_customer()
    first = put(token, key="identity-once")

    replay = put(token, key="identity-once")
    again = put(token, body={**BODY, "full_name": "Someone Else"}, key="identity-twice")

    assert (replay.status_code, replay["Idempotent-Replayed"], replay.json()) == (200, "true", first.json())
    assert again.status_code == 409
    assert again.json()["code"] == "identity_already_captured"
    assert without_time(get(token).json())["full_name"] == "A*** K*** L***"


@LIVE
def test_the_same_national_id_on_another_customer_is_refused_without_saying_whose(vault_live):
    first_user, first_token = new_customer()
    second_user, second_token = new_customer()
    assert put(first_token).status_code == 200

    refused = put(second_token, body={**BODY, "phone": "+442079460462", "national_id": "qq-123456-c"})

    assert refused.status_code == 409
    problem = refused.json()
    assert problem["code"] == "identity_national_id_in_use"
    assert str(first_user.public_id) not in refused.content.decode()
    profile = CustomerProfile.objects.get(user=second_user)
    assert (profile.identity_captured_at, profile.national_id_token, profile.full_name) == (None, None, None)
    assert get(second_token).json() == {"captured": False}


@LIVE
@pytest.mark.parametrize(
    "same_phone", ["0044 20 7946 0461", "+44 020 7946 0461", "+4402079460461", "+44 (0)20-7946-0461"]
)
def test_the_same_phone_on_another_customer_is_refused(vault_live, same_phone):
    """However the line is typed (a kept trunk 0 too), it is one blind index, so the second customer is a 409."""
    _first_user, first_token = new_customer()
    _second_user, second_token = new_customer()
    assert put(first_token).status_code == 200

    refused = put(second_token, body={**BODY, "phone": same_phone, "national_id": "ZZ999999Z"})

    assert (refused.status_code, refused.json()["code"]) == (409, "identity_phone_in_use")


@pytest.mark.django_db(databases=["default", "vault"])
def test_with_the_vault_down_it_is_503_and_nothing_is_written(vault_down):
    user, token = new_customer()

    response = put(token, key="identity-down")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "vault_unavailable"
    assert CustomerProfile.objects.get(user=user).identity_captured_at is None
    assert not IdempotencyRecord.objects.exists()
    assert not AuditEvent.objects.filter(event_type="identity.captured").exists()


@pytest.mark.django_db(databases=["default", "vault"])
@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"date_of_birth": "2015-01-01"}, "identity_invalid"),  # a minor
        ({"phone": "020 7946 0461"}, "identity_invalid"),  # not international
        ({"phone": "+44 1234"}, "identity_invalid"),  # E.164's shape, not a UK number
        ({"national_id": "1"}, "vault_invalid_national_id"),
        ({"address": {"line1": "x", "city": "y", "postal_code": "SW1", "country": "GBR"}}, "validation_error"),
        ({"full_name": None}, "validation_error"),
    ],
)
def test_invalid_input_is_refused_before_the_vault_is_called(vault_down, change, code):
    """The vault is down: reaching it would be a 503, so a 400 proves validation came first."""
    user, token = new_customer()

    response = put(token, body={**BODY, **change})

    assert (response.status_code, response.json()["code"]) == (400, code)
    assert NATIONAL_ID_COMPACT not in response.content.decode()
    assert CustomerProfile.objects.get(user=user).identity_captured_at is None


@pytest.mark.django_db(databases=["default", "vault"])
def test_reading_needs_profile_read_and_capturing_needs_profile_write(vault_down):
    _user, read_only = new_customer(scope="profile:read")

    assert get(read_only).json() == {"captured": False}
    assert put(read_only).status_code == 403


@LIVE
def test_neither_database_dump_holds_the_national_id_or_any_clear_identity_field(vault_live):
    user, token = new_customer()
    assert put(token).status_code == 200
    national_id_token = CustomerProfile.objects.get(user=user).national_id_token

    main_dump, vault_dump = database_dump("default"), database_dump("vault")

    assert national_id_token in main_dump and national_id_token in vault_dump  # the right databases were dumped
    for clear in [NATIONAL_ID, NATIONAL_ID_COMPACT, "Ada King Lovelace", "+442079460461", "1985-12-10", "SW1Y 4JH"]:
        assert clear not in main_dump
        assert clear.encode().hex() not in main_dump  # bytea columns are dumped as hex
    for spelling in [NATIONAL_ID, NATIONAL_ID_COMPACT]:
        assert spelling not in vault_dump
        assert spelling.encode().hex() not in vault_dump
