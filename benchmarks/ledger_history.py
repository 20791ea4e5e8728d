"""`make bench`, ledger part 2: does a transfer cost more when its owner already sent 100,000 today?

The daily limit and velocity come from running counters (ADR 0014), so the
answer should be no. Two owners on the throw-away databases of
`ledger_http.py`: one with nothing sent today, one with HISTORY transfers
already posted today, built in bulk by SQL (real transfer and posting rows,
balances, versions, the spend counter and the per-minute velocity buckets
they would have written). Then the two owners' transfers are timed in turn,
interleaved so drift hits both alike, through the service the API calls
(`transfer_create`: the one SQL round trip), with the database CPU of the
call. Prints figures; asserts nothing. Called by `ledger_http.main`.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

HISTORY = int(os.environ.get("BENCH_HISTORY", "100000"))
TIMED = int(os.environ.get("BENCH_HISTORY_TIMED", "400"))

# One statement: HISTORY transfers of 0.01 EUR over the last hours, each with its two postings in version order.
_HISTORY_SQL = """
WITH sent AS (
    INSERT INTO ledger_transfer (public_id, kind, currency, amount_minor, reference, initiated_by_id, client_id,
                                 reversed_minor, flagged_for_review, review_reasons, limit_day, created_at)
    SELECT gen_random_uuid(), 'transfer', 'EUR', 1, '', %(owner)s, '', 0, false, '[]', %(day)s,
           now() - (%(n)s - g) * interval '50 milliseconds'
      FROM generate_series(1, %(n)s) AS g ORDER BY g
    RETURNING id, created_at),
numbered AS (SELECT id, created_at, row_number() OVER (ORDER BY id) AS n FROM sent)
INSERT INTO ledger_posting (transfer_id, account_id, amount_minor, currency, balance_after_minor, account_version,
                            created_at)
SELECT id, %(source)s, -1, 'EUR', %(source_posted)s - n, %(source_version)s + n, created_at FROM numbered
UNION ALL
SELECT id, %(target)s, 1, 'EUR', %(target_posted)s + n, %(target_version)s + n, created_at FROM numbered
"""


def _history_build(*, owner, source, target) -> None:
    day = timezone.now().astimezone(ZoneInfo(settings.LEDGER_LIMIT_TIME_ZONE)).date()
    with transaction.atomic(), connection.cursor() as cursor:
        # Bulk history straight into the money tables: as their functions' owner role (ADR 0016), which the
        # bench's owner login is a member of; the guard refuses anyone else.
        cursor.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", [settings.LEDGER_DEFINER_ROLE])
        if cursor.fetchone()[0]:
            cursor.execute(f"SET LOCAL ROLE {connection.ops.quote_name(settings.LEDGER_DEFINER_ROLE)}")
        cursor.execute(
            _HISTORY_SQL,
            {
                "owner": owner.pk,
                "day": day,
                "n": HISTORY,
                "source": source.pk,
                "source_posted": source.posted_minor,
                "source_version": source.version,
                "target": target.pk,
                "target_posted": target.posted_minor,
                "target_version": target.version,
            },
        )
        for account, delta in ((source, -HISTORY), (target, HISTORY)):
            cursor.execute(
                "UPDATE ledger_ledgeraccount SET posted_minor = posted_minor + %s, version = version + %s"
                " WHERE id = %s",
                [delta, HISTORY, account.pk],
            )
        cursor.execute(
            "INSERT INTO ledger_spendcounter (owner_id, currency, business_day, outgoing_minor, movements)"
            " VALUES (%s, 'EUR', %s, %s, %s)",
            [owner.pk, day, HISTORY, HISTORY],
        )
        cursor.execute(
            "INSERT INTO ledger_velocitybucket (owner_id, currency, minute, movements)"
            " SELECT %s, 'EUR', date_trunc('minute', created_at), count(*) FROM ledger_transfer"
            " WHERE initiated_by_id = %s GROUP BY 3",
            [owner.pk, owner.pk],
        )
        cursor.execute("RESET ROLE")
        cursor.execute("ANALYZE")


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def history_cost(*, cpu_seconds: Callable[[list[int]], float]) -> None:
    """`cpu_seconds(pids)`: ledger_http's /proc reader, for the CPU of this connection's backend."""
    from accounts.services import customer_create
    from audit.services.events import Actor
    from ledger.invariants import ledger_verify
    from ledger.services import account_open, deposit_from_funding, transfer_create

    actor = Actor.system("bench")
    owners = {}
    for label in ("0", f"{HISTORY:,}"):
        owner = customer_create(email=f"history{len(owners)}@example.com", password=None, tier="business")
        source = account_open(owner=owner, currency="EUR", actor=actor)
        deposit_from_funding(account=source, amount_minor=10**11, reason="bench funding", actor=actor)
        payee = customer_create(email=f"history-payee{len(owners)}@example.com", password=None)
        target = account_open(owner=payee, currency="EUR", actor=actor)
        source.refresh_from_db()
        target.refresh_from_db()
        owners[label] = (owner, source, target)
    started = time.perf_counter()
    owner, source, target = owners[f"{HISTORY:,}"]
    _history_build(owner=owner, source=source, target=target)
    built_seconds = time.perf_counter() - started
    problems = ledger_verify()

    backend = [_backend_pid()]
    wall: dict[str, list[float]] = {label: [] for label in owners}
    cpu: dict[str, float] = dict.fromkeys(owners, 0.0)
    for n in range(TIMED):
        for label, (owner, source, target) in owners.items():
            cpu_before, clock = cpu_seconds(backend), time.perf_counter()
            transfer_create(
                from_public_id=source.public_id,
                to_public_id=target.public_id,
                amount_minor=1,
                currency="EUR",
                reference=f"h{n}",
                initiated_by=owner,
                actor=actor,
            )
            wall[label].append(time.perf_counter() - clock)
            cpu[label] += cpu_seconds(backend) - cpu_before

    print(f"\ncost of a transfer by an owner with 0 and with {HISTORY:,} transfers already today")
    print(
        f"  (history built in bulk in {built_seconds:.1f} s; ledger_verify on it: "
        f"{'sound' if not problems else f'{len(problems)} problems'}; {TIMED} timed transfers each, interleaved,"
    )
    print("   through ledger.services.transfer_create, in-process: the same one SQL call the API makes)")
    print(f"  {'already today':>14} {'p50 ms':>8} {'mean ms':>8} {'p90 ms':>8} {'db CPU ms':>10}")
    for label in owners:
        times = sorted(wall[label])
        p50, p90 = times[len(times) // 2] * 1000, times[int(len(times) * 0.9)] * 1000
        mean = statistics.fmean(times) * 1000
        print(f"  {label:>14} {p50:>8.2f} {mean:>8.2f} {p90:>8.2f} {cpu[label] * 1000 / TIMED:>10.3f}")
    zero, full = (statistics.median(wall[label]) for label in owners)
    print(f"  p50 with history / without: {full / zero:.3f} (goal: within 1.10)")
