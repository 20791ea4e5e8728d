"""Token buckets in Redis (GCRA): every bucket a request needs, taken in one atomic round trip (issue 13).

Why GCRA: it is a token bucket stored as one number per key, the "theoretical
arrival time" (TAT) of the next request at the sustained rate. A request of
cost c passes when the bucket would still hold no more than `burst` requests'
worth of debt afterwards; it costs one SET. O(1) memory per key (no sorted
sets), exact under any concurrency (a Lua script runs alone), and on Redis's
own clock, so ten web machines share one "now".

One script takes all the buckets a request needs (its address, user, client
and endpoint group): a request passes only when every bucket has a token,
and a refused request takes nothing from any of them (two phases inside the
script), so a client refused by its user bucket does not drain its client's.

`fintech.rate_limits` keeps the sliding windows of the login failure counts
and the vault's detokenization quota (weighted by values, counted over a
window); this module is the request limiter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fintech.rate_limits import RateLimitUnavailable, redis_script_call

# KEYS: one per bucket.
# ARGV[1]: now in microseconds ('' = Redis TIME); then per bucket: emission interval (us), burst, cost.
# Returns {allowed, retry_after_us, index of the first refusing bucket (0 = none), remaining_1, reset_us_1, ...}:
# remaining = whole tokens left after this request; reset = microseconds until the bucket is full again.
_GCRA_TAKE = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local n = #KEYS
local new_tats = {}
local out = {}
local refused_at = 0
local retry = 0
for i = 1, n do
  local interval = tonumber(ARGV[2 + (i - 1) * 3])
  local burst = tonumber(ARGV[3 + (i - 1) * 3])
  local cost = tonumber(ARGV[4 + (i - 1) * 3])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval * cost
  local tolerance = interval * burst
  if new_tat - now > tolerance then
    if refused_at == 0 then refused_at = i end
    retry = math.max(retry, new_tat - tolerance - now)
    out[#out + 1] = math.max(0, math.floor((tolerance - (tat - now)) / interval))
    out[#out + 1] = tat - now
  else
    new_tats[i] = new_tat
    out[#out + 1] = math.floor((tolerance - (new_tat - now)) / interval)
    out[#out + 1] = new_tat - now
  end
end
if refused_at == 0 then
  for i = 1, n do
    local ttl_ms = math.max(1, math.ceil((new_tats[i] - now) / 1000))
    redis.call('SET', KEYS[i], string.format('%d', new_tats[i]), 'PX', ttl_ms)
  end
end
local result = {refused_at == 0 and 1 or 0, retry, refused_at}
for _, value in ipairs(out) do result[#result + 1] = value end
return result
"""


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket to take from: `limit` requests per `period_seconds` sustained, at most `burst` at once."""

    key: str
    limit: int
    period_seconds: int
    burst: int
    cost: int = 1

    @property
    def interval_us(self) -> int:
        # Rounded up: never faster than the policy says.
        return math.ceil(self.period_seconds * 1_000_000 / self.limit)


@dataclass(frozen=True, slots=True)
class BucketState:
    remaining: int  # whole tokens left
    reset_seconds: int  # until the bucket is full again


@dataclass(frozen=True, slots=True)
class TakeResult:
    allowed: bool
    retry_after_seconds: int  # 0 when allowed
    refused_by: int | None  # index into the buckets of the first one without a token
    states: tuple[BucketState, ...]


def buckets_take(buckets: list[Bucket], *, now_us: str = "") -> TakeResult:
    """Take `cost` tokens from every bucket, or from none; one Redis round trip.

    Raises RateLimitUnavailable when Redis does not answer: what then happens
    is the caller's failure policy. `now_us` is for tests only ('' = Redis's clock).
    """
    if not buckets:
        return TakeResult(allowed=True, retry_after_seconds=0, refused_by=None, states=())
    args: list[str | int] = [now_us]
    for bucket in buckets:
        if bucket.cost < 1 or bucket.burst < bucket.cost:
            raise ValueError(f"a bucket's cost is at least 1 and at most its burst: {bucket}")
        args.extend((bucket.interval_us, bucket.burst, bucket.cost))
    allowed, retry_us, refused_at, *flat = redis_script_call(
        _GCRA_TAKE, keys=[bucket.key for bucket in buckets], args=args, exception=RateLimitUnavailable
    )
    states = tuple(
        BucketState(remaining=int(flat[i]), reset_seconds=math.ceil(int(flat[i + 1]) / 1_000_000))
        for i in range(0, len(flat), 2)
    )
    return TakeResult(
        allowed=allowed == 1,
        retry_after_seconds=0 if allowed == 1 else max(1, math.ceil(int(retry_us) / 1_000_000)),
        refused_by=None if refused_at == 0 else int(refused_at) - 1,
        states=states,
    )
