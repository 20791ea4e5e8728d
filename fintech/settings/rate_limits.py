"""The default rate-limit policies (issue 13): data, read by fintech/api_limits.py; ADR 0017 says why each.

Pure data: imported by base.py, which lets `RATE_LIMIT_POLICIES_JSON` (the
environment, .env.example) override any policy's fields per deployment.
Rates use the "N/[M]unit" notation (s, m, h, d); `burst` is how many may come
at once (the bucket's size). `key`: what one bucket counts (`address`: the
client address, IPv6 by /64; `user`: the verified user; `client`: the OAuth
client). `fail`: what happens when Redis does not answer (`closed`: 503,
`open`: let it through). `tiers`: a customer tier (standard, premium,
business) or a partner tier (RATE_LIMIT_CLIENT_TIERS) with its own numbers.
"""

from __future__ import annotations

DEFAULT_POLICIES: dict[str, dict] = {
    # --- authentication: money and identities are one guess away -----------------------------
    # Token, introspection and revocation requests per address, and per (client id, address) for requests
    # that send a secret (each an argon2 check): a partner needs a few tokens an hour; a carrier NAT many
    # devices. Not per client id alone: whoever knows a partner's id could spend its allowance.
    "oauth_token.address": {"key": "address", "rate": "300/1m", "burst": 60, "fail": "closed"},
    "oauth_token.client": {"key": "client", "rate": "60/1m", "burst": 20, "fail": "closed"},
    "oauth_authorize.address": {"key": "address", "rate": "120/1m", "burst": 30, "fail": "closed"},
    "oauth_authorize.user": {"key": "user", "rate": "30/1m", "burst": 10, "fail": "closed"},
    "oauth_userinfo.user": {"key": "user", "rate": "120/1m", "burst": 30, "fail": "open"},
    # Login, second factor, password reset and invitation pages, and the admin's login, per address.
    # Failed logins are counted apart (accounts/login_throttle.py: LOGIN_ATTEMPTS_PER_ACCOUNT 5/15m,
    # LOGIN_ATTEMPTS_PER_ADDRESS 50/15m); this bounds the requests themselves, generously: an office of
    # sixty arriving at nine, each mistyping once, is about 240 requests. Fails open: those forms check
    # nothing without Redis anyway (their own counters fail closed, with a page people can read).
    "login_form.address": {"key": "address", "rate": "600/1m", "burst": 300, "fail": "open"},
    # Per-client policies below apply to confidential clients (partner servers) only: the mobile app's
    # customers are each counted by their own user buckets, never together.
    # --- money-moving writes (transfers, reversals, holds, captures, voids, credit charges) ------
    "money_write.user": {
        "key": "user", "rate": "100/1m", "burst": 20, "fail": "closed",
        "tiers": {"business": {"rate": "300/1m", "burst": 60}},
    },
    "money_write.client": {
        "key": "client", "rate": "1000/1m", "burst": 200, "fail": "closed",
        "tiers": {"premium": {"rate": "5000/1m", "burst": 1000}},
    },
    # --- other writes (opening accounts, identity capture, detokenization) --------------------
    "api_write.user": {"key": "user", "rate": "60/1m", "burst": 20, "fail": "closed"},
    "api_write.client": {
        "key": "client", "rate": "600/1m", "burst": 100, "fail": "closed",
        "tiers": {"premium": {"rate": "3000/1m", "burst": 500}},
    },
    # --- reads: a broken limiter should not stop customers seeing their money ----------------
    "api_read.user": {"key": "user", "rate": "600/1m", "burst": 100, "fail": "open"},
    "api_read.client": {
        "key": "client", "rate": "3000/1m", "burst": 500, "fail": "open",
        "tiers": {"premium": {"rate": "12000/1m", "burst": 2000}},
    },
    # Every authenticated call also counts against its address, as a backstop against many accounts
    # used from one place: sized for an office of a few hundred people, so no single user reaches it.
    "api.address": {"key": "address", "rate": "6000/1m", "burst": 1000, "fail": "open"},
    # /v1 calls without a verified credential: they can only be refused, so they get little.
    "unauthenticated.address": {"key": "address", "rate": "60/1m", "burst": 30, "fail": "open"},
    # The schema, the docs page, the signing keys and discovery metadata, per address: public, but the schema
    # is built on every request.
    "public_docs.address": {"key": "address", "rate": "120/1m", "burst": 30, "fail": "open"},
    # The vault role's internal API, per calling address (the API role's hosts).
    "vault_internal.address": {"key": "address", "rate": "30000/1m", "burst": 3000, "fail": "closed"},
}  # fmt: skip

DEFAULT_GROUPS: dict[str, tuple[str, ...]] = {
    "oauth_token": ("oauth_token.address", "oauth_token.client"),
    "oauth_authorize": ("oauth_authorize.address", "oauth_authorize.user"),
    "oauth_userinfo": ("oauth_userinfo.user", "api.address"),
    "public_docs": ("public_docs.address",),
    "login_form": ("login_form.address",),
    "money_write": ("money_write.user", "money_write.client", "api.address"),
    "api_write": ("api_write.user", "api_write.client", "api.address"),
    "api_read": ("api_read.user", "api_read.client", "api.address"),
    "unauthenticated": ("unauthenticated.address",),
    "vault_internal": ("vault_internal.address",),
}
