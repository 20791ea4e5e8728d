"""What the audit trail costs: one insert per event, per API call, and sealing throughput.

Runs against a throw-away PostgreSQL database (created and dropped here, like a
test database), never the dev trail, since audit rows can never be deleted.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ["DJANGO_SETTINGS_MODULE"] = "fintech.settings.test"
os.environ.setdefault("TEST_DATABASE_SUFFIX", "_bench")

import django

django.setup()

from django.conf import settings
from django.db import connections
from django.test import Client, override_settings
from django.test.utils import setup_databases, setup_test_environment, teardown_databases

ITERATIONS = int(os.environ.get("BENCH_ITERATIONS", "2000"))


def percentiles(samples_seconds: list[float]) -> str:
    ordered = sorted(samples_seconds)
    p50 = ordered[len(ordered) // 2] * 1e6
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6
    return f"mean {statistics.fmean(ordered) * 1e6:8.1f} µs   p50 {p50:8.1f} µs   p99 {p99:8.1f} µs"


def timed(action, iterations: int) -> list[float]:
    samples = []
    for n in range(iterations):
        started = time.perf_counter()
        action(n)
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    from audit.services.events import Actor, audit_event_record
    from audit.services.sealing import audit_events_seal

    actor = Actor(user="00000000-0000-0000-0000-000000000001")
    payload = {"method": "POST", "endpoint": "/v1/transfers", "status": 201, "risk_score": 10}

    def insert(n: int) -> None:
        audit_event_record(event_type="api.call", outcome="success", actor=actor, payload={**payload, "n": n})

    print(f"audit trail cost, {ITERATIONS} iterations each (in-process, PostgreSQL on this machine)")
    print(f"  audit_event_record (one INSERT)           {percentiles(timed(insert, ITERATIONS))}")

    client = Client()
    with_audit = timed(lambda n: client.get("/v1/no-such-endpoint"), ITERATIONS)
    without = [m for m in settings.MIDDLEWARE if m != "audit.middleware.ApiCallAuditMiddleware"]
    with override_settings(MIDDLEWARE=without):
        client = Client()
        without_audit = timed(lambda n: client.get("/v1/no-such-endpoint"), ITERATIONS)
    print(f"  /v1 request, api.call recorded            {percentiles(with_audit)}")
    print(f"  /v1 request, audit middleware removed     {percentiles(without_audit)}")
    overhead = statistics.median(with_audit) - statistics.median(without_audit)
    print(f"  => audit adds {overhead * 1e6:.1f} µs per API call at the median")

    from audit.models import AuditEvent

    recorded = AuditEvent.objects.filter(event_type="api.call").count()
    if recorded < 2 * ITERATIONS:
        raise SystemExit(f"expected {2 * ITERATIONS} api.call events, found {recorded}: the comparison is invalid")
    started = time.perf_counter()
    sealed = 0
    while result := audit_events_seal(batch_size=1000).events:
        sealed += result
    elapsed = time.perf_counter() - started
    print(f"  sealing: {sealed} events in {elapsed:.2f} s = {sealed / elapsed:,.0f} events/s (off the request path)")


if __name__ == "__main__":
    import logging

    logging.disable(logging.CRITICAL)  # the request loop would print one access line per call
    setup_test_environment()
    config = setup_databases(verbosity=0, interactive=False, aliases={"default", "vault"})
    try:
        main()
    finally:
        connections.close_all()
        teardown_databases(config, verbosity=0)
