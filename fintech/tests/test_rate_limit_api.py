"""The request limiter on every door (issue 13): each endpoint group refuses once its policy is spent, with
Retry-After and the RateLimit fields, and passes again after the refill; noisy neighbours stay theirs;
Redis down follows each policy's failure rule; refusals leave a bounded trail.

Real Redis, real middleware, the real policy table (or a copy with smaller numbers where the
real ones would take hundreds of requests). Cost: about 6 s.
"""

from __future__ import annotations

import base64
import time

import pytest
from django.urls import get_resolver

from accounts.tests.access_matrix import issue_token
from accounts.tests.oauth_helpers import mobile_client, partner_client
from audit.models import AuditEvent
from fintech.middleware.rate_limit import request_group
from ledger.tests.factories import account, customer

pytestmark = pytest.mark.django_db
SCOPES = "accounts:read accounts:write transfers:read transfers:write"


def _tiny(settings, *, rate: str = "1/1h", burst: int = 1) -> None:
    """Every policy shrunk to `burst` requests: the first refusal comes at once, for every group."""
    settings.RATE_LIMIT_POLICIES = {
        name: {**spec, "rate": rate, "burst": burst, "tiers": {}} for name, spec in settings.RATE_LIMIT_POLICIES.items()
    }


def _bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {issue_token(application=mobile_client(), user=user, scope=SCOPES)}"}


def _assert_limited(response, policy: str) -> None:
    """A 429 with Retry-After and the RateLimit fields; a problem document for API callers, a page on the forms."""
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) >= 1
    assert f'"{policy}";' in response["RateLimit-Policy"] and f'"{policy}";r=0;' in response["RateLimit"]
    if response["Content-Type"].startswith("text/html"):
        assert "Too many requests" in response.content.decode() and policy in response.content.decode()
        return
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["code"], body["policy"]) == ("rate_limited", policy)


def test_unauthenticated_calls_get_their_address_burst_then_429_with_the_fields(client):
    answers = [client.get("/v1/accounts") for _ in range(31)]
    assert [a.status_code for a in answers[:30]] == [401] * 30
    _assert_limited(answers[30], "unauthenticated.address")
    assert answers[0]["RateLimit-Policy"] == '"unauthenticated.address";q=60;w=60'
    assert answers[0]["RateLimit"] == '"unauthenticated.address";r=29;t=1'


def _until_refused(send, *, at_most: int):
    """Send until the first 429 (refills during the run add a few tokens): the answers before it, and it."""
    answers = []
    for _ in range(at_most):
        answers.append(send())
        if answers[-1].status_code == 429:
            return answers[:-1], answers[-1]
    pytest.fail(f"no 429 in {at_most} requests")


def test_a_customers_reads_and_writes_are_counted_per_user_and_the_office_neighbour_is_not_locked_out(client):
    noisy, neighbour = customer(), customer()
    account(owner=noisy), account(owner=neighbour)
    noisy_auth, neighbour_auth = _bearer(noisy), _bearer(neighbour)
    passed, refused = _until_refused(lambda: client.get("/v1/accounts", **noisy_auth), at_most=400)
    assert len(passed) >= 100 and {a.status_code for a in passed} == {200}  # the burst, and what refilled
    _assert_limited(refused, "api_read.user")
    # Same office address, another person: untouched.
    assert client.get("/v1/accounts", **neighbour_auth).status_code == 200
    passed, refused = _until_refused(
        lambda: client.post("/v1/transfers", data={}, content_type="application/json", **noisy_auth), at_most=80
    )
    assert len(passed) >= 20 and {a.status_code for a in passed} == {400}  # counted before the view refuses
    _assert_limited(refused, "money_write.user")


