"""How many values each OAuth client may detokenize: a sliding window in Redis, counted in values.

One call of 100 tokens costs 100, so splitting a bulk read into many small
calls gains nothing. Every value asked for counts, whether the vault then
grants it or not: probing costs as much as reading. The limit is per client
(VAULT_DETOKENIZE_RATE, e.g. "1000/1h"), shared by all API processes through
Redis; if Redis does not answer, nothing is released (503), never an
unlimited read.
"""

from __future__ import annotations

from django.conf import settings

from fintech.rate_limits import RateLimitUnavailable, rate_parse, sliding_window_take
from fintech.redis_client import redis_key
from tokenvault.exceptions import DetokenizeLimitUnavailable, DetokenizeRateLimited


def detokenize_quota_take(*, client_id: str, values: int) -> int:
    """Count `values` against the client's window; returns the units now used, or raises 429 / 503."""
    rate = rate_parse(settings.VAULT_DETOKENIZE_RATE)
    try:
        decision = sliding_window_take(key=redis_key("vault-detokenize", client_id), rate=rate, cost=values)
    except RateLimitUnavailable:
        raise DetokenizeLimitUnavailable() from None
    if not decision.allowed:
        raise DetokenizeRateLimited(
            f"at most {rate.limit} values per {rate.window_seconds} seconds",
            extra={"limit": rate.limit, "window_seconds": rate.window_seconds},
            headers={"Retry-After": str(decision.retry_after_seconds)},
        )
    return decision.used
