"""`make bench`, ledger part: transfers per second through the whole HTTP stack, against pgbench.

Everything a production request pays for is on: OAuth bearer token lookup,
scopes, Idempotency-Key, limits and rules, the ledger transaction, the audit
records (API call + ledger event), the access log and metrics. The server is
gunicorn (gthread) on a throw-away database, connected as the runtime role;
the load comes from a separate process (benchmarks/load_transfers.py) with 8
and then 32 concurrent clients, twice: 64 customers sending (uniform), then
one customer sending from one account to the same 64 payees (hot owner: its
account row and its spend counter serialise every transfer it makes).
pgbench's tpcb-like run on the same server gives the yardstick. Then
`ledger_history.py`: the cost of a transfer with 0 and 100,000 already that
day. Prints figures; asserts nothing.
"""

from __future__ import annotations

import contextlib
import cProfile
import glob
import io
import json
import os
import pstats
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "fintech.settings.test"
os.environ.setdefault("TEST_DATABASE_SUFFIX", "_bench")

import django

django.setup()

from django.conf import settings
from django.db import connections
from django.test.utils import setup_databases, setup_test_environment, teardown_databases
from django.utils import timezone

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONCURRENCIES = [int(c) for c in os.environ.get("BENCH_CONCURRENCY", "8,32").split(",")]
PAIRS = 64


def seed() -> tuple[list[dict], list[dict]]:
    """(uniform pairs, hot-owner pairs): 64 senders to 64 payees, and one sender's one account to the same payees."""
    from oauth2_provider.models import AccessToken, set_token_value

    from accounts.oauth.clients import oauth_client_register_mobile
    from accounts.oauth.token_macs import access_token_macs_store
    from accounts.services import customer_create
    from audit.services.events import Actor
    from ledger.models import TransferLimit, TransferRule
    from ledger.services import account_open, deposit_from_funding

    actor = Actor.system("bench")
    TransferLimit.objects.update(per_transfer_max_minor=10**12, daily_outgoing_max_minor=10**15)
    # Rules stay on (their queries are part of the cost); the velocity rule just cannot trip.
    TransferRule.objects.filter(kind="velocity").update(max_count=10**9)
    app = oauth_client_register_mobile(name="bench", redirect_uris=["https://bench.invalid/cb"], actor=actor)

    def token_for(user) -> str:
        raw = secrets.token_urlsafe(32)
        token = AccessToken(
            user=user, application=app, scope="transfers:write", expires=timezone.now() + timedelta(hours=2)
        )
        set_token_value(token, raw)
        token.save()
        access_token_macs_store([token])  # a token without its MAC is refused (issue 12)
        return raw

    hot_owner = customer_create(email="hot@example.com", password=None, tier="business")
    hot_account = account_open(owner=hot_owner, currency="EUR", actor=actor)
    deposit_from_funding(account=hot_account, amount_minor=10**11, reason="bench funding", actor=actor)
    hot_token = token_for(hot_owner)
    pairs, hot_pairs = [], []
    for n in range(PAIRS):
        sender = customer_create(email=f"bench{n}@example.com", password=None, tier="business")
        source = account_open(owner=sender, currency="EUR", actor=actor)
        target = account_open(
            owner=customer_create(email=f"payee{n}@example.com", password=None), currency="EUR", actor=actor
        )
        deposit_from_funding(account=source, amount_minor=10**11, reason="bench funding", actor=actor)
        pairs.append({"from": str(source.public_id), "to": str(target.public_id), "token": token_for(sender)})
        hot_pairs.append({"from": str(hot_account.public_id), "to": str(target.public_id), "token": hot_token})
    return pairs, hot_pairs


def database_url(alias: str) -> str:
    params = connections[alias].settings_dict
    role = settings.DATABASE_RUNTIME_ROLES[alias]
    return f"postgres://{role}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{params['NAME']}"


BENCH_UNLIMITED_POLICIES = (
    "money_write.user", "money_write.client", "api_read.user", "api_read.client", "api.address",
    "api_write.user", "api_write.client",
)  # fmt: skip


