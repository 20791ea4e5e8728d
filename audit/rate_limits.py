"""`rate_limit.exceeded`: a principal that hits a limit, on record for anomaly detection, without a flood.

One event per (policy, principal) per minute, deduplicated in Redis (every
web machine shares it), and at most RATE_LIMIT_AUDIT_EVENTS_PER_MINUTE per
policy: beyond that the principals are counted, and the next event recorded
for the policy says how many were left out (`suppressed`). A flood from a
thousand addresses writes a bounded number of rows, and says it was a flood.
If Redis does not answer, the refusal stands and no event is written (the
log line of the limiter's failure policy says why).
"""

from __future__ import annotations

from django.conf import settings

from audit.models import AuditEvent
from audit.services.events import Actor, audit_event_record
from fintech.api_limits import principal_digest
from fintech.rate_limits import RateLimitUnavailable, redis_script_call
from fintech.redis_client import redis_key

# KEYS: (policy, principal) marker, the policy's per-minute count, its suppressed count. ARGV: the cap.
# Returns {record?, suppressed count to report}.
_SIGNAL = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', 60) then return {0, 0} end
local n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('EXPIRE', KEYS[2], 60) end
if n > tonumber(ARGV[1]) then
  redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], 86400)
  return {0, 0}
end
return {1, tonumber(redis.call('GETDEL', KEYS[3]) or '0')}
"""


def rate_limit_exceeded_record(
    request, *, policy: str, key: str, principal: str, user: str = "", client: str = ""
) -> AuditEvent | None:
    """Record that `principal` (an address, a user's public id or a client id) hit `policy`, at most once a minute.

    `user` and `client`: who the request proved to be (the limiter runs before DRF sets `request.user`)."""
    keys = [
        redis_key("rl-audit", "seen", policy, principal_digest(principal)),
        redis_key("rl-audit", "count", policy),
        redis_key("rl-audit", "suppressed", policy),
    ]
    try:
        record, suppressed = redis_script_call(
            _SIGNAL, keys=keys, args=[settings.RATE_LIMIT_AUDIT_EVENTS_PER_MINUTE], exception=RateLimitUnavailable
        )
    except RateLimitUnavailable:
        return None
    if not record:
        return None
    return audit_event_record(
        event_type="rate_limit.exceeded",
        outcome=AuditEvent.Outcome.DENIED,
        actor=Actor(user=user, client=client),
        object_type="rate_limit.policy",
        object_id=policy,
        payload={"policy": policy, "keyed_by": key, "principal": principal, "suppressed": int(suppressed)},
        request=request,
    )
