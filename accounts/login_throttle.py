"""Failed-login throttling per account and per address, in a sliding window kept in Redis.

Why not django-ratelimit's counters: they are fixed windows (a burst of twice
the limit straddling a window edge gets through), they count every request
rather than failures only, and their "check, then increment" is two steps, so
concurrent requests can all pass the check. Here each limited key is a Redis
sorted set of attempt timestamps; one Lua script trims it to the window,
counts and, if below the limit, adds the new attempt, atomically. Redis's own
clock is used, so every web process agrees on "now". The rate notation and
the Redis call are shared with other limiters (`fintech/rate_limits.py`);
the script is this module's own, because it limits two keys at once and
takes attempts back.

An attempt counts as a failure from the moment it starts. Only a success (or
a request whose credentials were never checked) takes it back. So a crash
mid-check, or a hundred concurrent guesses, can never exceed the limit: at
most `limit` passwords are ever checked per window and key.

Honest users keep working:
* a successful login clears the account's failures, and removes that
  account's failures from the address's count too (typos followed by the right
  password are not guessing), so an office of many people behind one address
  each mistyping once is never locked out;
* an MFA user's correct password does not clear anything yet: only the second
  factor does, or knowing the password would reset the count on guessing codes.

Keys hold HMACs of the account and address, never an email in clear. If Redis
does not answer, `ThrottleUnavailable` is raised and the caller refuses the
login (503): failing open would allow unlimited guessing.
"""

from __future__ import annotations

import ipaddress
import math
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.http import HttpRequest
from django.utils.crypto import salted_hmac

from fintech.rate_limits import LUA_NOW_MS, Rate, rate_parse, redis_script_call  # noqa: F401 - Rate: part of this API
from fintech.redis_client import redis_key

MAX_ACCOUNT_LENGTH = 254
IPV6_PREFIX_LENGTH = 64  # one customer line gets a whole /64: count it as one address
# Management commands authenticate their operator (accounts/operator_auth.py) with the same counts. Their
# "address" is this prefix plus the host name: a bucket of its own per machine, which no web peer can share
# (a web address is always an IP, or "unknown"), so unparseable web peers cannot lock the command line out.
COMMAND_LINE_ADDRESS_PREFIX = "command-line:"

Scope = Literal["account", "address"]
SCOPES: tuple[Scope, Scope] = ("account", "address")

# KEYS: account set, address set, account lock marker, address lock marker
# ARGV: now_ms ('' = Redis clock), account limit, account window ms, address limit, address window ms, member
# Returns {0, 0, 0} when the attempt was added, or {scope index (1|2), retry-after ms, first refusal (1|0)}.
_ATTEMPT_START = (
    LUA_NOW_MS
    + """
for i = 1, 2 do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local count = redis.call('ZCARD', KEYS[i])
  if count >= limit then
    -- Unlocked when enough entries age out to bring the count below the limit.
    local entry = redis.call('ZRANGE', KEYS[i], count - limit, count - limit, 'WITHSCORES')
    local retry = math.max(tonumber(entry[2]) + window - now, 1)
    -- The marker holds when the lockout it reported ends: a later lockout is a new one.
    local reported = tonumber(redis.call('GET', KEYS[i + 2]) or '0')
    local first = 0
    if reported <= now then
      redis.call('SET', KEYS[i + 2], now + retry, 'PX', retry)
      first = 1
    end
    return {i, retry, first}
  end
end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now, ARGV[6])
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2 * i + 1]))
end
return {0, 0, 0}
"""
)

# KEYS: account set, address set, account lock marker; ARGV: member, account prefix of members, '1' = login done
_ATTEMPT_FINISH = """
if ARGV[3] == '1' then
  redis.call('DEL', KEYS[1], KEYS[3])
  -- Bounded: an address set never holds more than its limit (plus attempts in flight).
  local members = redis.call('ZRANGE', KEYS[2], 0, -1)
  for _, member in ipairs(members) do
    if string.sub(member, 1, #ARGV[2]) == ARGV[2] then
      redis.call('ZREM', KEYS[2], member)
    end
  end
else
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
"""


