"""Idempotency-Key: one effect per key, under real concurrency, in the effect's own transaction."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.services import customer_create
from accounts.tests.access_matrix import issue_token
from accounts.tests.oauth_helpers import mobile_client
from audit.models import AuditEvent
from conftest import wait_until
from fintech.idempotency import idempotency_key_digest, idempotency_records_purge
from fintech.models import IdempotencyRecord
from fintech.tests import idempotency_views

pytestmark = pytest.mark.urls("fintech.tests.idempotency_views")


@pytest.fixture
def token():
    customer = customer_create(email="idem@example.com", password=None)
    return issue_token(application=mobile_client(), user=customer, scope="transfers:write")


def post(client, token, body, key="key-0001"):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if key is not None:
        headers["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post("/v1/probe", data=json.dumps(body), content_type="application/json", **headers)


def effects() -> int:
    return AuditEvent.objects.filter(event_type="probe.effect").count()


@pytest.mark.django_db
class TestSequential:
    def test_a_missing_key_is_a_400_and_changes_nothing(self, client, token):
        response = post(client, token, {"amount": "1.00"}, key=None)

        assert response.status_code == 400
        assert response.json()["code"] == "idempotency_key_missing"
        assert effects() == 0

    def test_the_same_request_again_replays_the_original_answer(self, client, token):
        first = post(client, token, {"amount": "1.00"})
        second = post(client, token, {"amount": "1.00"})

        assert (first.status_code, second.status_code) == (201, 201)
        assert second.json() == first.json() == {"accepted": "1.00"}
        assert second["Idempotent-Replayed"] == "true"
        assert "Idempotent-Replayed" not in first
        assert effects() == 1

    def test_the_same_key_with_another_body_is_a_422(self, client, token):
        post(client, token, {"amount": "1.00"})

        response = post(client, token, {"amount": "2.00"})

        assert response.status_code == 422
        assert response.json()["code"] == "idempotency_key_reused"
        assert effects() == 1

    def test_a_refusal_is_stored_and_replayed_but_its_effect_is_rolled_back(self, client, token):
        first = post(client, token, {"amount": "1.00", "refuse": True})
        again = post(client, token, {"amount": "1.00", "refuse": True})

        assert first.status_code == again.status_code == 422
        assert again.json()["code"] == "probe_refused"
        assert again["Idempotent-Replayed"] == "true"
        assert effects() == 0
        assert IdempotencyRecord.objects.count() == 1

    def test_a_dependency_that_is_down_is_not_stored_so_a_retry_runs_afresh(self, client, token):
        down = post(client, token, {"amount": "1.00", "dependency_down": True})

        assert down.status_code == 503
        assert down.json()["code"] == "probe_dependency_down"
        assert IdempotencyRecord.objects.count() == 0
        assert effects() == 0
        retried = post(client, token, {"amount": "1.00", "dependency_down": True})
        assert retried.status_code == 503
        assert "Idempotent-Replayed" not in retried

    def test_a_401_is_not_stored_so_the_same_key_works_after_stepping_up(self, client, token):
        idempotency_views.step_up_demanded.set()
        try:
            refused = post(client, token, {"amount": "1.00"})
        finally:
            idempotency_views.step_up_demanded.clear()

        assert refused.status_code == 401
        assert refused.json()["code"] == "probe_step_up_required"
        assert refused["WWW-Authenticate"] == 'Bearer error="insufficient_user_authentication"'
        assert (IdempotencyRecord.objects.count(), effects()) == (0, 0)
        retried = post(client, token, {"amount": "1.00"})
        assert retried.status_code == 201
        assert "Idempotent-Replayed" not in retried
        assert effects() == 1

    def test_the_stored_fingerprint_is_keyed_not_a_plain_hash_of_the_body(self, client, token):
        import hashlib

        post(client, token, {"amount": "1.00"})

        stored = IdempotencyRecord.objects.get().fingerprint
        canonical = json.dumps({"amount": "1.00"}, sort_keys=True, separators=(",", ":"))
        assert stored != hashlib.sha256(f"POST\n/v1/probe\n{canonical}".encode()).hexdigest()
        assert len(stored) == 64

    def test_an_unexpected_error_stores_nothing_so_a_retry_runs_afresh(self, token):
        client = Client(raise_request_exception=False)
        crashed = post(client, token, {"amount": "1.00", "explode": True})

        assert crashed.status_code == 500
        assert IdempotencyRecord.objects.count() == 0
        assert effects() == 0

    def test_keys_belong_to_their_caller(self, client, token):
        other = issue_token(
            application=mobile_client(),
            user=customer_create(email="o@example.com", password=None),
            scope="transfers:write",
        )

        post(client, token, {"amount": "1.00"})
        response = post(client, other, {"amount": "1.00"})

        assert "Idempotent-Replayed" not in response
        assert effects() == 2

    def test_expired_records_are_purged_and_live_ones_kept(self, client, token):
        post(client, token, {"amount": "1.00"}, key="old")
        post(client, token, {"amount": "1.00"}, key="new")
        IdempotencyRecord.objects.filter(key=idempotency_key_digest("old")).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )

        assert idempotency_records_purge() == 1
        assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == [idempotency_key_digest("new")]


@pytest.mark.django_db(transaction=True)
def test_twenty_simultaneous_requests_with_one_key_make_exactly_one_effect(token):
    barrier = threading.Barrier(20)
    statuses: list[tuple[int, str | None]] = []
    calls: list[tuple[str, int]] = []
    lock = threading.Lock()

    def send():
        try:
            barrier.wait()
            response = post(Client(), token, {"amount": "5.00"}, key="race-key")
            with lock:
                statuses.append((response.status_code, response.headers.get("Idempotent-Replayed")))
                calls.append((response["X-Request-ID"], response.status_code))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert effects() == 1
    assert len(statuses) == 20
    created = [s for s in statuses if s == (201, None)]
    assert len(created) == 1
    assert all(s in {(201, None), (201, "true"), (409, None)} for s in statuses)
    # Every call is on record exactly once, whether its row rode in the winner's transaction or came after a 409.
    recorded = AuditEvent.objects.filter(event_type="api.call").values_list("request_id", "payload__status")
    assert sorted(recorded) == sorted(calls)


@pytest.mark.django_db(transaction=True)
def test_a_request_arriving_while_the_first_runs_gets_409(token):
    idempotency_views.hold_open.set()
    idempotency_views.release.clear()
    results: list[int] = []

    def first():
        try:
            results.append(post(Client(), token, {"amount": "1.00"}, key="slow").status_code)
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        wait_until(_first_started, timeout_seconds=10)
        second = post(Client(), token, {"amount": "1.00"}, key="slow")
    finally:
        idempotency_views.hold_open.clear()
        idempotency_views.release.set()
        thread.join(30)

    assert second.status_code == 409
    assert second.json()["code"] == "idempotency_key_in_progress"
    assert results == [201]
    assert effects() == 1


def _first_started() -> bool:
    with connection.cursor() as cursor:
        # This database only: pg_locks is server-wide, and parallel test runs share the server.
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db
class TestTheCallsAuditRow:
    """The `api.call` row of a write goes in with the idempotency record; a rolled-back call is still on record."""

    @staticmethod
    def api_calls(response) -> list[AuditEvent]:
        return list(AuditEvent.objects.filter(event_type="api.call", request_id=response["X-Request-ID"]))

    @pytest.mark.django_db(transaction=True)  # real commits: the middleware's own INSERT would be another transaction
    def test_it_commits_in_the_transaction_of_the_effect(self, client, token):
        response = post(client, token, {"amount": "1.00"})

        (call,) = self.api_calls(response)
        effect = AuditEvent.objects.get(event_type="probe.effect")
        assert call.xact_id == effect.xact_id
        assert (call.outcome, call.payload["status"], call.payload["endpoint"]) == ("success", 201, "/v1/probe")
        assert call.payload["response"] == {"bytes": len(response.content), "fields": ["accepted"]}
        assert call.payload["request"] == {"bytes": len(json.dumps({"amount": "1.00"})), "fields": ["amount"]}

    def test_the_response_is_sized_as_the_renderer_renders_it(self, client, token):
        response = client.post(
            "/v1/probe",
            data=json.dumps({"amount": "1.00"}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
            HTTP_IDEMPOTENCY_KEY="indented",
            HTTP_ACCEPT="application/json; indent=4",
        )

        (call,) = self.api_calls(response)
        assert b"\n    " in response.content
        assert call.payload["response"]["bytes"] == len(response.content)

    def test_a_stored_refusal_is_recorded_once_with_its_status(self, client, token):
        response = post(client, token, {"amount": "1.00", "refuse": True})

        (call,) = self.api_calls(response)
        assert response.status_code == 422
        assert (call.outcome, call.payload["status"]) == ("failure", 422)
        assert call.payload["response"]["bytes"] == len(response.content)

    def test_a_call_whose_transaction_rolls_back_is_recorded_after_it(self, client, token):
        post(client, token, {"amount": "1.00"}, key="reused")
        reused = post(client, token, {"amount": "2.00"}, key="reused")
        crashed = post(Client(raise_request_exception=False), token, {"amount": "1.00", "explode": True}, key="boom")

        assert (reused.status_code, crashed.status_code) == (422, 500)
        for response in (reused, crashed):
            (call,) = self.api_calls(response)
            assert call.payload["status"] == response.status_code
            assert call.payload["response"]["bytes"] == len(response.content)
        assert IdempotencyRecord.objects.filter(key="boom").count() == 0

    def test_a_replay_is_recorded_as_its_own_call(self, client, token):
        first = post(client, token, {"amount": "1.00"})
        replay = post(client, token, {"amount": "1.00"})

        assert replay["Idempotent-Replayed"] == "true"
        assert [len(self.api_calls(first)), len(self.api_calls(replay))] == [1, 1]


@pytest.mark.django_db
def test_keys_are_stored_as_digests_so_no_honest_key_is_refused_and_no_key_is_kept(client, token):
    """Found in review: refusing card-like keys refused about one random UUID in 4,000 (a Luhn-valid
    digit run with a brand prefix). The key is now kept only as a keyed digest."""
    luhn_lookalike = "4111111111111111-" + "a" * 8  # a card number, as a careless client might send
    response = post(client, token, {"amount": "1.00"}, key=luhn_lookalike)
    assert response.status_code == 201
    stored = IdempotencyRecord.objects.get()
    assert stored.key == idempotency_key_digest(luhn_lookalike) and "4111" not in stored.key
    assert post(client, token, {"amount": "1.00"}, key=luhn_lookalike)["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_after_a_secret_rotation_a_retry_is_refused_never_run_twice(client, token, settings):
    first = post(client, token, {"amount": "1.00"}, key="rotated-key")
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 40
    retry = post(client, token, {"amount": "1.00"}, key="rotated-key")
    assert first.status_code == 201
    assert (retry.status_code, retry.json()["code"]) == (422, "idempotency_key_reused")
    assert effects() == 1


@pytest.mark.django_db
def test_a_stored_outcome_rewritten_with_the_database_login_is_refused_not_replayed(client, token):
    """Issue 12: the stored response carries a MAC under a key the database does not hold."""
    first = post(client, token, {"amount": "1.00"}, key="mac-key")
    assert first.status_code == 201 and effects() == 1
    record = IdempotencyRecord.objects.get()
    forged = {**record.response_body, "amount": "1000.00"}
    IdempotencyRecord.objects.filter(pk=record.pk).update(response_body=forged)  # what the runtime role may do

    replay = post(client, token, {"amount": "1.00"}, key="mac-key")

    assert (replay.status_code, replay.json()["code"]) == (409, "idempotency_record_invalid")
    assert "1000.00" not in replay.content.decode() and effects() == 1  # neither the forgery nor a second effect
    IdempotencyRecord.objects.filter(pk=record.pk).update(response_body=record.response_body, response_mac="")
    assert post(client, token, {"amount": "1.00"}, key="mac-key").status_code == 409  # a MAC removed: same
