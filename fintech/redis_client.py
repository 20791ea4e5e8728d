"""One Redis client per process and URL, with short timeouts.

redis-py reconnects on its own after an outage, so a process that saw Redis
go away recovers when it comes back, without a restart.
"""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=4)
def _client(url: str, timeout_seconds: float) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout_seconds,
        socket_timeout=timeout_seconds,
        health_check_interval=30,
        retry_on_timeout=False,
    )


def get_redis() -> redis.Redis:
    return _client(settings.REDIS_URL, settings.REDIS_TIMEOUT_SECONDS)


def redis_key(*parts: str) -> str:
    """A namespaced Redis key: `<REDIS_KEY_PREFIX>:<part>:<part>`."""
    return ":".join((settings.REDIS_KEY_PREFIX, *parts))


def first_in_period(key: str, seconds: int) -> bool:
    """True once per `seconds` for `key` (a full key, from `redis_key`), on every machine alike.

    For audit rows of repeated refusals: a flood writes one row per period, not
    one per request. When Redis does not answer: False (the refusal stands;
    only its repeated audit row is skipped).
    """
    try:
        return bool(get_redis().set(key, "1", nx=True, ex=max(1, seconds)))
    except redis.RedisError:
        return False
