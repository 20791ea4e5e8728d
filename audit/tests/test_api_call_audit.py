"""Every /v1 call is on record, with its metadata and without its secrets."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.db import connection

from audit.models import AuditEvent
from fintech.structured_logging import JsonFormatter, RequestContextFilter, ScrubbingFilter

pytestmark = pytest.mark.django_db

CARD = "4111111111111111"
CARD_SPACED = "4111 1111 1111 1111"
EMAIL = "victim.person@example.org"
PASSWORD = "Tr0ub4dor&3-horse-staple"
SECRETS = (CARD, CARD_SPACED, "4111-1111-1111-1111", EMAIL, PASSWORD)


@pytest.fixture
def log_output():
    """The project's real log pipeline (filters + JSON formatter) on the root logger, into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestContextFilter())
    handler.addFilter(ScrubbingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.DEBUG)
    yield buffer
    root.removeHandler(handler)
    root.setLevel(previous_level)


def every_audit_value() -> str:
    """All columns of all audit rows, as the database holds them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(e)::text FROM audit_auditevent e")
        return "\n".join(row[0] for row in cursor.fetchall())


def test_an_api_call_is_recorded_with_the_seed_fields(client):
    response = client.post(
        "/v1/no-such-endpoint",
        data=json.dumps({"amount": "12.00"}),
        content_type="application/json",
        HTTP_USER_AGENT="partner-sdk/2.1",
    )

    event = AuditEvent.objects.get(event_type="api.call")
    assert event.request_id == response["X-Request-ID"]
    assert event.outcome == "failure"
    assert event.source_ip == "127.0.0.1"
    assert event.user_agent == "partner-sdk/2.1"
    assert event.payload["method"] == "POST"
    assert event.payload["status"] == 404
    assert event.payload["request"] == {"bytes": 19, "fields": ["amount"]}
    assert event.payload["response"]["bytes"] == len(response.content)
    assert event.payload["duration_ms"] >= 0
    assert event.payload["risk_score"] == 20  # 4xx + write method
    assert event.payload["compliance_flags"] == []


def test_bodies_with_card_numbers_emails_and_passwords_leave_no_trace(client, log_output):
    bodies = [
        {"number": CARD, "holder_email": EMAIL, "password": PASSWORD},
        {"note": f"card {CARD_SPACED} for {EMAIL}", "secret": PASSWORD},
        {"nested": [{"pan": "4111-1111-1111-1111"}], "comment": f"password={PASSWORD}"},
    ]
    for body in bodies:
        client.post(
            "/v1/cards", data=json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {PASSWORD}"
        )
        client.post("/v1/cards", data=b"{broken json " + CARD.encode(), content_type="application/json")
    client.get(f"/v1/customers?email={EMAIL}&card={CARD}")
    logging.getLogger("fintech.test").warning("login failed for %s with card %s", EMAIL, CARD)

    stored = every_audit_value()
    logged = log_output.getvalue()
    assert AuditEvent.objects.filter(event_type="api.call").count() == 7
    assert logged.count("\n") >= 7
    for secret in SECRETS:
        assert secret not in stored
        assert secret not in logged
    assert "number" in stored  # field names are kept, values are not


def test_django_request_log_lines_carry_the_request_id_too(client, log_output):
    response = client.get("/v1/no-such-endpoint")

    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    not_found = [line for line in lines if line["logger"] == "django.request"]
    assert not_found
    assert {line["request_id"] for line in lines} == {response["X-Request-ID"]}
