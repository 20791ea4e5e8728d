"""The API role's vault client against the vault role as a real gunicorn process (ADR 0012)."""

from __future__ import annotations

import http.server
import logging
import threading

import pytest
import requests

from audit.models import AuditEvent
from audit.services.events import Actor
from fintech.request_context import bind_request_id, reset_request_id
from tokenvault.client import TokenizedValue, VaultClient, vault_client
from tokenvault.exceptions import (
    DetokenizeForbidden,
    InvalidCardNumber,
    InvalidPurpose,
    TokenNotFound,
    TokenShredded,
    VaultUnavailable,
)
from tokenvault.models import VaultRecord
from tokenvault.tests.conftest import VISA

LIVE = pytest.mark.django_db(transaction=True, databases=["default", "vault"])
ACTOR = Actor(user="usr_client_test", client="client_test")
CARD_TYPES = frozenset({"card"})


def events_for(token: str) -> list[tuple[str, str, str]]:
    rows = AuditEvent.objects.filter(object_id=token).order_by("id")
    return [(e.event_type, e.outcome, e.purpose) for e in rows]


@LIVE
def test_round_trip_tokenize_detokenize_shred_through_the_vault_process(vault_live):
    client = vault_client()

    vaulted = client.tokenize(
        token_type="card", value="4111 1111 1111 1111", actor=ACTOR, metadata={"exp_month": 12, "exp_year": 2030}
    )
    values = client.detokenize(
        tokens=[vaulted.token], actor=ACTOR, purpose="payment_processing", permitted_token_types=CARD_TYPES
    )
    client.shred(token=vaulted.token, actor=ACTOR)
    client.shred(token=vaulted.token, actor=ACTOR)  # idempotent

    assert vaulted == TokenizedValue(
        token=vaulted.token, token_type="card", created=True, last4="1111", brand="visa", exp_month=12, exp_year=2030
    )
    assert vaulted.token.startswith("tok_card_")
    assert values == {vaulted.token: VISA}
    with pytest.raises(TokenShredded):
        client.detokenize(
            tokens=[vaulted.token], actor=ACTOR, purpose="payment_processing", permitted_token_types=CARD_TYPES
        )
    assert events_for(vaulted.token) == [
        ("vault.tokenized", "success", ""),
        ("pii.read", "success", "payment_processing"),
        ("vault.shredded", "success", ""),
    ]
    read = AuditEvent.objects.get(object_id=vaulted.token, event_type="pii.read")
    assert (read.actor_user, read.actor_client) == ("usr_client_test", "client_test")
    assert VaultRecord.objects.using("vault").get(token=vaulted.token).shredded_at is not None
    log = vault_live.log_text()
    assert VISA not in log and "4111 1111 1111 1111" not in log


@LIVE
def test_convergent_tokenize_returns_the_same_token_and_says_it_was_not_created(vault_live):
    client = vault_client()

    first = client.tokenize(token_type="national_id", value="ZX 998877 Q", actor=ACTOR, convergent=True)
    second = client.tokenize(token_type="national_id", value="zx-998877-q", actor=ACTOR, convergent=True)

    assert first.created is True
    assert (second.token, second.created) == (first.token, False)
    assert (second.last4, second.brand, second.exp_month) == ("", "", None)


@LIVE
def test_a_domain_refusal_comes_back_as_the_same_class_and_nothing_is_vaulted(vault_live):
    last_event = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    with pytest.raises(InvalidCardNumber) as refused:
        vault_client().tokenize(token_type="card", value="4111 1111 1111 1112", actor=ACTOR)

    assert (refused.value.status, refused.value.code) == (400, "vault_invalid_card_number")
    assert not AuditEvent.objects.filter(id__gt=last_event, event_type="vault.tokenized").exists()


@LIVE
def test_detokenize_enforces_the_permitted_types_per_token_and_audits_each_denial(vault_live):
    client = vault_client()
    card = client.tokenize(token_type="card", value=VISA, actor=ACTOR)
    national_id = client.tokenize(token_type="national_id", value="AB123456C", actor=ACTOR)

    with pytest.raises(DetokenizeForbidden) as refused:
        client.detokenize(
            tokens=[card.token, national_id.token],
            actor=ACTOR,
            purpose="kyc_review",
            permitted_token_types=frozenset({"national_id"}),
        )

    assert refused.value.extra == {"tokens": [card.token], "token_types": ["card"]}
    assert events_for(card.token)[-1] == ("vault.detokenize", "denied", "kyc_review")
    assert not AuditEvent.objects.filter(object_id=national_id.token, event_type="pii.read").exists()


