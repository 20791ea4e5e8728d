"""What the request limiter costs (issue 13; goal: at most 0.5 ms p50 added per request). Asserts nothing.

1. `buckets_take` alone: one Redis round trip (EVALSHA) for 1 and for 3 buckets, the script's cost.
2. A whole /v1 read through the Django stack in-process (test client, real PostgreSQL and Redis, the
   bearer token looked up as in production), with the limiter and with it removed from MIDDLEWARE,
   interleaved so both see the same machine: the difference is what a request pays.

    .venv/bin/python benchmarks/rate_limiter.py        # ~20 s
    BENCH_REQUESTS=500 .venv/bin/python benchmarks/rate_limiter.py
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "fintech.settings.test"
os.environ.setdefault("TEST_DATABASE_SUFFIX", "_rlbench")
# The limiter runs with its real cost; the read policies get room for thousands of requests in seconds.
os.environ["RATE_LIMIT_POLICIES_JSON"] = json.dumps(
    {
        name: {"rate": "600000/1m", "burst": 100000, "tiers": {}}
        for name in ("api_read.user", "api_read.client", "api.address")
    }
)

import django

django.setup()

from django.conf import settings
from django.test import Client, override_settings

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))
LIMITER = "fintech.middleware.rate_limit.RateLimitMiddleware"


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return f"p50 {statistics.median(ordered) * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms"


def buckets_alone() -> None:
    from fintech.token_buckets import Bucket, buckets_take

    prefix = f"{settings.REDIS_KEY_PREFIX}:rl:bench:{uuid.uuid4().hex}"
    for count in (1, 3):
        buckets = [Bucket(key=f"{prefix}:{n}", limit=10**6, period_seconds=60, burst=10**6) for n in range(count)]
        buckets_take(buckets)  # the script loaded once (EVALSHA from here on)
        samples = []
        for _ in range(REQUESTS):
            started = time.perf_counter()
            buckets_take(buckets)
            samples.append(time.perf_counter() - started)
        print(f"  buckets_take, {count} bucket(s), one round trip: {_ms(samples)}")


def whole_request() -> None:
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    from accounts.tests.access_matrix import issue_token
    from accounts.tests.oauth_helpers import mobile_client
    from ledger.tests.factories import account, customer

    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False, keepdb=False)
    try:
        user = customer()
        account(owner=user)
        token = issue_token(application=mobile_client(), user=user, scope="accounts:read")
        # A test client loads the middleware on its first request and keeps it: one client per setting.
        clients = {"with": Client()}
        with override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m != LIMITER]):
            clients["without"] = Client()
            clients["without"].get("/v1/accounts", HTTP_AUTHORIZATION=f"Bearer {token}")
        timings: dict[str, list[float]] = {"with": [], "without": []}
        for n in range(REQUESTS * 2):
            label = "with" if n % 2 else "without"
            started = time.perf_counter()
            response = clients[label].get("/v1/accounts", HTTP_AUTHORIZATION=f"Bearer {token}")
            timings[label].append(time.perf_counter() - started)
            if response.status_code != 200:
                raise SystemExit(f"/v1/accounts answered {response.status_code}")
        checks = {label: "RateLimit" in c.get("/v1/accounts", HTTP_AUTHORIZATION=f"Bearer {token}") for label, c in
                  clients.items()}  # fmt: skip
        if checks != {"with": True, "without": False}:
            raise SystemExit(f"the two clients do not differ by the limiter alone: {checks}")
        added = statistics.median(timings["with"]) - statistics.median(timings["without"])
        print(f"  GET /v1/accounts with the limiter:    {_ms(timings['with'])}")
        print(f"  GET /v1/accounts without the limiter: {_ms(timings['without'])}")
        print(f"  added by the limiter, p50: {added * 1000:.3f} ms (goal: at most 0.5 ms)")
    finally:
        teardown_databases(databases, verbosity=0)


def main() -> None:
    import logging

    logging.disable(logging.CRITICAL)
    print(f"request limiter ({REQUESTS} samples each; Redis at {settings.REDIS_URL})")
    buckets_alone()
    whole_request()


if __name__ == "__main__":
    main()