def _basic(client_id: str, secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


@pytest.mark.parametrize(
    ("method", "path", "policy"),
    [
        ("post", "/o/token/", "oauth_token.address"),
        ("post", "/o/introspect/", "oauth_token.address"),
        ("post", "/o/revoke_token/", "oauth_token.address"),
        ("get", "/o/authorize/", "oauth_authorize.address"),
        ("get", "/accounts/login/", "login_form.address"),
        ("get", "/accounts/password/reset/", "login_form.address"),
        ("get", "/admin/login/", "login_form.address"),
        ("get", "/v1/me", "unauthenticated.address"),
        ("get", "/o/userinfo/", "unauthenticated.address"),
        ("get", "/v1/schema", "public_docs.address"),
        ("get", "/.well-known/oauth-authorization-server", "public_docs.address"),
        ("get", "/o/.well-known/jwks.json", "public_docs.address"),
    ],
)
def test_each_anonymous_door_answers_429_once_its_policy_is_spent(client, settings, method, path, policy):
    _tiny(settings)
    first = getattr(client, method)(path)
    assert first.status_code != 429
    _assert_limited(getattr(client, method)(path), policy)


def _token_policies(settings, *, client_burst: int, address_burst: int) -> None:
    _tiny(settings, burst=address_burst)
    settings.RATE_LIMIT_POLICIES = {
        **settings.RATE_LIMIT_POLICIES,
        "oauth_token.client": {**settings.RATE_LIMIT_POLICIES["oauth_token.client"], "burst": client_burst},
    }


def _guess(client, body=None, *, address="198.51.100.7", **headers):
    return client.post("/o/token/", body or {"grant_type": "client_credentials"}, REMOTE_ADDR=address, **headers)


def test_secret_guesses_are_bounded_per_client_and_address_and_cannot_lock_the_partner_out(client, settings):
    _token_policies(settings, client_burst=2, address_burst=10)
    partner, secret = partner_client()
    guesses = [_guess(client, **_basic(partner.client_id, "wrong")).status_code for _ in range(3)]
    assert guesses == [401, 401, 429]
    _assert_limited(_guess(client, **_basic(partner.client_id, "wrong")), "oauth_token.client")
    # The partner, from its own address, is not locked out by someone who only knows its client id.
    assert _guess(client, address="203.0.113.50", **_basic(partner.client_id, secret)).status_code == 200


@pytest.mark.parametrize(
    "shape",
    ["junk_basic_and_body", "lenient_base64", "multipart"],
)
def test_every_shape_of_a_secret_is_counted_for_its_client(client, settings, shape):
    """The review's bypasses: each shape the OAuth library accepts is keyed by the client it names."""
    _token_policies(settings, client_burst=1, address_burst=10)
    partner, _secret = partner_client()
    body = {"grant_type": "client_credentials", "client_id": partner.client_id, "client_secret": "wrong"}
    encoded = base64.b64encode(f"{partner.client_id}:wrong".encode()).decode()
    send = {
        "junk_basic_and_body": lambda: _guess(client, body, HTTP_AUTHORIZATION="Basic !"),
        "lenient_base64": lambda: _guess(client, HTTP_AUTHORIZATION=f"Basic {encoded}!"),
        "multipart": lambda: client.post("/o/token/", body, REMOTE_ADDR="198.51.100.7"),  # the test client's default
    }[shape]
    assert send().status_code == 401
    _assert_limited(send(), "oauth_token.client")


def test_broken_credentials_at_the_token_doors_are_401_never_500(client):
    for path in ("/o/token/", "/o/introspect/", "/o/revoke_token/"):
        nul = base64.b64encode(b"\x00:x").decode()
        for header in ("Basic \xff\xfe", f"Basic {nul}", "Basic \xe9"):
            assert client.post(path, {"token": "x"}, HTTP_AUTHORIZATION=header).status_code in (400, 401, 403)
        answer = client.post(path, {"client_id": "a\x00b", "client_secret": "x", "token": "x"})
        assert answer.status_code in (400, 401, 403), answer.content


def test_the_mobile_apps_customers_never_share_a_bucket(client, settings):
    """The review's finding 1: per-client buckets of a public client would let a few customers lock out all."""
    _tiny(settings, burst=3)
    app = mobile_client()
    first, second = customer(), customer()
    first_auth = {"HTTP_AUTHORIZATION": f"Bearer {issue_token(application=app, user=first, scope=SCOPES)}"}
    second_auth = {"HTTP_AUTHORIZATION": f"Bearer {issue_token(application=app, user=second, scope=SCOPES)}"}
    _, refused = _until_refused(lambda: client.get("/v1/accounts", REMOTE_ADDR="192.0.2.1", **first_auth), at_most=10)
    _assert_limited(refused, "api_read.user")
    assert "api_read.client" not in refused["RateLimit-Policy"]
    assert client.get("/v1/accounts", REMOTE_ADDR="192.0.2.2", **second_auth).status_code == 200


def test_userinfo_is_limited_per_user(client, settings):
    _tiny(settings)
    auth = _bearer(customer())
    assert client.get("/o/userinfo/", **auth).status_code != 429
    _assert_limited(client.get("/o/userinfo/", **auth), "oauth_userinfo.user")


def test_a_spent_bucket_passes_again_after_its_refill(client, settings):
    _tiny(settings, rate="2/1s", burst=1)  # a token every half second
    assert client.get("/v1/accounts").status_code == 401
    assert client.get("/v1/accounts").status_code == 429
    time.sleep(0.6)
    assert client.get("/v1/accounts").status_code == 401


def test_ipv6_clients_are_keyed_by_their_64_block(client, settings):
    _tiny(settings)
    assert client.get("/v1/accounts", REMOTE_ADDR="2001:db8:1:2::1").status_code == 401
    assert client.get("/v1/accounts", REMOTE_ADDR="2001:db8:1:2:ffff::9").status_code == 429
    assert client.get("/v1/accounts", REMOTE_ADDR="2001:db8:1:3::1").status_code == 401


def test_redis_down_money_and_authentication_fail_closed_reads_fail_open(client, settings, redis_server, caplog):
    user = customer()
    account(owner=user)
    auth = _bearer(user)
    settings.REDIS_URL = redis_server.url
    redis_server.stop()

    refused = client.post("/v1/transfers", data={}, content_type="application/json", **auth)
    assert refused.status_code == 503 and refused.json()["code"] == "rate_limit_unavailable"
    assert refused["Retry-After"] == "5"
    assert client.post("/o/token/", {"grant_type": "client_credentials"}).status_code == 503
    assert client.get("/v1/accounts", **auth).status_code == 200
    # The login forms' limiter fails open: their own failure counters need Redis and refuse with a page.
    assert client.get("/accounts/login/").status_code == 200
    logged = [r for r in caplog.records if getattr(r, "event", "") == "rate_limit.unavailable"]
    assert {(r.group, r.outcome) for r in logged} >= {
        ("money_write", "refused"),
        ("oauth_token", "refused"),
        ("api_read", "allowed"),
        ("login_form", "allowed"),
    }


def test_a_flood_leaves_one_event_per_principal_a_minute_capped_per_policy_with_a_count(client, settings):
    from django.conf import settings as live

    from fintech.redis_client import get_redis

    _tiny(settings)
    settings.RATE_LIMIT_AUDIT_EVENTS_PER_MINUTE = 2
    for n in range(4):  # four addresses, each refused three times
        for _ in range(4):
            client.get("/v1/accounts", REMOTE_ADDR=f"192.0.2.{n}")
    events = list(AuditEvent.objects.filter(event_type="rate_limit.exceeded").order_by("id"))
    assert [(e.object_id, e.payload["principal"], e.payload["suppressed"]) for e in events] == [
        ("unauthenticated.address", "192.0.2.0", 0),
        ("unauthenticated.address", "192.0.2.1", 0),
    ]
    assert events[0].outcome == "denied" and events[0].source_ip == "192.0.2.0"
    # The next minute (its counter gone): the next event says how many principals were left out.
    get_redis().delete(f"{live.REDIS_KEY_PREFIX}:rl-audit:count:unauthenticated.address")
    client.get("/v1/accounts", REMOTE_ADDR="192.0.2.9")
    client.get("/v1/accounts", REMOTE_ADDR="192.0.2.9")
    latest = AuditEvent.objects.filter(event_type="rate_limit.exceeded").latest("id")
    assert (latest.payload["principal"], latest.payload["suppressed"]) == ("192.0.2.9", 2)


def test_every_money_moving_view_is_in_the_money_write_group():
    """A new route that moves money cannot fall into the looser write group by forgetting to say so."""
    found = []
    for pattern in _patterns(get_resolver().url_patterns):
        view_class = getattr(pattern.callback, "view_class", None)
        scopes = getattr(view_class, "required_scopes", None)
        scopes = scopes.get("POST", []) if isinstance(scopes, dict) else (scopes or [])
        if "transfers:write" in scopes:
            found.append((str(pattern.pattern), getattr(view_class, "rate_limit_group", None)))
    assert len(found) >= 6
    assert {group for _, group in found} == {"money_write"}, found


def _patterns(patterns):
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            yield from _patterns(pattern.url_patterns)
        else:
            yield pattern


def test_the_vault_roles_internal_views_are_limited_per_address():
    from tokenvault.internal_urls import urlpatterns

    class _Request:
        resolver_match = None
        path_info = "/internal/v1/detokenize"
        method = "POST"

    groups = {request_group(_Request(), p.callback) for p in urlpatterns if "internal/" in str(p.pattern)}
    assert groups == {"vault_internal"}


def test_the_schema_documents_the_429_the_503_and_the_fields_on_every_operation():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = [op for item in schema["paths"].values() for op in item.values() if isinstance(op, dict)]
    assert len(operations) > 10
    for operation in operations:
        responses = operation["responses"]
        assert {"429", "503"} <= set(responses), operation["operationId"]
        assert "Retry-After" in responses["429"]["headers"]
        # Every answer but the limiter's own 503 (Redis down: nothing was counted, so nothing to report).
        assert all({"RateLimit-Policy", "RateLimit"} <= set(r["headers"]) for s, r in responses.items() if s != "503")


def test_a_request_without_a_peer_address_still_takes_an_address_bucket(client, settings):
    """Behind a Unix socket REMOTE_ADDR may be empty: such calls share one bucket rather than escape the limit."""
    _tiny(settings)
    assert client.get("/v1/accounts", REMOTE_ADDR="").status_code == 401
    _assert_limited(client.get("/v1/accounts", REMOTE_ADDR=""), "unauthenticated.address")
