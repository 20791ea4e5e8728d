"""Liveness, readiness and metrics against real PostgreSQL and a Redis we can stop."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(databases=["default", "vault"])


def test_healthz_answers_without_touching_dependencies(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


def test_readyz_is_ready_when_every_dependency_answers(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["down"] == []
    assert set(body["checks"]) == {"database_default", "database_vault", "redis", "celery_broker"}


def test_readyz_names_redis_when_it_stops_and_recovers_without_restart(client, settings, redis_server):
    settings.REDIS_URL = redis_server.url
    settings.CELERY_BROKER_URL = redis_server.url
    assert client.get("/readyz").status_code == 200

    redis_server.stop()
    down = client.get("/readyz")

    assert down.status_code == 503
    assert down.json()["status"] == "unavailable"
    assert down.json()["down"] == ["celery_broker", "redis"]
    assert down.json()["checks"]["database_default"] == {"status": "up"}

    redis_server.start()
    recovered = client.get("/readyz")

    assert recovered.status_code == 200
    assert recovered.json()["down"] == []


def test_readyz_names_a_database_that_does_not_answer(client, settings):
    from django.db import connections

    vault = connections["vault"]
    original = vault.settings_dict["PORT"]
    vault.close()
    vault.settings_dict["PORT"] = "1"
    try:
        response = client.get("/readyz")
    finally:
        vault.settings_dict["PORT"] = original

    assert response.status_code == 503
    assert response.json()["down"] == ["database_vault"]


def test_metrics_expose_latency_status_and_dependency_health(client):
    client.get("/healthz")

    response = client.get("/metrics")

    assert response.status_code == 200
    text = response.content.decode()
    assert 'http_request_duration_seconds_bucket{le="0.005",method="GET",route="healthz",status="200"}' in text
    assert 'http_responses_total{status="200"}' in text
    assert 'dependency_up{dependency="redis"} 1.0' in text
    assert 'dependency_up{dependency="database_default"} 1.0' in text


def test_metrics_require_the_token_when_one_is_configured(client, settings):
    settings.METRICS_TOKEN = "scrape-secret-for-test"

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-for-test").status_code == 200
