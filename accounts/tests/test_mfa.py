"""TOTP second factor, recovery codes, enrolment and the MFA-only admin, against real PostgreSQL and Redis.

Codes are computed the way an authenticator app computes them, from the
device's own secret and the real clock.
"""

from __future__ import annotations

import base64
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib import admin
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.admin_site import MfaAdminSite
from accounts.mfa import MFA_VERIFIED_AT_SESSION_KEY, session_mfa_verified_at, user_has_mfa
from accounts.mfa.services import totp_enrolment_confirm, totp_enrolment_start
from accounts.services import customer_create, staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa
from audit.models import AuditEvent

PASSWORD = "correct horse battery staple"
LOGIN = "/accounts/login/"
LOGIN_MFA = "/accounts/login/mfa/"
SETUP = "/accounts/mfa/setup/"


pytestmark = pytest.mark.usefixtures("isolated_throttle")


def totp_code(device: TOTPDevice, *, steps_from_now: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_from_now * device.step
    return f"{totp.token():0{device.digits}d}"


def wrong_code(device: TOTPDevice) -> str:
    """A code no tolerated time step (previous, current, next) accepts."""
    accepted = {totp_code(device, steps_from_now=offset) for offset in (-2, -1, 0, 1, 2)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in accepted)


def confirmed_device(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def password_login(client, email: str, password: str = PASSWORD, *, next_path: str = ""):
    data = {"username": email, "password": password}
    if next_path:
        data["next"] = next_path
    return client.post(LOGIN, data, REMOTE_ADDR="198.51.100.20")


def logged_in_user_id(client) -> str | None:
    return client.session.get("_auth_user_id")


def events(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("id"))


def enrolled_with_recovery_codes(user) -> tuple[TOTPDevice, tuple[str, ...]]:
    device = totp_enrolment_start(user=user)
    enrolment = totp_enrolment_confirm(user=user, code=totp_code(device))
    assert enrolment.confirmed
    device.refresh_from_db()
    return device, enrolment.recovery_codes


# --- login with a second factor --------------------------------------------------------------


@pytest.mark.django_db
def test_password_then_totp_logs_in_a_user_with_a_device(client):
    user = customer_create(email="alice@example.com", password=PASSWORD)
    device = confirmed_device(user)

    first = password_login(client, "alice@example.com", next_path="/accounts/?welcome=1")

    assert first.status_code == 302
    assert first["Location"] == LOGIN_MFA
    assert logged_in_user_id(client) is None  # not logged in by the password alone
    page = client.get(LOGIN_MFA)
    assert page.status_code == 200
    body = page.content.decode()
    assert '<label for="id_otp_code">6-digit code</label>' in body
    assert 'autocomplete="one-time-code"' in body
    assert 'inputmode="numeric"' in body
    assert "<script" not in body

    before = timezone.now()
    second = client.post(LOGIN_MFA, {"otp_code": totp_code(device)}, REMOTE_ADDR="198.51.100.20")

    assert second.status_code == 302
    assert second["Location"] == "/accounts/?welcome=1"
    assert logged_in_user_id(client) == str(user.pk)
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    stored = datetime.fromisoformat(client.session[MFA_VERIFIED_AT_SESSION_KEY])
    assert stored.utcoffset() == timedelta(0)
    assert before <= stored <= timezone.now()
    assert [e.actor_user for e in events("auth.login")] == [str(user.public_id)]
    assert [e.payload for e in events("auth.mfa_verified")] == [{"method": "totp"}]
    # What the OAuth authorization view reads on a later request:
    later = client.get("/accounts/")
    assert session_mfa_verified_at(later.wsgi_request) == stored.astimezone(UTC)
    assert later.wsgi_request.user.is_verified() is True
    assert 'href="/accounts/mfa/setup/"' not in later.content.decode()  # no MFA offer once enrolled


@pytest.mark.django_db
def test_a_wrong_totp_code_is_rejected(client):
    user = customer_create(email="alice@example.com", password=PASSWORD)
    device = confirmed_device(user)
    password_login(client, "alice@example.com")

    response = client.post(LOGIN_MFA, {"otp_code": wrong_code(device)}, REMOTE_ADDR="198.51.100.20")

    assert response.status_code == 200
    body = response.content.decode()
    assert '<p class="error" role="alert" id="mfa-error">That code did not match.' in body
    assert 'aria-invalid="true"' in body
    assert logged_in_user_id(client) is None
    assert MFA_VERIFIED_AT_SESSION_KEY not in client.session
    assert events("auth.login") == []
    (failed,) = events("auth.mfa_failed")
    assert failed.outcome == "failure"
    assert failed.actor_user == str(user.public_id)
    assert failed.payload == {"method": "totp", "reason": "mismatch"}


@pytest.mark.django_db
def test_failed_codes_count_against_the_same_account_throttle(client, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # only our throttle, not the device's own back-off
    user = customer_create(email="alice@example.com", password=PASSWORD)
    device = confirmed_device(user)
    password_login(client, "alice@example.com")
    for _ in range(5):
        assert client.post(LOGIN_MFA, {"otp_code": wrong_code(device)}).status_code == 200

    response = client.post(LOGIN_MFA, {"otp_code": totp_code(device)})

    assert response.status_code == 429
    assert 880 <= int(response["Retry-After"]) <= 900
    assert "Too many failed attempts." in response.content.decode()
    assert logged_in_user_id(client) is None
    assert len(events("auth.mfa_failed")) == 5  # the sixth code was not checked
    (locked,) = events("auth.locked_out")
    assert locked.payload == {"scope": "account"}
    assert locked.actor_user == str(user.public_id)
    # The password step of the same account is locked too.
    assert password_login(client, "alice@example.com").status_code == 429


@pytest.mark.django_db
def test_a_correct_password_does_not_reset_failed_codes(client, settings):
    """Otherwise knowing the password would give unlimited guesses at the code."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = customer_create(email="alice@example.com", password=PASSWORD)
    device = confirmed_device(user)
    for _ in range(5):
        assert password_login(client, "alice@example.com").status_code == 302
        assert client.post(LOGIN_MFA, {"otp_code": wrong_code(device)}).status_code == 200

    assert password_login(client, "alice@example.com").status_code == 429


@pytest.mark.django_db
def test_a_recovery_code_works_once(client):
    user = customer_create(email="alice@example.com", password=PASSWORD)
    _, recovery_codes = enrolled_with_recovery_codes(user)
    code = recovery_codes[3]
    password_login(client, "alice@example.com")

    used = client.post(LOGIN_MFA, {"recovery_code": code.upper()}, REMOTE_ADDR="198.51.100.20")

    assert used.status_code == 302
    assert used["Location"] == "/accounts/"
    assert logged_in_user_id(client) == str(user.pk)
    assert client.session[DEVICE_ID_SESSION_KEY] == StaticDevice.objects.get(user=user).persistent_id
    assert StaticToken.objects.filter(device__user=user).count() == 9
    assert [e.payload for e in events("auth.mfa_verified")] == [{"method": "recovery_code", "recovery_codes_left": 9}]

    client.post("/accounts/logout/")
    password_login(client, "alice@example.com")
    again = client.post(LOGIN_MFA, {"recovery_code": code}, REMOTE_ADDR="198.51.100.20")

    assert again.status_code == 200
    assert "That recovery code is not valid or was already used." in again.content.decode()
    assert "<details" in again.content.decode() and " open>" in again.content.decode()
    assert logged_in_user_id(client) is None
    assert StaticToken.objects.filter(device__user=user).count() == 9


@pytest.mark.django_db
def test_recovery_codes_are_stored_only_as_hashes():
    user = customer_create(email="alice@example.com", password=PASSWORD)
    _, recovery_codes = enrolled_with_recovery_codes(user)

    stored = set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
    in_clear = {code.replace("-", "") for code in recovery_codes}
    assert len(recovery_codes) == 10
    assert all(re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}", code) for code in recovery_codes)
    assert len(stored) == 10
    assert stored.isdisjoint(in_clear)


@pytest.mark.django_db
def test_the_second_step_expires_and_cannot_be_reached_without_the_password(client):
    user = customer_create(email="alice@example.com", password=PASSWORD)
    device = confirmed_device(user)

    assert client.get(LOGIN_MFA)["Location"] == LOGIN
    password_login(client, "alice@example.com")
    session = client.session
    pending = session["mfa_pending_login"]
    pending["started_at"] = (timezone.now() - timedelta(minutes=6)).isoformat()
    session["mfa_pending_login"] = pending
    session.save()

    response = client.post(LOGIN_MFA, {"otp_code": totp_code(device)})

    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert logged_in_user_id(client) is None


@pytest.mark.django_db
def test_redis_down_at_the_second_step_answers_503_and_checks_no_code(client, settings):
    user = customer_create(email="alice@example.com", password=PASSWORD)
    device = confirmed_device(user)
    password_login(client, "alice@example.com")
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    response = client.post(LOGIN_MFA, {"otp_code": totp_code(device)})

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "Sign-in is temporarily unavailable" in response.content.decode()
    assert logged_in_user_id(client) is None
    assert events("auth.mfa_verified") == []
    assert events("auth.mfa_failed") == []


# --- enrolment ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_setup_shows_a_qr_code_and_secret_then_confirms_and_shows_ten_recovery_codes_once(client, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # a wrong code then the right one, without waiting a second
    user = customer_create(email="alice@example.com", password=PASSWORD)
    client.force_login(user)

    page = client.get(SETUP)

    assert page.status_code == 200
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed is False
    body = page.content.decode()
    assert '<img class="qr" src="data:image/svg+xml;base64,' in body
    assert 'alt="QR code that adds your Fintech account to an authenticator app.' in body
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    assert " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) in body
    assert 'autocomplete="one-time-code"' in body and 'inputmode="numeric"' in body
    assert "<script" not in body
    assert client.get(SETUP).status_code == 200
    assert TOTPDevice.objects.filter(user=user).count() == 1  # reloading reuses the pending secret

    wrong = client.post(SETUP, {"otp_code": wrong_code(device)})
    assert wrong.status_code == 200
    assert '<p class="error" role="alert" id="setup-error">That code did not match.' in wrong.content.decode()
    assert TOTPDevice.objects.get(pk=device.pk).confirmed is False

    done = client.post(SETUP, {"otp_code": totp_code(device)})

    assert done.status_code == 200
    assert "no-store" in done["Cache-Control"]
    codes = re.findall(r"<li><code>([a-z2-7-]+)</code></li>", done.content.decode())
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert TOTPDevice.objects.get(pk=device.pk).confirmed is True
    assert StaticToken.objects.filter(device__user=user).count() == 10
    assert user_has_mfa(user) is True
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert MFA_VERIFIED_AT_SESSION_KEY in client.session
    (enrolled,) = events("mfa.enrolled")
    assert enrolled.actor_user == str(user.public_id)
    assert enrolled.payload == {"method": "totp", "recovery_codes_issued": 10}
    again = client.get(SETUP)
    assert "Two-step verification is on" in again.content.decode()
    assert not any(code in again.content.decode() for code in codes)  # shown once only


@pytest.mark.django_db
def test_setup_requires_login(client):
    response = client.get(SETUP)

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN}?next={SETUP}"


# --- the admin ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_without_mfa_are_sent_to_enrolment(client):
    staff_create(email="ops@example.com", password=PASSWORD, roles=["operations"])

    login = password_login(client, "ops@example.com", next_path="/admin/")

    assert login.status_code == 302
    assert login["Location"] == f"{SETUP}?next=/admin/"
    admin_page = client.get("/admin/", follow=True)
    assert admin_page.redirect_chain == [
        ("/admin/login/?next=/admin/", 302),
        (f"{SETUP}?next=/admin/", 302),
    ]
    assert admin_page.status_code == 403  # staff enrol only from their invitation link, never here
    assert "Staff accounts must use two-step verification" in admin_page.content.decode()
    assert "invitation link" in admin_page.content.decode()
    assert not TOTPDevice.objects.exists()


@pytest.mark.django_db
def test_staff_with_a_verified_device_get_into_the_admin(client):
    staff = staff_create(email="ops@example.com", password=PASSWORD, roles=["operations"])
    device = confirmed_device(staff)
    assert password_login(client, "ops@example.com", next_path="/admin/")["Location"] == LOGIN_MFA

    verified = client.post(LOGIN_MFA, {"otp_code": totp_code(device)})

    assert verified.status_code == 302
    assert verified["Location"] == "/admin/"
    index = client.get("/admin/")
    assert index.status_code == 200
    assert "Site administration" in index.content.decode()
    assert [e.actor_staff for e in events("auth.mfa_verified")] == [str(staff.public_id)]


@pytest.mark.django_db
def test_staff_with_a_device_but_an_unverified_session_must_prove_it_first(client):
    staff = staff_create(email="ops@example.com", password=PASSWORD, roles=["operations"])
    device = confirmed_device(staff)
    client.force_login(staff)  # e.g. a session opened before the device was enrolled

    refused = client.get("/admin/", follow=True)

    assert refused.redirect_chain[-1] == (f"{LOGIN_MFA}?next=/admin/", 302)
    stepped_up = client.post(f"{LOGIN_MFA}?next=/admin/", {"otp_code": totp_code(device), "next": "/admin/"})
    assert stepped_up["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_customers_never_get_into_the_admin_even_with_mfa(client):
    customer = customer_create(email="alice@example.com", password=PASSWORD)
    device = confirmed_device(customer)
    password_login(client, "alice@example.com", next_path="/admin/")
    client.post(LOGIN_MFA, {"otp_code": totp_code(device)})
    assert logged_in_user_id(client) == str(customer.pk)

    response = client.get("/admin/", follow=True)

    assert response.redirect_chain == [("/admin/login/?next=/admin/", 302)]
    assert response.status_code == 403
    assert "This account cannot open the back office." in response.content.decode()
    assert client.get("/admin/accounts/user/").status_code == 302


@pytest.mark.django_db
def test_the_admin_sends_anonymous_visitors_to_the_one_throttled_login(client):
    response = client.get("/admin/", follow=True)

    assert response.redirect_chain == [
        ("/admin/login/?next=/admin/", 302),
        (f"{LOGIN}?next=/admin/", 302),
    ]
    assert response.status_code == 200
    assert client.get("/admin/login/?next=https://evil.example/")["Location"] == f"{LOGIN}?next=/admin/"


@pytest.mark.django_db
def test_the_project_admin_is_the_mfa_admin_site(client):
    if not isinstance(admin.site, MfaAdminSite):
        pytest.skip("apply INSTALLED_APPS 'accounts.admin_site.FintechAdminConfig' (see accounts/admin_site.py)")
    staff = staff_create(email="ops@example.com", password=PASSWORD, roles=["operations"])
    client.force_login(staff)

    assert client.get("/admin/", follow=True).redirect_chain[-1] == (f"{SETUP}?next=/admin/", 302)

    force_login_with_mfa(client, staff)
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_the_test_helper_logs_in_with_a_verified_session(client):
    staff = staff_create(email="ops@example.com", password=PASSWORD, roles=["operations"])

    device = force_login_with_mfa(client, staff)

    assert device.confirmed is True
    response = client.get("/admin/")
    assert response.status_code == 200
    assert session_mfa_verified_at(response.wsgi_request) is not None
