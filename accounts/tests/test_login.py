"""The password step and its throttle, against real PostgreSQL and real Redis.

Each test gets its own Redis key prefix, so runs sharing the server (a
`make run`, another engineer's tests) never share counters with it.
"""

from __future__ import annotations

import json
import threading
from urllib.parse import quote

import pytest

from accounts import login_throttle
from accounts.login_throttle import Attempt, Lockout, address_normalise, rate_parse
from accounts.models import User
from accounts.services import customer_create
from audit.models import AuditEvent

PASSWORD = "correct horse battery staple"
WRONG = "wrong horse battery staple"
LOGIN = "/accounts/login/"
# A fixed-window boundary for a 15-minute window: 900 000 ms divides it.
WINDOW_EDGE_MS = 1_800_000_000_000


pytestmark = pytest.mark.usefixtures("isolated_throttle")


class FakeClock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def advance(self, *, seconds: float) -> None:
        self.now_ms += round(seconds * 1000)


@pytest.fixture
def clock(monkeypatch):
    """The throttle's clock (normally Redis's TIME), fixed one second before a window edge."""
    fake = FakeClock(WINDOW_EDGE_MS - 1000)
    monkeypatch.setattr(login_throttle, "_now_ms", lambda: str(fake.now_ms))
    return fake


def password_login(client, email: str, password: str, *, address: str = "198.51.100.10", next_path: str = ""):
    data = {"username": email, "password": password}
    if next_path:
        data["next"] = next_path
    return client.post(LOGIN, data, REMOTE_ADDR=address)


def logged_in_user_id(client) -> str | None:
    return client.session.get("_auth_user_id")


def events(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("id"))


# --- the password step ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_login_page_is_accessible_and_has_no_inline_script(client):
    response = client.get(LOGIN)

    assert response.status_code == 200
    body = response.content.decode()
    assert '<label for="id_username">Email</label>' in body
    assert '<label for="id_password">Password</label>' in body
    assert 'autocomplete="current-password"' in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert "<script" not in body


@pytest.mark.django_db
def test_a_customer_without_mfa_is_logged_in_by_the_password_and_offered_mfa(client):
    user = customer_create(email="alice@example.com", password=PASSWORD)

    response = password_login(client, "Alice@Example.com", PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/"
    assert logged_in_user_id(client) == str(user.pk)
    assert "mfa_verified_at" not in client.session
    home = client.get("/accounts/")
    assert home.status_code == 200
    assert 'href="/accounts/mfa/setup/"' in home.content.decode()
    assert [e.actor_user for e in events("auth.login")] == [str(user.public_id)]


@pytest.mark.django_db
def test_a_wrong_password_is_refused_with_an_alert(client):
    customer_create(email="alice@example.com", password=PASSWORD)

    response = password_login(client, "alice@example.com", WRONG)

    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert "did not match" in response.content.decode()
    assert logged_in_user_id(client) is None
    assert len(events("auth.failed")) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("next_path", "expected"),
    [
        ("/accounts/mfa/setup/?from=login", "/accounts/mfa/setup/?from=login"),
        ("https://evil.example/steal", "/accounts/"),
        ("//evil.example/steal", "/accounts/"),
        ("/\\evil.example/steal", "/accounts/"),
        ("http://testserver/accounts/", "/accounts/"),
        ("javascript:alert(1)", "/accounts/"),
        ("/accounts/login/", "/accounts/"),
    ],
)
def test_next_is_honoured_only_for_same_site_relative_paths(client, next_path, expected):
    customer_create(email="alice@example.com", password=PASSWORD)

    response = password_login(client, "alice@example.com", PASSWORD, next_path=next_path)

    assert response.status_code == 302
    assert response["Location"] == expected


# --- throttling: per account ------------------------------------------------------------------


@pytest.mark.django_db
def test_five_failures_lock_the_account_and_the_sixth_attempt_is_refused_even_with_the_right_password(client, clock):
    user = customer_create(email="alice@example.com", password=PASSWORD)
    for _ in range(5):
        assert password_login(client, "alice@example.com", WRONG).status_code == 200

    response = password_login(client, "alice@example.com", PASSWORD)

    assert response.status_code == 429
    assert response["Retry-After"] == "900"  # all five failures at one instant: the full 15 minutes
    body = response.content.decode()
    assert 'role="alert"' in body
    assert "Too many failed sign-in attempts for this account." in body
    assert "try again in about 15 minutes" in body
    assert logged_in_user_id(client) is None
    # The password was not even checked: no sixth failure, no login.
    assert len(events("auth.failed")) == 5
    assert events("auth.login") == []
    # Another account at the same address is not affected.
    other = customer_create(email="bob@example.com", password=PASSWORD)
    assert password_login(client, "bob@example.com", PASSWORD).status_code == 302
    assert logged_in_user_id(client) == str(other.pk)
    assert user.pk != other.pk