def start_server(port: int, workdir: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url("default"),
        "DATABASE_OWNER_URL": database_url("default"),
        "VAULT_DATABASE_URL": database_url("vault"),
        "VAULT_DATABASE_OWNER_URL": database_url("vault"),
        "PORT": str(port),
        "WEB_CONCURRENCY": os.environ.get("BENCH_WEB_CONCURRENCY", "2"),
        "WEB_THREADS": os.environ.get("BENCH_WEB_THREADS", "8"),
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"),
        # As in production: each transfer's notification is published to the broker on commit
        # (no worker consumes the bench's queue; it is emptied when the run ends).
        "OUTBOX_DELIVERY_ON_COMMIT": "true",
        # The request limiter runs (its Redis round trip is in every figure) with room for the load:
        # 64 senders at full speed are far above a customer's 100 transfers a minute (ADR 0017).
        "RATE_LIMIT_POLICIES_JSON": json.dumps(
            {name: {"rate": "600000/1m", "burst": 100000, "tiers": {}} for name in BENCH_UNLIMITED_POLICIES}
        ),
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "fintech.wsgi", "--config", "fintech/gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "server.log").open("wb"),
    )
    import requests

    for _ in range(100):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"server did not start; see {workdir / 'server.log'}")


def _cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def server_cpu_seconds(server: subprocess.Popen) -> float:
    """User + system CPU of the gunicorn master and its workers so far (Linux /proc).

    Wall-clock rates move with whatever else the two cores run; the server's
    CPU per request does not, so it is the figure to compare between runs.
    """
    pids = [server.pid]
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    if children.exists():
        pids += [int(pid) for pid in children.read_text().split()]
    return _cpu_seconds(pids)


def database_cpu_seconds(aliases: tuple[str, ...] = ("default",)) -> dict[int, float]:
    """CPU so far of each PostgreSQL backend connected to these bench databases (the server's connections)."""
    names = [connections[alias].settings_dict["NAME"] for alias in aliases]
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s) AND pid <> pg_backend_pid()", [names])
        pids = [row[0] for row in cursor.fetchall()]
    connections["default"].close()
    return {pid: _cpu_seconds([pid]) for pid in pids}