@LIVE
def test_unknown_tokens_and_purposes_are_refused_with_their_own_codes(vault_live):
    client = vault_client()

    with pytest.raises(TokenNotFound) as unknown:
        client.detokenize(
            tokens=["tok_card_aaaaaaaaaaaaaaaaaaaaaaaaaa"],
            actor=ACTOR,
            purpose="kyc_review",
            permitted_token_types=CARD_TYPES,
        )
    with pytest.raises(InvalidPurpose):
        client.detokenize(tokens=["tok_card_x"], actor=ACTOR, purpose="curiosity", permitted_token_types=CARD_TYPES)

    assert unknown.value.extra == {"tokens": ["tok_card_aaaaaaaaaaaaaaaaaaaaaaaaaa"]}


@LIVE
def test_the_vault_adopts_the_callers_request_id_for_its_audit_rows(vault_live):
    binding = bind_request_id("api-request-0123456789")
    try:
        vaulted = vault_client().tokenize(token_type="card", value=VISA, actor=ACTOR)
    finally:
        reset_request_id(binding)

    assert AuditEvent.objects.get(object_id=vaulted.token).request_id == "api-request-0123456789"


@LIVE
def test_missing_or_wrong_service_credential_is_refused_by_the_vault(vault_live):
    url = f"{vault_live.url}/internal/v1/tokenize"
    body = {"actor": {"user": "u"}, "token_type": "card", "value": VISA}

    missing = requests.post(url, json=body, timeout=5)
    wrong = requests.post(url, json=body, headers={"Authorization": "Bearer " + "w" * 64}, timeout=5)

    assert (missing.status_code, missing.json()["code"]) == (401, "vault_service_credential_missing")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "vault_service_credential_invalid")
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="tokenvault"'


@LIVE
def test_a_client_with_the_wrong_credential_reports_the_vault_unavailable_not_the_users_fault(vault_live, settings):
    settings.VAULT_SERVICE_TOKEN = "w" * 64

    with pytest.raises(VaultUnavailable) as unavailable:
        vault_client().tokenize(token_type="card", value=VISA, actor=ACTOR)

    assert (unavailable.value.status, unavailable.value.code) == (503, "vault_unavailable")


@LIVE
@pytest.mark.parametrize(
    "path", ["/v1/accounts", "/v1/me", "/v1/schema", "/admin/", "/o/token/", "/metrics", "/accounts/login/", "/"]
)
def test_the_vault_role_serves_nothing_but_its_internal_api(vault_live, path):
    response = requests.get(f"{vault_live.url}{path}", timeout=5, allow_redirects=False)

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@LIVE
def test_the_vault_role_is_ready_with_its_two_databases_only(vault_live):
    body = requests.get(f"{vault_live.url}/readyz", timeout=5).json()

    assert body == {
        "status": "ready",
        "down": [],
        "checks": {"database_default": {"status": "up"}, "database_vault": {"status": "up"}},
    }


# --- failure behaviour, no vault needed --------------------------------------------------


@pytest.mark.django_db
def test_vault_down_is_vault_unavailable_and_nothing_is_written(vault_down, caplog):
    last_event = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    with caplog.at_level(logging.WARNING, logger="tokenvault.client"), pytest.raises(VaultUnavailable) as down:
        vault_client().tokenize(token_type="card", value=VISA, actor=ACTOR)

    assert down.value.status == 503
    assert down.value.headers == {"Retry-After": "1"}
    assert not AuditEvent.objects.filter(id__gt=last_event).exists()
    assert VISA not in caplog.text


class _FailingVault(http.server.BaseHTTPRequestHandler):
    """A real HTTP server answering every call with 502 (a proxy in front of a dead vault)."""

    hits: list[str] = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).hits.append(self.path)
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>bad gateway</html>")

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def failing_vault():
    _FailingVault.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FailingVault)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = VaultClient(
        base_url=f"http://127.0.0.1:{server.server_address[1]}",
        service_token="t" * 64,
        connect_timeout_seconds=1,
        read_timeout_seconds=2,
        max_attempts=3,
    )
    yield client, _FailingVault.hits
    server.shutdown()
    server.server_close()


def test_only_idempotent_calls_are_retried(failing_vault):
    client, hits = failing_vault

    for call in (
        lambda: client.tokenize(token_type="card", value=VISA, actor=ACTOR),
        lambda: client.tokenize(token_type="card", value=VISA, actor=ACTOR, convergent=True),
        lambda: client.detokenize(tokens=["t"], actor=ACTOR, purpose="kyc_review", permitted_token_types=CARD_TYPES),
        lambda: client.shred(token="t", actor=ACTOR),
    ):
        with pytest.raises(VaultUnavailable):
            call()

    assert hits == [
        "/internal/v1/tokenize",
        *["/internal/v1/tokenize"] * 3,
        *["/internal/v1/detokenize"] * 3,
        *["/internal/v1/shred"] * 3,
    ]
