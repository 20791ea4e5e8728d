"""The request limiter's buckets (fintech/token_buckets.py) against a real Redis: exact, all-or-nothing, refilling.

Cost: about 2 s (the two-process race starts two interpreters).
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from django.conf import settings

from conftest import ROOT, subprocess_env
from fintech.rate_limits import RateLimitUnavailable
from fintech.token_buckets import Bucket, buckets_take
from ledger.tests.test_concurrency import run_threads

SECOND_US = 1_000_000


def _bucket(limit=5, period=3600, burst=5, cost=1) -> Bucket:
    return Bucket(key=f"{settings.REDIS_KEY_PREFIX}:rl:test:{uuid.uuid4().hex}", limit=limit, period_seconds=period,
                  burst=burst, cost=cost)  # fmt: skip


def test_a_bucket_lets_its_burst_through_then_refuses_with_the_time_to_the_next_token():
    bucket = _bucket(limit=60, period=60, burst=3)  # one token a second, three at once
    now = 1_000 * SECOND_US
    results = [buckets_take([bucket], now_us=str(now)) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.states[0].remaining for r in results[:3]] == [2, 1, 0]
    assert results[3].retry_after_seconds == 1 and results[3].refused_by == 0
    # A second later exactly one token is back; three seconds later the bucket is full.
    assert buckets_take([bucket], now_us=str(now + SECOND_US)).allowed
    assert not buckets_take([bucket], now_us=str(now + SECOND_US)).allowed
    assert [buckets_take([bucket], now_us=str(now + 5 * SECOND_US)).allowed for _ in range(4)] == [
        True, True, True, False,
    ]  # fmt: skip


def test_a_request_passes_only_if_every_bucket_has_a_token_and_a_refusal_takes_from_none():
    wide, narrow = _bucket(limit=100, burst=100), _bucket(limit=2, burst=2)
    now = str(5_000 * SECOND_US)
    assert [buckets_take([wide, narrow], now_us=now).allowed for _ in range(3)] == [True, True, False]
    refused = buckets_take([wide, narrow], now_us=now)
    assert refused.refused_by == 1
    # The two refusals took nothing from the wide bucket: 98 left, not 96.
    assert buckets_take([wide], now_us=now).states[0].remaining == 97


def test_a_cost_above_the_burst_is_a_programming_error():
    with pytest.raises(ValueError):
        buckets_take([_bucket(burst=2, cost=3)])


def test_threads_racing_at_one_bucket_get_exactly_its_burst():
    bucket = _bucket(limit=1, period=3600, burst=25)  # no refill within the test
    outcomes = run_threads(40, lambda _: sum(buckets_take([bucket]).allowed for _ in range(5)))
    assert sum(outcomes) == 25


_PROCESS_SCRIPT = """
import django, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fintech.settings")
django.setup()
from fintech.token_buckets import Bucket, buckets_take
bucket = Bucket(key=sys.argv[1], limit=1, period_seconds=3600, burst=40)
print(sum(buckets_take([bucket]).allowed for _ in range(100)))
"""


def test_two_processes_racing_at_one_bucket_get_exactly_its_burst():
    key = _bucket().key
    env = subprocess_env()
    command = [sys.executable, "-c", _PROCESS_SCRIPT, key]
    processes = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    passed = [int(process.communicate(timeout=60)[0].strip()) for process in processes]
    assert sum(passed) == 40, passed


def test_redis_not_answering_is_unavailable_never_allowed(settings, redis_server):
    settings.REDIS_URL = redis_server.url
    bucket = _bucket()
    assert buckets_take([bucket]).allowed
    redis_server.stop()
    with pytest.raises(RateLimitUnavailable):
        buckets_take([bucket])
