"""Each partner refusal is recorded under one event type, the one the README names.

A token without a usable key: `auth.invalid_api_key` (with the reason), and no
generic `auth.failed` for the same 401. A key without a token: `auth.failed`,
as any call without a valid bearer token; the key is never looked at.
"""

from __future__ import annotations

import pytest

from accounts.tests.test_api_keys import bearer_token, confidential_client, issue, whoami
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db
SECURITY_TYPES = ("auth.failed", "auth.invalid_api_key", "permission.denied")


def security_events(response) -> list[str]:
    return list(
        AuditEvent.objects.filter(request_id=response["X-Request-ID"], event_type__in=SECURITY_TYPES).values_list(
            "event_type", flat=True
        )
    )


def test_a_token_without_a_key_is_one_invalid_api_key_event():
    partner = confidential_client()

    response = whoami(bearer_token(partner), None)

    assert (response.status_code, response.json()["code"]) == (401, "invalid_api_key")
    assert security_events(response) == ["auth.invalid_api_key"]


def test_a_token_with_another_clients_key_is_one_invalid_api_key_event():
    partner, other = confidential_client("Partner"), confidential_client("Other")
    _key, raw_key = issue(other)

    response = whoami(bearer_token(partner), raw_key)

    assert response.status_code == 401
    assert security_events(response) == ["auth.invalid_api_key"]


def test_a_key_without_a_token_is_one_auth_failed_event():
    _key, raw_key = issue(confidential_client())

    response = whoami(None, raw_key)

    assert response.status_code == 401
    assert security_events(response) == ["auth.failed"]