def database_cpu_used(before: dict[int, float], aliases: tuple[str, ...] = ("default",)) -> float:
    """CPU the backends used since `before`; a backend started since counts whole, one gone is lost (undercount)."""
    after = database_cpu_seconds(aliases)
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def run_load(
    port: int,
    pairs: list[dict],
    concurrency: int,
    seconds: int,
    workdir: Path,
    *,
    host: str = "127.0.0.1",
    tls_ca: str = "",
) -> dict:
    config = workdir / f"load-{concurrency}.json"
    config.write_text(json.dumps({
        "host": host, "port": port, "pairs": pairs, "concurrency": concurrency, "seconds": seconds, "tls_ca": tls_ca,
    }))  # fmt: skip
    output = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "load_transfers.py"), str(config)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def pgbench_tps(clients: int, seconds: int) -> float | None:
    binary = shutil.which("pgbench") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))), None)
    if binary is None:
        print("  pgbench not installed: no yardstick (apt-get install postgresql-contrib / postgresql-client)")
        return None
    params = connections["default"].settings_dict
    common = ["-h", params["HOST"] or "127.0.0.1", "-p", str(params["PORT"] or 5432), "-U", params["USER"]]
    database = "fintech_pgbench"
    with connections["default"].cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{database}"')
        cursor.execute(f'CREATE DATABASE "{database}"')
    try:
        subprocess.run([binary, *common, "-i", "-s", "10", "-q", database], check=True, capture_output=True)
        result = subprocess.run(
            [binary, *common, "-b", "tpcb-like", "-c", str(clients), "-j", "2", "-T", str(seconds), "-n", database],
            check=True,
            capture_output=True,
            text=True,
        )
        match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", result.stdout)
        return float(match.group(1)) if match else None
    finally:
        with connections["default"].cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def profile_in_process(pairs: list[dict], requests_count: int = 300) -> str:
    """Where a transfer request's time goes inside Django (one process, cProfile)."""
    from django.test import Client

    client = Client()
    pair = pairs[0]
    body = {"from_account": pair["from"], "to_account": pair["to"], "amount": "0.01", "currency": "EUR"}
    profiler = cProfile.Profile()
    profiler.enable()
    for n in range(requests_count):
        client.post(
            "/v1/transfers",
            data=json.dumps({**body, "reference": f"p{n}"}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {pair['token']}",
            HTTP_IDEMPOTENCY_KEY=f"profile-{n}",
        )
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("cumulative").print_stats(
        r"(fintech|ledger|accounts|audit|oauth2_provider|rest_framework|django/db|psycopg)", 25
    )
    stream.write("\nown time (tottime), top 25, every module:\n")
    stats.sort_stats("tottime").print_stats(25)
    return stream.getvalue()


def broker_queue_empty() -> None:
    """Drop the notifications the run published: no worker was meant to deliver them."""
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(settings.CELERY_TASK_DEFAULT_QUEUE)


@contextlib.contextmanager
def throwaway_databases(prefix: str = "fintech-bench-"):
    """Test copies of both databases (TEST_DATABASE_SUFFIX) and a scratch directory, gone afterwards whatever happens.

    Shared by the benches (round_trips.py, vault_ops.py): each sets its own suffix before importing this module.
    """
    setup_test_environment()
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    config = setup_databases(verbosity=0, interactive=False, aliases={"default", "vault"})
    try:
        yield workdir
    finally:
        connections.close_all()
        teardown_databases(config, verbosity=0)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    import logging

    from benchmarks.ledger_history import history_cost
    from conftest import free_port

    logging.disable(logging.CRITICAL)
    with throwaway_databases() as workdir:
        server = None
        try:
            pairs, hot_pairs = seed()
            connections.close_all()
            port = free_port()
            server = start_server(port, workdir)
            run_load(port, pairs, 4, 2, workdir)  # warm-up: connections, caches
            print(f"\nledger over HTTP ({SECONDS}s per run; gunicorn gthread, runtime DB role, everything on)")
            columns = ("clients", "senders", "transfers/s", "p50 ms", "p99 ms", "pgbench tps", "ratio")
            columns += ("CPU ms/req: app",)
            widths = (7, 9, 12, 8, 8, 12, 6, 16)
            print("  " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)) + "    db  statuses")
            for concurrency in CONCURRENCIES:
                tps = pgbench_tps(concurrency, SECONDS)
                rates = {}
                for senders, load_pairs in (("64", pairs), ("1 (hot)", hot_pairs)):
                    cpu_before, db_before = server_cpu_seconds(server), database_cpu_seconds()
                    load = run_load(port, load_pairs, concurrency, SECONDS, workdir)
                    requests_done = max(load["requests"], 1)
                    cpu_ms = (server_cpu_seconds(server) - cpu_before) * 1000 / requests_done
                    db_ms = database_cpu_used(db_before) * 1000 / requests_done
                    rate, p50, p99 = load["transfers_per_second"], load["p50_ms"], load["p99_ms"]
                    rates[senders] = rate
                    ratio = f"{rate / tps:.3f}" if tps else "n/a"
                    figures = f"{concurrency:>7} {senders:>9} {rate:>12.1f} {p50:>8.1f} {p99:>8.1f} {tps or 0:>12.1f}"
                    figures += f" {ratio:>6} {cpu_ms:>16.2f} {db_ms:>5.2f}"
                    print(f"  {figures}  {load['statuses']}")
                hot_share = rates["1 (hot)"] / rates["64"] if rates["64"] else 0.0
                print(f"  {concurrency} clients: hot owner / uniform = {hot_share:.2f} (goal: at least 0.50)")
            server.terminate()
            server.wait(timeout=20)
            server = None
            print("\nwhere the time goes (in-process cProfile of 300 transfer requests, cumulative):")
            print(profile_in_process(pairs))
            history_cost(cpu_seconds=_cpu_seconds)
        finally:
            if server is not None:
                server.terminate()
            broker_queue_empty()


if __name__ == "__main__":
    main()
