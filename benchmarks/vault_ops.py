"""`make bench`, token vault part: tokenize/detokenize per second, from AES-GCM alone up to the vault's HTTP API.

Four layers, each adding what the next one pays for:

1. AES-256-GCM alone (one core): the ceiling. Then one envelope (fresh data
   key, value sealed, data key wrapped by the KEK of a LocalFileKeyProvider):
   what one record costs in crypto.
2. The vault's services in-process (`vault_tokenize`, `vault_detokenize_many`):
   crypto + blind index + the vault row + the audit row, no HTTP.
3. The vault role's internal API: gunicorn with `fintech.settings.vault`
   (FINTECH_ENV=test) started by the root conftest's `VaultServer`, on
   throw-away databases (suffix `_vbench`), connected as the runtime role, and
   driven by the real `VaultClient` from a separate process (this file with
   `--load`) at a few concurrencies.
4. Where the time goes: cProfile of in-process tokenizes and HTTP/in-process.

The bulk-detokenize rate limit (VAULT_DETOKENIZE_RATE, tokenvault/quota.py) is
the API role's (`/v1/vault/detokenize`, admin): the internal API has no
throttle and no quota, only its hard batch ceiling (1000), so nothing is
raised for the bench. Every released value is still one `pii.read` audit row.
Prints figures; asserts nothing. BENCH_SECONDS (default 5) per timed run.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import re
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "fintech.settings.test"
os.environ.setdefault("TEST_DATABASE_SUFFIX", "_vbench")  # not the ledger bench's `_bench`: both may run at once

import django

django.setup()

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import connections

from audit.services.events import Actor
from tokenvault.models import VaultRecord

SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
CONCURRENCIES = [int(c) for c in os.environ.get("BENCH_VAULT_CONCURRENCY", "1,8,32").split(",")]
WORKERS = int(os.environ.get("BENCH_VAULT_WORKERS", "2"))
THREADS = int(os.environ.get("BENCH_VAULT_THREADS", "8"))
BIG_BATCH = 100
PROFILED = 200
ACTOR = Actor.system("bench")
PURPOSE = "fraud_investigation"
CARD = VaultRecord.TokenType.CARD
CREDENTIAL_VARIABLE = "VAULT_BENCH_SERVICE_CREDENTIAL"  # the load process gets it in its environment


def card_number() -> str:
    """A random Luhn-valid 16-digit Visa number (test data; never a real card)."""
    from tokenvault.tokens import luhn_checksum

    body = f"4{secrets.randbelow(10**14):014d}"  # one call: the bench's own cost stays out of the figures
    return body + str((10 - luhn_checksum(body + "0")) % 10)


def summary(latencies: list[float], elapsed_seconds: float, values_per_call: int = 1) -> dict:
    ordered = sorted(latencies)
    count = len(ordered)
    return {
        "calls": count,
        "calls_per_second": count / elapsed_seconds,
        "values_per_second": count * values_per_call / elapsed_seconds,
        "p50_ms": ordered[count // 2] * 1000 if count else 0.0,
        "p99_ms": ordered[min(count - 1, int(count * 0.99))] * 1000 if count else 0.0,
    }


def timed_loop(call, seconds: float, values_per_call: int = 1) -> dict:
    """Call `call()` back to back for `seconds`; rate and latency percentiles."""
    latencies = []
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        before = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - before)
    return summary(latencies, time.perf_counter() - started, values_per_call)


def ops_per_second(call, seconds: float = 1.0, chunk: int = 1000) -> float:
    """Rate of a microsecond-scale call, timed in chunks so the clock is not what is measured."""
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(chunk):
            call()
        done += chunk
    return done / (time.perf_counter() - started)


# --- 1. crypto alone ----------------------------------------------------------------------


def bench_crypto(kek_dir: Path) -> dict[str, float]:
    """Microseconds per operation, by name."""
    from tokenvault.crypto import envelope_open, envelope_seal, record_aad
    from tokenvault.keys import LocalFileKeyProvider
    from tokenvault.tokens import token_random

    sample = token_random(CARD)
    value, aad = card_number().encode(), f"tokenvault:card:{sample}:pan".encode()
    cipher, nonce = AESGCM(AESGCM.generate_key(bit_length=256)), os.urandom(12)
    sealed = cipher.encrypt(nonce, value, aad)
    # A KEK ring of its own: the same code path as the vault's, none of its keys.
    provider = LocalFileKeyProvider(kek_dir, generate=True)
    record = record_aad(token_type=CARD, token=sample, field="pan")
    envelope = envelope_seal(plaintext=value, aad=record, provider=provider)
    print("\n1. AES-256-GCM alone, 16-byte value, one core (the ceiling)")
    rows = [
        ("AESGCM.encrypt", lambda: cipher.encrypt(nonce, value, aad)),
        ("AESGCM.decrypt", lambda: cipher.decrypt(nonce, sealed, aad)),
        (
            "envelope_seal (data key, seal, wrap)",
            lambda: envelope_seal(plaintext=value, aad=record, provider=provider),
        ),
        ("envelope_open (unwrap + open)", lambda: envelope_open(blob=envelope, aad=record, provider=provider)),
    ]
    micros = {}
    for name, call in rows:
        rate = ops_per_second(call)
        micros[name.split()[0]] = 1e6 / rate
        print(f"  {name:<40} {rate:>12,.0f} ops/s  {1e6 / rate:>7.1f} µs/op")
    return micros


# --- 2. services in-process ---------------------------------------------------------------


def bench_in_process() -> tuple[list[str], dict]:
    """Tokenize then detokenize through the services; returns the tokens made and the tokenize figures."""
    from tokenvault.services import vault_detokenize_many, vault_tokenize

    tokens: list[str] = []

    def tokenize() -> None:
        result = vault_tokenize(
            token_type=CARD, value=card_number(), metadata={"exp_month": 12, "exp_year": 2030}, actor=ACTOR
        )
        tokens.append(result.token)

    def detokenize(batch: int):
        return lambda: vault_detokenize_many(
            tokens=random.sample(tokens, batch), actor=ACTOR, purpose=PURPOSE, permitted_token_types=frozenset({CARD})
        )

    while len(tokens) < 2 * BIG_BATCH:  # warm-up (keys generated, connections open) and a pool to sample
        tokenize()
    print("\n2. vault services in-process (no HTTP): crypto + blind index + vault row + audit row(s), one thread")
    print(f"  {'operation':<24} {'calls/s':>9} {'values/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    figures = {}
    for name, call, batch in (
        ("tokenize", tokenize, 1),
        ("detokenize x1", detokenize(1), 1),
        (f"detokenize x{BIG_BATCH}", detokenize(BIG_BATCH), BIG_BATCH),
    ):
        result = timed_loop(call, SECONDS, batch)
        figures[name] = result
        print(
            f"  {name:<24} {result['calls_per_second']:>9.1f} {result['values_per_second']:>9.1f}"
            f" {result['p50_ms']:>8.2f} {result['p99_ms']:>8.2f}"
        )
    return tokens, figures


# --- 3. the vault role over HTTP ------------------------------------------------------------


def load(config_path: str) -> None:
    """The load process: `concurrency` threads calling one VaultClient for `seconds`; one JSON line out."""
    from fintech.problems import DomainError
    from tokenvault.client import VaultClient

    config = json.loads(Path(config_path).read_text())
    client = VaultClient(
        base_url=config["url"],
        service_token=os.environ[CREDENTIAL_VARIABLE],
        connect_timeout_seconds=1.0,
        read_timeout_seconds=30.0,
        max_attempts=1,  # a failure is counted, never hidden by a retry
    )
    pool, batch, operation = config["tokens"], config["batch"], config["operation"]
    latencies: list[float] = []
    outcomes: Counter = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + config["seconds"]

    def call() -> None:
        if operation == "tokenize":
            client.tokenize(token_type=CARD, value=card_number(), actor=ACTOR, metadata={"exp_month": 1})
        else:
            client.detokenize(
                tokens=random.sample(pool, batch), actor=ACTOR, purpose=PURPOSE, permitted_token_types={CARD}
            )

    def worker() -> None:
        mine, counts = [], Counter()
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                call()
                counts["ok"] += 1
            except DomainError as error:
                counts[error.code] += 1
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
            outcomes.update(counts)

    threads = [threading.Thread(target=worker) for _ in range(config["concurrency"])]
    cpu_before, started = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    result = summary(latencies, elapsed, batch)
    result.update(outcomes=dict(outcomes), client_cpu_seconds=time.process_time() - cpu_before)
    print(json.dumps(result))


def run_load(server, workdir: Path, *, operation: str, batch: int, concurrency: int, tokens: list[str]) -> dict:
    config = workdir / f"load-{operation}-{batch}-{concurrency}.json"
    config.write_text(
        json.dumps({
            "url": server.url, "operation": operation, "batch": batch,
            "concurrency": concurrency, "seconds": SECONDS, "tokens": tokens,
        })
    )  # fmt: skip
    output = subprocess.run(
        [sys.executable, __file__, "--load", str(config)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, CREDENTIAL_VARIABLE: server.service_token},
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def bench_http(server, workdir: Path, tokens: list[str]) -> dict:
    from ledger_http import database_cpu_seconds, database_cpu_used, server_cpu_seconds

    databases = ("default", "vault")

    run_load(server, workdir, operation="tokenize", batch=1, concurrency=2, tokens=[])  # warm-up
    print(
        f"\n3. vault role over HTTP: VaultClient in another process -> gunicorn {WORKERS}x{THREADS} gthread,"
        f" {SECONDS:g}s per run\n   (service credential, DRF, audit rows; runtime DB role; no rate limit on this API)"
    )
    columns = ("operation", "clients", "calls/s", "values/s", "p50 ms", "p99 ms", "CPU ms/call: vault", "db", "client")
    widths = (15, 7, 8, 9, 8, 8, 18, 5, 6)
    print("  " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)) + "  outcomes")
    figures = {}
    for operation, batch in (("tokenize", 1), ("detokenize", 1), ("detokenize", BIG_BATCH)):
        name = operation if operation == "tokenize" else f"detokenize x{batch}"
        for concurrency in CONCURRENCIES:
            cpu_before, db_before = server_cpu_seconds(server.process), database_cpu_seconds(databases)
            result = run_load(server, workdir, operation=operation, batch=batch, concurrency=concurrency, tokens=tokens)
            calls = max(result["calls"], 1)
            vault_ms = (server_cpu_seconds(server.process) - cpu_before) * 1000 / calls
            db_ms = database_cpu_used(db_before, databases) * 1000 / calls
            client_ms = result["client_cpu_seconds"] * 1000 / calls
            figures[(name, concurrency)] = {**result, "vault_cpu_ms": vault_ms, "db_cpu_ms": db_ms}
            print(
                f"  {name:>15} {concurrency:>7} {result['calls_per_second']:>8.1f} {result['values_per_second']:>9.1f}"
                f" {result['p50_ms']:>8.2f} {result['p99_ms']:>8.2f} {vault_ms:>18.2f} {db_ms:>5.2f} {client_ms:>6.2f}"
                f"  {result['outcomes']}"
            )
    return figures


# --- 4. where the time goes -----------------------------------------------------------------


def where_the_time_goes(crypto_micros: dict, in_process: dict, http: dict) -> None:
    from tokenvault.services import vault_tokenize

    values = [card_number() for _ in range(PROFILED)]
    profiler = cProfile.Profile()
    profiler.enable()
    for value in values:
        vault_tokenize(token_type=CARD, value=value, actor=ACTOR)
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("tottime").print_stats(10)
    # psycopg's `wait` is where a thread blocks on the server (cProfile counts each generator resume as a call).
    waiting_seconds = sum(row[3] for key, row in stats.stats.items() if key[2] == "wait" and "psycopg" in key[0])
    statements = []
    with contextlib.ExitStack() as stack:
        for alias in ("default", "vault"):
            stack.enter_context(
                connections[alias].execute_wrapper(lambda run, sql, *args: statements.append(sql) or run(sql, *args))
            )
        vault_tokenize(token_type=CARD, value=card_number(), actor=ACTOR)
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    print("\n4. where the time goes")
    print(f"  cProfile of {PROFILED} in-process tokenizes, own time (tottime), top 10:")
    for line in lines[start : start + 11]:
        print("    " + re.sub(rf"\S*/(site-packages|lib/python3\.\d+)/|{ROOT}/", "", line.strip()))
    print(
        f"  per tokenize: {stats.total_tt * 1000 / PROFILED:.2f} ms profiled, of which"
        f" {waiting_seconds * 1000 / PROFILED:.2f} ms in psycopg waiting on PostgreSQL;"
        f" {len(statements)} SQL statements, in one transaction on each of the two databases"
    )
    fewest = min(CONCURRENCIES)
    for name in ("tokenize", "detokenize x1", f"detokenize x{BIG_BATCH}"):
        local, remote = in_process[name]["p50_ms"], http.get((name, fewest))
        if remote:
            print(
                f"  {name}: p50 {local:.2f} ms in-process, {remote['p50_ms']:.2f} ms over HTTP with"
                f" {fewest} client(s): HTTP + DRF + client add {remote['p50_ms'] - local:.2f} ms"
                f" ({remote['p50_ms'] / local:.1f}x)"
            )
    share = crypto_micros["envelope_seal"] / 10 / in_process["tokenize"]["p50_ms"]
    print(
        f"  crypto is {share:.1f}% of an in-process tokenize (envelope_seal against its p50);"
        " the rest is PostgreSQL and Python"
    )
    single, batch = http.get(("detokenize x1", fewest)), http.get((f"detokenize x{BIG_BATCH}", fewest))
    if single and batch:
        print(
            f"  vault + db CPU per value released: {single['vault_cpu_ms'] + single['db_cpu_ms']:.2f} ms one at a time,"
            f" {(batch['vault_cpu_ms'] + batch['db_cpu_ms']) / BIG_BATCH:.2f} ms in batches of {BIG_BATCH}"
            " (one pii.read audit row per value either way)"
        )


def main() -> None:
    import logging

    from ledger_http import throwaway_databases

    from conftest import VaultServer

    logging.disable(logging.CRITICAL)
    with throwaway_databases("fintech-vault-bench-") as workdir:
        crypto_micros = bench_crypto(workdir / "crypto-kek")
        # The services here and the vault process share one KEK ring, so tokens made here detokenize there.
        settings.VAULT_KEK_DIR = str(workdir / "vault-kek")
        settings.VAULT_KEK_GENERATE = True
        tokens, in_process = bench_in_process()
        connections.close_all()
        # Connections kept for the whole run (default: 60 s), so the database CPU per call counts every backend.
        os.environ["DATABASE_CONN_MAX_AGE_SECONDS"] = "600"
        server = VaultServer(workdir, workers=WORKERS, threads=THREADS)
        try:
            http = bench_http(server, workdir, tokens)
        finally:
            server.stop()
        where_the_time_goes(crypto_micros, in_process, http)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--load"]:
        load(sys.argv[2])
    else:
        main()