@pytest.mark.django_db
def test_the_account_lock_holds_for_every_address_and_spelling_of_the_email(client, clock):
    customer_create(email="alice@example.com", password=PASSWORD)
    for number in range(5):
        password_login(client, "alice@example.com", WRONG, address=f"192.0.2.{number + 1}")

    assert password_login(client, " ALICE@example.COM ", PASSWORD, address="203.0.113.99").status_code == 429


@pytest.mark.django_db
def test_the_lockout_is_recorded_once_per_lockout_and_never_with_the_email(client, clock):
    user = customer_create(email="alice.secret@example.com", password=PASSWORD)
    for _ in range(5):
        password_login(client, "alice.secret@example.com", WRONG)
    for _ in range(3):
        assert password_login(client, "alice.secret@example.com", PASSWORD).status_code == 429

    locked = events("auth.locked_out")
    assert len(locked) == 1
    assert locked[0].outcome == "denied"
    assert locked[0].object_type == "login"
    assert locked[0].payload == {"scope": "account"}
    assert locked[0].actor_user == str(user.public_id)
    assert locked[0].source_ip == "198.51.100.10"

    # A second lockout, after the first expired, is a new event.
    clock.advance(seconds=900)
    for _ in range(5):
        assert password_login(client, "alice.secret@example.com", WRONG).status_code == 200
    assert password_login(client, "alice.secret@example.com", PASSWORD).status_code == 429
    assert len(events("auth.locked_out")) == 2

    trail = [
        json.dumps(
            [e.payload, e.actor_user, e.actor_staff, e.actor_client, e.object_id, e.object_type, e.user_agent],
            default=str,
        )
        for e in AuditEvent.objects.all()
    ]
    assert trail  # the trail has events (failures, lockouts) ...
    assert not any("alice.secret" in entry for entry in trail)  # ... and none names the email


@pytest.mark.django_db
def test_a_lockout_of_an_unknown_email_has_no_actor_and_looks_the_same(client, clock):
    for _ in range(5):
        password_login(client, "nobody@example.com", WRONG)

    response = password_login(client, "nobody@example.com", WRONG)

    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    (locked,) = events("auth.locked_out")
    assert (locked.actor_user, locked.actor_staff, locked.actor_client) == ("", "", "")
    assert locked.payload == {"scope": "account"}


@pytest.mark.django_db
def test_a_success_clears_the_account_counter(client, clock):
    customer_create(email="alice@example.com", password=PASSWORD)
    for _ in range(4):
        password_login(client, "alice@example.com", WRONG)
    assert password_login(client, "alice@example.com", PASSWORD).status_code == 302
    client.post("/accounts/logout/")

    # Five fresh failures are allowed again; only the sixth attempt is refused.
    for _ in range(5):
        assert password_login(client, "alice@example.com", WRONG).status_code == 200
    assert password_login(client, "alice@example.com", PASSWORD).status_code == 429


@pytest.mark.django_db
def test_empty_fields_do_not_count(client):
    customer_create(email="alice@example.com", password=PASSWORD)
    for _ in range(10):
        assert password_login(client, "alice@example.com", "").status_code == 200

    assert password_login(client, "alice@example.com", PASSWORD).status_code == 302
    assert events("auth.failed") == []


# --- throttling: per address ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_address_limit_is_independent_of_the_account_limit(client, clock):
    victim = customer_create(email="victim@example.com", password=PASSWORD)
    for number in range(50):  # one failure on each of 50 accounts: no account reaches its limit
        assert password_login(client, f"guess{number}@example.com", WRONG, address="203.0.113.5").status_code == 200

    refused = password_login(client, "victim@example.com", PASSWORD, address="203.0.113.5")

    assert refused.status_code == 429
    assert refused["Retry-After"] == "900"
    assert "Too many failed sign-in attempts from your network." in refused.content.decode()
    (locked,) = events("auth.locked_out")
    assert locked.payload == {"scope": "address"}
    assert locked.actor_user == str(victim.public_id)
    # The same account from another address is fine: the account itself has no failures.
    assert password_login(client, "victim@example.com", PASSWORD, address="198.51.100.77").status_code == 302
    assert logged_in_user_id(client) == str(victim.pk)


@pytest.mark.django_db
def test_thirty_accounts_behind_one_address_each_failing_once_still_log_in(client):
    users = [customer_create(email=f"colleague{n}@example.com", password=PASSWORD) for n in range(30)]
    for user in users:
        assert password_login(client, user.email, WRONG, address="192.0.2.200").status_code == 200

    for user in users:
        response = password_login(client, user.email, PASSWORD, address="192.0.2.200")
        assert response.status_code == 302
        assert logged_in_user_id(client) == str(user.pk)
        client.post("/accounts/logout/")

    assert events("auth.locked_out") == []


