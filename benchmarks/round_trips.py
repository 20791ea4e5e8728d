"""SQL round trips of one transfer request, listed: the stable metric behind `make bench`.

Wall-clock figures move with whatever else the machine runs; the number of
statements a request sends to PostgreSQL does not. This seeds the same data
as benchmarks/ledger_http.py, sends a few transfers through the whole Django
stack in-process and prints every statement of the last one (BENCH_VERBOSE=0:
the count only). Asserts nothing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "fintech.settings.test"
os.environ.setdefault("TEST_DATABASE_SUFFIX", "_bench")

import django

django.setup()

from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext


def main() -> None:
    import logging

    from benchmarks.ledger_http import seed, throwaway_databases

    logging.disable(logging.CRITICAL)
    with throwaway_databases():
        pair = seed()[0]
        client = Client()
        body = {"from_account": pair["from"], "to_account": pair["to"], "amount": "0.01", "currency": "EUR"}
        for n in range(3):
            with CaptureQueriesContext(connections["default"]) as queries:
                response = client.post(
                    "/v1/transfers",
                    data=json.dumps({**body, "reference": f"r{n}"}),
                    content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {pair['token']}",
                    HTTP_IDEMPOTENCY_KEY=f"round-trips-{n}",
                )
            if response.status_code != 201:
                raise SystemExit(f"transfer answered {response.status_code}: {response.content[:300]!r}")
        print(f"round trips per transfer request: {len(queries.captured_queries)}")
        if os.environ.get("BENCH_VERBOSE", "1") != "0":
            for number, query in enumerate(queries.captured_queries, 1):
                print(f"{number:>3}. {query['sql'][:220]}")


if __name__ == "__main__":
    main()
