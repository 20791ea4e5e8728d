"""The request limiter in front of every API door (issue 13, ADR 0017).

Runs in `process_view`, once the route is known and before the view: each
request is put in an endpoint group (the view's `rate_limit_group`, a route
name in ROUTE_GROUPS, or for /v1 views its method), its principals are found
(the client address through TRUSTED_PROXIES only; the user and client of a
verified bearer token, looked up once and handed on to DRF's authentication;
the session user; the client id a token request claims), and every bucket of
the group's policies is taken in one Redis round trip (fintech.token_buckets).

Answers: a refusal is a 429 problem (`rate_limited`, the policy, Retry-After;
a page with the same words on the login forms);
every limited response carries `RateLimit-Policy` and `RateLimit`. When Redis
does not answer, a group with any `closed` policy is refused with 503
`rate_limit_unavailable`; an all-`open` group goes through. Either way a log
line and `rate_limit_unavailable_total` say so.
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import unquote

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter

from fintech.api_limits import Applied, Principals, address_key, applied_policies, headers_for
from fintech.client_address import client_ip
from fintech.rate_limits import RateLimitUnavailable
from fintech.token_buckets import buckets_take
from fintech.views import error_answer

logger = logging.getLogger("fintech.rate_limit")

DECISIONS = Counter("rate_limit_decisions_total", "Limited requests, by group and outcome.", ["group", "outcome"])
UNAVAILABLE = Counter(
    "rate_limit_unavailable_total", "Requests whose limits could not be counted (Redis down), by group and outcome.",
    ["group", "outcome"],
)  # fmt: skip

# Views that are not /v1 API views, by route name. Everything not here and not under /v1 is not limited
# by this middleware (health, metrics, static files, the admin's pages behind its login).
ROUTE_GROUPS = {
    "oauth2_provider:token": "oauth_token",
    "oauth2_provider:introspect": "oauth_token",
    "oauth2_provider:revoke-token": "oauth_token",
    "oauth2_provider:authorize": "oauth_authorize",
    "oauth2_provider:user-info": "oauth_userinfo",
    "login": "login_form",
    "login-mfa": "login_form",
    "mfa-setup": "login_form",
    "password-reset": "login_form",
    "password-reset-confirm": "login_form",
    "staff-invitation": "login_form",
    "staff-invitation-open": "login_form",
    "admin:login": "login_form",
    # Public documents: the schema (built per request), the docs page, keys and discovery metadata.
    "schema": "public_docs",
    "docs": "public_docs",
    "docs-oauth2-redirect": "public_docs",
    "oauth2_provider:jwks-info": "public_docs",
    "oauth2_provider:oidc-connect-discovery-info": "public_docs",
    "oauth2_provider_metadata:oauth-server-metadata": "public_docs",
    "oauth2_provider_metadata:oauth-server-metadata-issuer": "public_docs",
    "oauth2_provider_metadata:oidc-connect-discovery-info-root": "public_docs",
}
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Groups keyed by address alone: forms before anyone has logged in, and the vault role's callers (the
# API role's hosts; their service credential is checked by the view).
ADDRESS_ONLY_GROUPS = frozenset({"login_form", "vault_internal", "public_docs"})
# Groups whose callers must show a bearer token: without a valid one, the call counts as `unauthenticated`.
CREDENTIAL_GROUPS = frozenset({"api_read", "api_write", "money_write", "oauth_userinfo"})


def request_group(request: HttpRequest, view_func) -> str | None:
    """The endpoint group of this request, or None when it is not limited here."""
    view_class = getattr(view_func, "view_class", None) or getattr(view_func, "cls", None)
    declared = getattr(view_class, "rate_limit_group", None)
    if declared is not None:
        return declared or None  # "" opts a view out (it must say why)
    match = request.resolver_match
    if match is not None and match.view_name in ROUTE_GROUPS:
        return ROUTE_GROUPS[match.view_name]
    if request.path_info.startswith("/v1/") and hasattr(view_class, "authentication_classes"):
        return "api_read" if request.method in READ_METHODS else "api_write"
    return None


def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    """(client id, secret) of an HTTP Basic header, decoded as leniently as the OAuth library decodes it."""
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip()).decode("utf-8")
    except ValueError:  # not base64, not ASCII, not UTF-8 (binascii.Error and UnicodeDecodeError are ValueErrors)
        return None
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id), unquote(secret)


def _secret_bearing_client_id(request: HttpRequest) -> str:
    """The client id of a token-endpoint request that sends a client secret anywhere the server would read one.

    A bucket key, not a proof. Only requests with a secret count per client:
    each costs an argon2 check, and guessing is what the bucket bounds. Public
    clients (the mobile app, PKCE) send none; keying them by client id would
    put every customer of the app in one bucket. Whatever the shape (an HTTP
    Basic header, lenient base64, a broken header with the secret in the body,
    a urlencoded or multipart body), the id the server will check is found.
    """
    basic = _basic_credentials(request)
    if basic is not None and basic[1]:
        return basic[0][:100]
    body = request.POST if request.method == "POST" else {}
    if body.get("client_secret"):
        return str(body.get("client_id") or (basic[0] if basic else ""))[:100]
    return ""


def request_principals(request: HttpRequest, group: str) -> Principals:
    address = (
        getattr(request, "client_ip", None) or client_ip(request) or "unknown"
    )  # no peer address (a Unix socket): one shared bucket, never none
    if group == "oauth_token":
        claimed = _secret_bearing_client_id(request)
        # Keyed by client AND address: guesses from one place are bounded, and nobody who merely knows a
        # partner's client id can spend the partner's own allowance from elsewhere (ADR 0017).
        return Principals(address=address, client=f"{claimed} from {address_key(address)}" if claimed else "")
    if group in ADDRESS_ONLY_GROUPS:
        return Principals(address=address)
    from accounts.authentication import bearer_lookup  # identity is the accounts app's (not in the vault role)

    token = bearer_lookup(request)
    if token is not None:
        user, application = token.user, token.application
        profile = getattr(user, "customer_profile", None) if user is not None else None
        # Per-client buckets are for confidential clients (partner servers): a public client's customers
        # (the mobile app) are counted each on their own, never together in one bucket anyone can drain.
        confidential = getattr(application, "client_type", "") == "confidential"
        client = (getattr(application, "client_id", "") or "") if confidential else ""
        return Principals(
            address=address,
            user=str(user.public_id) if user is not None else "",
            user_tier=getattr(profile, "tier", "") or "",
            client=client,
            client_tier=settings.RATE_LIMIT_CLIENT_TIERS.get(client, ""),
            client_verified=bool(client),
        )
    session_user = getattr(request, "user", None)
    if session_user is not None and session_user.is_authenticated:
        return Principals(address=address, user=str(session_user.public_id))
    return Principals(address=address)


class RateLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        for name, value in getattr(request, "rate_limit_headers", {}).items():
            response[name] = value
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        group = request_group(request, view_func)
        if group is None:
            return None
        principals = request_principals(request, group)
        if group in CREDENTIAL_GROUPS and not principals.user and not principals.client:
            group = "unauthenticated"  # no verified credential: only the address counts
        applied = applied_policies(group, principals)
        try:
            result = buckets_take([item.bucket for item in applied])
        except RateLimitUnavailable as error:
            return self._unavailable(request, group, applied, error)
        request.rate_limit_headers = headers_for(applied, result.states)
        if result.allowed:
            DECISIONS.labels(group, "allowed").inc()
            return None
        DECISIONS.labels(group, "refused").inc()
        refused = applied[result.refused_by]
        self._exceeded(request, refused, principals)
        response = error_answer(
            request,
            status=429,
            code="rate_limited",
            title="Too many requests",
            detail=f"Rate limit {refused.policy.name!r} reached; retry after {result.retry_after_seconds} s.",
            policy=refused.policy.name,
            retry_after=result.retry_after_seconds,
        )
        response["Retry-After"] = str(result.retry_after_seconds)
        return response

    def _unavailable(self, request, group: str, applied: list[Applied], error: Exception) -> HttpResponse | None:
        closed = [item.policy.name for item in applied if item.policy.fail == "closed"]
        outcome = "refused" if closed else "allowed"
        UNAVAILABLE.labels(group, outcome).inc()
        logger.error(
            "rate limits unavailable (%s): %s group %s", error.__class__.__name__, outcome, group,
            extra={"event": "rate_limit.unavailable", "group": group, "outcome": outcome},
        )  # fmt: skip
        if not closed:
            return None
        response = error_answer(
            request,
            status=503,
            code="rate_limit_unavailable",
            title="Service temporarily unavailable",
            detail="The request could not be counted against its rate limits; retry shortly.",
        )
        response["Retry-After"] = "5"
        return response

    def _exceeded(self, request, refused: Applied, principals: Principals) -> None:
        from audit.rate_limits import rate_limit_exceeded_record  # the trail is the audit app's

        rate_limit_exceeded_record(
            request,
            policy=refused.policy.name,
            key=refused.policy.key,
            principal=refused.principal,
            user=principals.user,
            client=principals.client if principals.client_verified else "",
        )