@pytest.mark.django_db
def test_an_office_of_sixty_each_mistyping_once_is_never_locked_out(client):
    """A success forgives that account's own failures at the address: typos followed by the right password."""
    users = [customer_create(email=f"office{n}@example.com", password=PASSWORD) for n in range(60)]

    for user in users:
        assert password_login(client, user.email, WRONG, address="192.0.2.201").status_code == 200
        assert password_login(client, user.email, PASSWORD, address="192.0.2.201").status_code == 302
        client.post("/accounts/logout/")

    assert events("auth.locked_out") == []
    assert len(events("auth.login")) == 60


def test_ipv6_addresses_of_one_slash_64_count_as_one_address():
    assert address_normalise("2001:db8:1:2::1") == address_normalise("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert address_normalise("2001:db8:1:2::1") != address_normalise("2001:db8:1:3::1")
    assert address_normalise("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_normalise("192.0.2.1") == "192.0.2.1"
    assert address_normalise("") == "unknown"


def test_rates_use_django_ratelimit_notation_and_bad_ones_fail_loudly():
    assert rate_parse("5/15m") == login_throttle.Rate(limit=5, window_seconds=900)
    assert rate_parse("50/15m") == login_throttle.Rate(limit=50, window_seconds=900)
    assert rate_parse("10/h") == login_throttle.Rate(limit=10, window_seconds=3600)
    for bad in ("5", "0/15m", "5/15x", "five/m", ""):
        with pytest.raises(ValueError):
            rate_parse(bad)


# --- throttling: no burst at a window edge, no race ----------------------------------------------


@pytest.mark.django_db
def test_no_burst_of_twice_the_limit_gets_through_at_a_window_edge(client, clock):
    """A fixed 15-minute window would reset at WINDOW_EDGE_MS and let five more guesses through."""
    customer_create(email="alice@example.com", password=PASSWORD)
    for _ in range(5):  # one second before the edge
        assert password_login(client, "alice@example.com", WRONG).status_code == 200

    clock.advance(seconds=2)  # one second after the edge
    after_edge = [password_login(client, "alice@example.com", WRONG).status_code for _ in range(5)]

    assert after_edge == [429] * 5
    assert len(events("auth.failed")) == 5  # only five passwords were ever checked

    clock.advance(seconds=900 - 2 - 0.001)  # 1 ms before the first failure is 15 minutes old
    assert password_login(client, "alice@example.com", PASSWORD).status_code == 429
    clock.advance(seconds=0.002)
    assert password_login(client, "alice@example.com", PASSWORD).status_code == 302


@pytest.mark.django_db
def test_at_most_five_passwords_are_checked_in_any_fifteen_minutes(client, clock, settings):
    """Guess every 20 seconds for 2 hours; count the checks in every sliding 15-minute span.

    The two hours pass on the test clock, which the request limiter (Redis's clock) does not see: its
    per-address request bucket is widened here so this test measures the failure counter alone."""
    settings.RATE_LIMIT_POLICIES = {
        **settings.RATE_LIMIT_POLICIES,
        "login_form.address": {**settings.RATE_LIMIT_POLICIES["login_form.address"], "burst": 1000},
    }
    customer_create(email="alice@example.com", password=PASSWORD)
    checked_at_ms: list[int] = []
    for _ in range(360):
        if password_login(client, "alice@example.com", WRONG).status_code == 200:
            checked_at_ms.append(clock.now_ms)
        clock.advance(seconds=20)

    worst = max(sum(1 for t in checked_at_ms if start <= t < start + 900_000) for start in checked_at_ms)
    assert worst == 5
    assert len(checked_at_ms) == 40  # 5 per 15 minutes (the window reopens at 900 s, next tick 900 s): 8 spans


def test_concurrent_attempts_never_exceed_the_limit(settings):
    barrier = threading.Barrier(20)
    outcomes: list[Attempt | Lockout] = []
    lock = threading.Lock()

    def guess() -> None:
        barrier.wait()
        outcome = login_throttle.attempt_start(account="race@example.com", address="192.0.2.50")
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert sum(isinstance(o, Attempt) for o in outcomes) == 5
    assert sum(isinstance(o, Lockout) for o in outcomes) == 15
    assert sum(o.first_refusal for o in outcomes if isinstance(o, Lockout)) == 1


# --- Redis down -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_redis_down_answers_503_and_checks_nothing(client, settings):
    customer_create(email="alice@example.com", password=PASSWORD)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    response = password_login(client, "alice@example.com", PASSWORD)

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    body = response.content.decode()
    assert "Sign-in is temporarily unavailable" in body
    assert 'role="alert"' in body
    assert logged_in_user_id(client) is None
    assert events("auth.failed") == []
    assert events("auth.login") == []
    assert client.get(LOGIN).status_code == 200  # the page itself still renders


@pytest.mark.django_db
def test_a_logged_in_user_visiting_the_login_page_goes_to_next(client):
    user = customer_create(email="alice@example.com", password=PASSWORD)
    client.force_login(user)

    response = client.get(f"{LOGIN}?next={quote('/accounts/?tab=1')}")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/?tab=1"
    assert User.objects.count() == 1
