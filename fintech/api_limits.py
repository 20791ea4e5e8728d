"""The API's rate-limit policies: data in settings, turned into the buckets one request takes (issue 13).

`RATE_LIMIT_POLICIES` (fintech/settings/rate_limits.py, documented in ADR
0017) names each policy: its sustained rate, its burst, what it is keyed by
(the client address, the user, the OAuth client) and what happens when Redis
does not answer (`closed`: refuse with 503; `open`: let the request through,
with a log line and a metric). Optional `tiers` give a customer tier (the
customer profile's) or a partner tier (`RATE_LIMIT_CLIENT_TIERS`) its own
rate and burst. `RATE_LIMIT_GROUPS` says which policies each endpoint group
takes; a request takes every policy of its group whose key it has (an
unauthenticated call has no user bucket).

Keys are hashed: a claimed client id or an address is attacker-chosen text,
never a Redis key as such. IPv6 addresses are keyed by their /64, the block
one subscriber gets, so rotating through it does not buy fresh buckets.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from fintech.rate_limits import rate_parse
from fintech.redis_client import redis_key
from fintech.token_buckets import Bucket, BucketState

KEY_KINDS = ("address", "user", "client")
FAIL_POLICIES = ("closed", "open")
# The draft whose header fields we send: draft-ietf-httpapi-ratelimit-headers-10 (structured fields).


@dataclass(frozen=True, slots=True)
class Rate:
    limit: int
    period_seconds: int
    burst: int


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    key: str  # one of KEY_KINDS
    fail: str  # one of FAIL_POLICIES
    rate: Rate
    tiers: dict[str, Rate] = field(default_factory=dict)

    def rate_for(self, tier: str | None) -> Rate:
        return self.tiers.get(tier or "", self.rate)


@dataclass(frozen=True, slots=True)
class Principals:
    """Who a request is, as far as limits go: each part present only when the request proved (or claimed) it."""

    address: str = ""
    user: str = ""  # the user's public id
    user_tier: str = ""
    client: str = ""  # OAuth client id (verified, or claimed at the token endpoint)
    client_tier: str = ""
    client_verified: bool = False  # False: the id a token request claims, before the server checked it

    def of(self, kind: str) -> tuple[str, str]:
        return {
            "address": (self.address, ""),
            "user": (self.user, self.user_tier),
            "client": (self.client, self.client_tier),
        }[kind]


def _rate_of(name: str, spec: dict[str, Any]) -> Rate:
    try:
        parsed = rate_parse(spec["rate"])
        burst = int(spec.get("burst", parsed.limit))
    except (KeyError, TypeError, ValueError) as error:
        raise ImproperlyConfigured(f"RATE_LIMIT_POLICIES[{name!r}]: {error}") from error
    if burst < 1:
        raise ImproperlyConfigured(f"RATE_LIMIT_POLICIES[{name!r}]: the burst is at least 1")
    return Rate(limit=parsed.limit, period_seconds=parsed.window_seconds, burst=burst)


def _policy_of(name: str, spec: dict[str, Any]) -> Policy:
    if spec.get("key") not in KEY_KINDS or spec.get("fail") not in FAIL_POLICIES:
        raise ImproperlyConfigured(f"RATE_LIMIT_POLICIES[{name!r}]: key in {KEY_KINDS}, fail in {FAIL_POLICIES}")
    tiers = {tier: _rate_of(f"{name}.{tier}", tier_spec) for tier, tier_spec in spec.get("tiers", {}).items()}
    return Policy(name=name, key=spec["key"], fail=spec["fail"], rate=_rate_of(name, spec), tiers=tiers)


def _parsed(
    policies_spec: dict[str, dict], groups_spec: dict[str, tuple[str, ...]]
) -> tuple[dict[str, Policy], dict[str, tuple[Policy, ...]]]:
    policies = {name: _policy_of(name, spec) for name, spec in policies_spec.items()}
    groups = {}
    for group, names in groups_spec.items():
        unknown = [name for name in names if name not in policies]
        if unknown:
            raise ImproperlyConfigured(f"RATE_LIMIT_GROUPS[{group!r}] names unknown policies {unknown}")
        groups[group] = tuple(policies[name] for name in names)
    return policies, groups


_parsed_for: list = []  # [(policies setting, groups setting, parsed)]: one entry, replaced when they change


def policies_table() -> tuple[dict[str, Policy], dict[str, tuple[Policy, ...]]]:
    """(policies by name, policies by group), parsed once per settings value; raises ImproperlyConfigured.

    Kept while the settings hold the very same objects (an override is a new object: parsed again).
    """
    policies_spec, groups_spec = settings.RATE_LIMIT_POLICIES, settings.RATE_LIMIT_GROUPS
    cached = _parsed_for[0] if _parsed_for else None
    if cached is None or cached[0] is not policies_spec or cached[1] is not groups_spec:
        cached = (policies_spec, groups_spec, _parsed(policies_spec, groups_spec))
        _parsed_for[:] = [cached]
    return cached[2]


def group_policies(group: str) -> tuple[Policy, ...]:
    return policies_table()[1][group]


def address_key(address: str) -> str:
    """The address as a bucket sees it: IPv4 as is, IPv6 by its /64 (one subscriber's block)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


def principal_digest(value: str) -> str:
    """What a key holds of a principal (an address, a user or client id): a digest, never the value."""
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Applied:
    """One policy as this request takes it."""

    policy: Policy
    principal: str  # what the bucket is keyed by, for the audit event (address, user public id, client id)
    bucket: Bucket


def applied_policies(group: str, principals: Principals) -> list[Applied]:
    """The buckets this request takes: each policy of its group whose key the request has."""
    applied = []
    for policy in group_policies(group):
        value, tier = principals.of(policy.key)
        if not value:
            continue
        if policy.key == "address":
            value = address_key(value)
        rate = policy.rate_for(tier)
        key = redis_key("rl", policy.name, principal_digest(value))
        bucket = Bucket(key=key, limit=rate.limit, period_seconds=rate.period_seconds, burst=rate.burst)
        applied.append(Applied(policy=policy, principal=value, bucket=bucket))
    return applied


def headers_for(applied: list[Applied], states: tuple[BucketState, ...]) -> dict[str, str]:
    """`RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers-10) for the policies taken.

    A policy: its sustained quota `q` per window `w` seconds. The current
    state: `r` tokens left now (at most the burst), `t` seconds until the
    bucket is full again. Every policy that applied is listed, the closest
    to empty first, so a client reading only the first item reads the one
    that will stop it.
    """
    if not applied:
        return {}
    ordered = sorted(zip(applied, states, strict=True), key=lambda pair: pair[1].remaining)
    return {
        "RateLimit-Policy": ", ".join(
            f'"{item.policy.name}";q={item.bucket.limit};w={item.bucket.period_seconds}' for item, _ in ordered
        ),
        "RateLimit": ", ".join(
            f'"{item.policy.name}";r={state.remaining};t={state.reset_seconds}' for item, state in ordered
        ),
    }