class ThrottleUnavailable(Exception):
    """Redis did not answer: the attempt cannot be counted, so it must not be made."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """An attempt in progress, already counted as a failure until told otherwise."""

    account_key: str
    address_key: str
    account_marker_key: str
    account_digest: str
    member: str


@dataclass(frozen=True, slots=True)
class Lockout:
    """The attempt was refused without checking anything."""

    scope: Scope
    retry_after_seconds: int
    first_refusal: bool  # True once per lockout: record it in the trail then


def account_normalise(account: str) -> str:
    """What one account is, however the email is typed: compatibility-folded, case-folded, trimmed."""
    return unicodedata.normalize("NFKC", account or "").strip().casefold()[:MAX_ACCOUNT_LENGTH]


def address_normalise(address: str | None) -> str:
    """An IPv4 address as is; an IPv6 address as its /64, which one client controls entirely."""
    if address and address.startswith(COMMAND_LINE_ADDRESS_PREFIX):
        return address[:MAX_ACCOUNT_LENGTH]
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"  # all unparseable peers share one bucket: stricter, never looser
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{IPV6_PREFIX_LENGTH}", strict=False).network_address)
    return str(ip)


def _digest(kind: str, value: str) -> str:
    return salted_hmac(f"accounts.login_throttle.{kind}", value, algorithm="sha256").hexdigest()[:32]


def _now_ms() -> str:
    """'' lets the script read Redis's clock, shared by every web process. Tests substitute a fixed clock."""
    return ""


def _call(script: str, keys: list[str], args: list[str | int]) -> list[int]:
    return redis_script_call(script, keys=keys, args=args, exception=ThrottleUnavailable)


def attempt_start(*, account: str, address: str | None) -> Attempt | Lockout:
    """Count a login attempt for `account` from `address`, or refuse it if either is locked.

    Raises ThrottleUnavailable if Redis does not answer.
    """
    account_rate = rate_parse(settings.LOGIN_ATTEMPTS_PER_ACCOUNT)
    address_rate = rate_parse(settings.LOGIN_ATTEMPTS_PER_ADDRESS)
    account_digest = _digest("account", account_normalise(account))
    address_digest = _digest("address", address_normalise(address))
    attempt = Attempt(
        account_key=redis_key("login-throttle", "account", account_digest),
        address_key=redis_key("login-throttle", "address", address_digest),
        account_marker_key=redis_key("login-throttle", "locked", "account", account_digest),
        account_digest=account_digest,
        member=f"{account_digest}:{uuid.uuid4().hex}",
    )
    scope_index, retry_ms, first = _call(
        _ATTEMPT_START,
        keys=[
            attempt.account_key,
            attempt.address_key,
            attempt.account_marker_key,
            redis_key("login-throttle", "locked", "address", address_digest),
        ],
        args=[
            _now_ms(),
            account_rate.limit,
            account_rate.window_seconds * 1000,
            address_rate.limit,
            address_rate.window_seconds * 1000,
            attempt.member,
        ],
    )
    if scope_index == 0:
        return attempt
    return Lockout(
        scope=SCOPES[scope_index - 1], retry_after_seconds=max(1, math.ceil(retry_ms / 1000)), first_refusal=first == 1
    )


def _attempt_finish(attempt: Attempt, *, login_done: bool) -> None:
    _call(
        _ATTEMPT_FINISH,
        keys=[attempt.account_key, attempt.address_key, attempt.account_marker_key],
        args=[attempt.member, f"{attempt.account_digest}:", "1" if login_done else "0"],
    )


def attempt_not_counted(attempt: Attempt) -> None:
    """Take the attempt back: nothing was checked (empty field), or the password was right but MFA is pending."""
    _attempt_finish(attempt, login_done=False)


def attempt_failed(attempt: Attempt) -> None:
    """The credential was wrong. The attempt was counted when it started: nothing more to store.

    Kept as a call so that each outcome is explicit where it happens.
    """


def login_succeeded(attempt: Attempt) -> None:
    """The person is fully logged in: forget the account's failures, and its failures at this address."""
    _attempt_finish(attempt, login_done=True)


def lockout_record(*, request: HttpRequest, lockout: Lockout, account: str) -> None:
    """One `auth.locked_out` event per lockout; the account appears only as its public id, if it exists."""
    if not lockout.first_refusal:
        return
    from accounts.models import User
    from audit.models import AuditEvent
    from audit.services.events import Actor, audit_event_record

    public_id = (
        User.objects.filter(email__iexact=(account or "").strip()[:MAX_ACCOUNT_LENGTH])
        .values_list("public_id", flat=True)
        .first()
    )
    match = getattr(request, "resolver_match", None)
    audit_event_record(
        event_type="auth.locked_out",
        outcome=AuditEvent.Outcome.DENIED,
        actor=Actor(user=str(public_id)) if public_id else Actor(),
        object_type="login",
        object_id=(match.view_name if match is not None else "") or "",
        payload={"scope": lockout.scope},
        request=request,
    )
