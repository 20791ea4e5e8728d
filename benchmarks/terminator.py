"""What the TLS terminator costs (issue 14; goal: at most 10 % fewer transfers per second). Asserts nothing.

The same gunicorn (benchmarks/ledger_http.py's: throw-away databases, runtime role, limiter on) is driven
directly over plain HTTP and through nginx (pki/terminator.py's public listener: TLS 1.3, keep-alive to the
client, headers set by nginx), in alternating rounds so both see the same machine; the load generator is a
separate process either way.

    .venv/bin/python benchmarks/terminator.py                  # ~2 min
    BENCH_SECONDS=5 BENCH_ROUNDS=2 .venv/bin/python benchmarks/terminator.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "fintech.settings.test"
os.environ.setdefault("TEST_DATABASE_SUFFIX", "_tlsbench")

import django

django.setup()

from django.db import connections

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))


def _terminator(workdir: Path, upstream_port: int) -> tuple[subprocess.Popen, int, str]:
    import datetime as dt

    from cryptography.hazmat.primitives import serialization

    from conftest import free_port
    from pki import ca
    from pki.terminator import TerminatorFiles, nginx_run, terminator_write

    issuing = ca.issuing_ca_load()
    key = ca.leaf_key_generate()
    now = dt.datetime.now(dt.UTC)
    server = ca.leaf_sign(ca=issuing, public_key=key.public_key(), service="api", sans=["localhost"],
                          not_before=now - ca.BACKDATE, not_after=now + dt.timedelta(days=1))  # fmt: skip
    crl = ca.crl_sign(ca=issuing, revoked=[], number=1, now=now - ca.BACKDATE, next_update=now + dt.timedelta(days=7))
    port = free_port()
    prefix = workdir / "nginx"
    terminator_write(
        prefix, listen=f"127.0.0.1:{port}", server_name="localhost", upstream=f"http://127.0.0.1:{upstream_port}",
        client_certificate="none",
        files=TerminatorFiles(
            server_chain_pem=server.public_bytes(serialization.Encoding.PEM).decode() + ca.chain_pem(),
            server_key_pem=ca.leaf_key_pem(key), client_ca_pem=ca.chain_pem(),
            crl_pem=crl.public_bytes(serialization.Encoding.PEM),
        ),
    )  # fmt: skip
    bundle = workdir / "platform-ca.pem"
    bundle.write_text(ca.chain_pem())
    process = nginx_run(prefix, port)
    return process, port, str(bundle)


def main() -> None:
    import logging

    from benchmarks.ledger_http import broker_queue_empty, run_load, seed, start_server, throwaway_databases
    from conftest import free_port
    from pki.terminator import nginx_binary

    if nginx_binary() is None:
        print("terminator bench: nginx is not installed (scripts/services.py installs it); skipped")
        return
    logging.disable(logging.CRITICAL)
    with throwaway_databases("fintech-tlsbench-") as workdir:
        server = nginx = None
        try:
            pairs, _hot = seed()
            connections.close_all()
            port = free_port()
            server = start_server(port, workdir)
            nginx, tls_port, bundle = _terminator(workdir, port)
            run_load(port, pairs, 4, 2, workdir)
            run_load(tls_port, pairs, 4, 2, workdir, host="localhost", tls_ca=bundle)
            rates: dict[str, list[float]] = {"direct": [], "nginx": []}
            p50: dict[str, list[float]] = {"direct": [], "nginx": []}
            statuses: dict[str, dict] = {}
            for _ in range(ROUNDS):
                for label in ("direct", "nginx"):
                    load = (
                        run_load(port, pairs, CONCURRENCY, SECONDS, workdir)
                        if label == "direct"
                        else run_load(tls_port, pairs, CONCURRENCY, SECONDS, workdir, host="localhost", tls_ca=bundle)
                    )
                    rates[label].append(load["transfers_per_second"])
                    statuses.setdefault(label, {}).update(load["statuses"])
                    p50[label].append(load["p50_ms"])
            print(f"\nTLS terminator ({ROUNDS} alternating rounds of {SECONDS}s, {CONCURRENCY} clients, transfers)")
            for label in ("direct", "nginx"):
                each = " ".join(f"{r:.1f}" for r in rates[label])
                latencies = " ".join(f"{v:.1f}" for v in p50[label])
                print(f"  {label:>7}: transfers/s {each} (mean {sum(rates[label]) / ROUNDS:.1f}); p50 ms {latencies}")
            print(f"  answers: {statuses}")
            direct, through = sum(rates["direct"]) / ROUNDS, sum(rates["nginx"]) / ROUNDS
            cost = (1 - through / direct) * 100 if direct else 0.0
            print(f"  the terminator costs {cost:.1f} % of the throughput (goal: at most 10 %)")
        finally:
            for process in (nginx, server):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=20)
            broker_queue_empty()


if __name__ == "__main__":
    main()
