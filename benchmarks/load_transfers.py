"""Load generator: N client threads posting transfers over keep-alive HTTP for a fixed time.

Runs as its own process (python benchmarks/load_transfers.py CONFIG.json), so
the server's CPU time and the client's are separate processes, as in production.
Prints one JSON line: requests, transfers/s, p50/p99 latency, status counts.
"""

from __future__ import annotations

import http.client
import json
import ssl
import sys
import threading
import time
import uuid
from collections import Counter


def worker(config: dict, pair: dict, deadline: float, results: tuple[list, Counter, threading.Lock]):
    latencies, statuses, lock = results
    if config.get("tls_ca"):  # through the TLS terminator (benchmarks/terminator.py): TLS 1.3, kept alive
        context = ssl.create_default_context(cafile=config["tls_ca"])
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        connection = http.client.HTTPSConnection(config["host"], config["port"], timeout=30, context=context)
    else:
        connection = http.client.HTTPConnection(config["host"], config["port"], timeout=30)
    headers = {"Authorization": f"Bearer {pair['token']}", "Content-Type": "application/json"}
    body_template = {"from_account": pair["from"], "to_account": pair["to"], "amount": "0.01", "currency": "EUR"}
    local_latencies, local_statuses = [], Counter()
    while time.monotonic() < deadline:
        # 12 hex characters: never a 13-digit run, so never refused as a card number in free text.
        body = json.dumps({**body_template, "reference": uuid.uuid4().hex[:12]})
        started = time.perf_counter()
        connection.request("POST", "/v1/transfers", body=body, headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
        response = connection.getresponse()
        response.read()
        local_latencies.append(time.perf_counter() - started)
        local_statuses[response.status] += 1
    connection.close()
    with lock:
        latencies.extend(local_latencies)
        statuses.update(local_statuses)


def main() -> None:
    with open(sys.argv[1]) as handle:
        config = json.load(handle)
    concurrency, seconds = config["concurrency"], config["seconds"]
    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=worker,
            args=(config, config["pairs"][i % len(config["pairs"])], deadline, (latencies, statuses, lock)),
        )
        for i in range(concurrency)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    ordered = sorted(latencies)
    ok = statuses.get(201, 0)
    print(
        json.dumps(
            {
                "concurrency": concurrency,
                "requests": len(ordered),
                "transfers_per_second": ok / elapsed,
                "p50_ms": ordered[len(ordered) // 2] * 1000 if ordered else None,
                "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if ordered else None,
                "statuses": dict(statuses),
            }
        )
    )


if __name__ == "__main__":
    main()
