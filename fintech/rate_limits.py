"""Sliding-window limits kept in Redis, shared by every limiter of the project.

Why sliding windows in Lua rather than django-ratelimit's counters: fixed
windows let twice the limit through around a window edge, and "check, then
increment" is two steps, so concurrent requests can all pass the check. Here
one Lua script trims the window, counts and, if the new cost fits, records
it, atomically, on Redis's own clock (so every process agrees on "now").

`accounts/login_throttle.py` uses the rate notation, the Lua clock and the
Redis call from here with its own two-key script (failures per account and
per address);
`sliding_window_take` is the general weighted form: a call may cost more than
one unit (bulk detokenization counts values, not calls).

If Redis does not answer, `RateLimitUnavailable` is raised and the caller
refuses (503): failing open would make the limit optional.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache

import redis

from fintech.redis_client import get_redis

_RATE = re.compile(r"^(?P<limit>[1-9]\d{0,5})/(?P<multiplier>[1-9]\d{0,4})?(?P<unit>[smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# Every script here starts with this: `now` in ms from ARGV[1], or from Redis's own clock when ARGV[1] is ''.
LUA_NOW_MS = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
"""

# KEYS: the window's sorted set (members "<uuid>:<cost>", scored by time), its running total
# ARGV: now_ms ('' = Redis clock), limit, window ms, cost, member id
# Returns {1, 0, used after} when the cost was recorded, {0, retry-after ms, used} when refused.
_WINDOW_TAKE = (
    LUA_NOW_MS
    + """
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local function cost_of(member) return tonumber(string.match(member, ':(%d+)$')) end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - window)
if #expired > 0 then
  local freed = 0
  for _, member in ipairs(expired) do freed = freed + cost_of(member) end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  redis.call('DECRBY', KEYS[2], freed)
end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
if used < 0 or redis.call('EXISTS', KEYS[1]) == 0 then
  used = 0
  redis.call('SET', KEYS[2], 0, 'PX', window)
end
if used + cost > limit then
  -- Free again once enough of the oldest entries age out for this cost to fit.
  local retry = window
  local freed = 0
  local entries = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #entries, 2 do
    freed = freed + cost_of(entries[i])
    if used - freed + cost <= limit then
      retry = tonumber(entries[i + 1]) + window - now
      break
    end
  end
  return {0, math.max(retry, 1), used}
end
redis.call('ZADD', KEYS[1], now, ARGV[5] .. ':' .. ARGV[4])
redis.call('INCRBY', KEYS[2], cost)
redis.call('PEXPIRE', KEYS[1], window)
redis.call('PEXPIRE', KEYS[2], window)
return {1, 0, used + cost}
"""
)


class RateLimitUnavailable(Exception):
    """Redis did not answer: nothing can be counted, so nothing limited may happen."""


@dataclass(frozen=True, slots=True)
class Rate:
    limit: int
    window_seconds: int


@dataclass(frozen=True, slots=True)
class WindowDecision:
    allowed: bool
    used: int  # units in the window, including this call's cost when allowed
    retry_after_seconds: int  # 0 when allowed


def rate_parse(value: str) -> Rate:
    """'5/15m' -> Rate(5, 900): django-ratelimit's notation, checked strictly."""
    match = _RATE.match(value.strip())
    if match is None:
        raise ValueError(f"not a rate like '5/15m': {value!r}")
    multiplier = int(match["multiplier"] or 1)
    return Rate(limit=int(match["limit"]), window_seconds=multiplier * _UNIT_SECONDS[match["unit"]])


@lru_cache(maxsize=32)
def _script(client: redis.Redis, script: str):
    """One registered script per client and text: its SHA-1 is computed once, not on every request."""
    return client.register_script(script)


def redis_script_call(script: str, *, keys: list[str], args: list[str | int], exception: type[Exception]) -> list:
    """Run a Lua script atomically; any Redis failure becomes `exception` (the caller's fail-closed signal)."""
    try:
        return _script(get_redis(), script)(keys=keys, args=args)
    except redis.RedisError as exc:
        raise exception(str(exc)) from exc


def sliding_window_take(*, key: str, rate: Rate, cost: int, now_ms: str = "") -> WindowDecision:
    """Record `cost` units in the window at `key` if they fit under `rate`; otherwise refuse and say when.

    A cost larger than the whole limit never fits: it is refused with the
    window length as the retry time. Raises RateLimitUnavailable if Redis
    does not answer. `now_ms` is for tests only ('' = Redis's clock).
    """
    if cost < 1:
        raise ValueError("a cost is at least 1")
    allowed, retry_ms, used = redis_script_call(
        _WINDOW_TAKE,
        keys=[key, f"{key}:total"],
        args=[now_ms, rate.limit, rate.window_seconds * 1000, cost, uuid.uuid4().hex],
        exception=RateLimitUnavailable,
    )
    return WindowDecision(
        allowed=allowed == 1, used=int(used), retry_after_seconds=0 if allowed else max(1, math.ceil(retry_ms / 1000))
    )
