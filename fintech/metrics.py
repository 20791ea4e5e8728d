"""Prometheus metrics: request latency and status codes, dependency health.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR is set and every worker writes its
samples to files there; a scrape aggregates all workers, so any worker can
answer /metrics for the whole process group.
"""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

REQUEST_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from request received to response returned.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RESPONSES = Counter("http_responses_total", "Responses sent, by status code.", ["status"])


class DependencyHealthCollector:
    """Reports `dependency_up{dependency=...}` (1 up, 0 down) at scrape time."""

    def collect(self):
        from fintech.health import check_dependencies

        gauge = GaugeMetricFamily(
            "dependency_up", "Whether a dependency answered its readiness check.", labels=["dependency"]
        )
        for name, result in check_dependencies().items():
            gauge.add_metric([name], 1.0 if result["status"] == "up" else 0.0)
        yield gauge


_scrape_collectors: list = []


def scrape_collector_register(collector) -> None:
    """Add a collector computed at each scrape (an app's, from its AppConfig.ready); twice is a no-op.

    Such collectors read the database rather than process memory, so they are
    right under gunicorn's multiprocess mode too (e.g. pki's seconds to expiry).
    """
    if all(type(existing) is not type(collector) for existing in _scrape_collectors):
        _scrape_collectors.append(collector)


def _registries():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        aggregated = CollectorRegistry()
        multiprocess.MultiProcessCollector(aggregated)
        yield aggregated
    else:
        yield REGISTRY
    health = CollectorRegistry()
    health.register(DependencyHealthCollector())
    for collector in _scrape_collectors:
        health.register(collector)
    yield health


@never_cache
@require_GET
def metrics_view(request):
    if settings.METRICS_TOKEN:
        supplied = request.META.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(supplied.encode(), settings.METRICS_TOKEN.encode()):
            return HttpResponse(status=401, headers={"WWW-Authenticate": "Bearer"})
    body = b"".join(generate_latest(registry) for registry in _registries())
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
