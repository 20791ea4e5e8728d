"""Customers reset their own password by email; staff may only send the email. Real PostgreSQL and Redis.

Mail goes to Django's in-memory outbox (`mailoutbox`). Each test gets its own
Redis key prefix (`isolated_throttle`), so the reset throttle's counters are
never shared with another run.
"""

from __future__ import annotations

import json
import re
import threading
import uuid

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.tokens import default_token_generator
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from oauth2_provider.models import AccessToken, RefreshToken

from accounts.models import User
from accounts.password_macs import password_mac_valid
from accounts.password_reset import (
    PasswordResetLinkInvalid,
    PasswordResetNotAllowed,
    customer_password_reset_complete,
    customer_password_reset_send,
    email_digest,
)
from accounts.services import customer_create, staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa
from accounts.tests.oauth_helpers import exchange_code, mobile_client, obtain_code, pkce_pair, refresh
from audit.models import AuditEvent
from audit.services.events import Actor

OLD_PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "Blue-Walrus-Kettle-1987"
RESET = "/accounts/password/reset/"
SENT = "/accounts/password/reset/sent/"
LINK = re.compile(r"http://testserver/accounts/password/reset/[A-Za-z0-9_-]+/[A-Za-z0-9-]+/")

pytestmark = [pytest.mark.usefixtures("isolated_throttle", "reset_limits"), pytest.mark.django_db]


@pytest.fixture
def reset_limits(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PASSWORD_RESET_REQUESTS_PER_EMAIL = "3/1h"
    settings.PASSWORD_RESET_REQUESTS_PER_ADDRESS = "20/1h"


@pytest.fixture
def customer():
    return customer_create(email="carol@example.com", password=OLD_PASSWORD)


def ask(client, email: str, *, address: str = "198.51.100.20"):
    return client.post(RESET, {"email": email}, REMOTE_ADDR=address)


def link_in(message) -> str:
    match = LINK.search(message.body)
    assert match, message.body
    return match.group(0)


def set_password_via(client, link: str, password: str = NEW_PASSWORD):
    """Open the emailed link (token moves into the session), then submit the new password."""
    opened = client.get(link)
    assert opened.status_code == 302, opened.content.decode()[:500]
    form_url = opened["Location"]
    assert form_url.endswith("/set-password/")  # the token left the URL (no Referer leak)
    assert client.get(form_url).context["validlink"] is True
    return client.post(form_url, {"new_password1": password, "new_password2": password})


def events(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type).order_by("id"))


def link_for(user: User, token: str) -> str:
    uidb64 = urlsafe_base64_encode(user.public_id.bytes)
    return reverse("password-reset-confirm", kwargs={"uidb64": uidb64, "token": token})


# --- the link -------------------------------------------------------------------------------------


def test_the_request_page_is_accessible_and_has_no_inline_script(client):
    response = client.get(RESET)

    assert response.status_code == 200
    body = response.content.decode()
    assert '<label for="id_email">Email</label>' in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert "<script" not in body
    assert 'href="/accounts/password/reset/"' in client.get("/accounts/login/").content.decode()


def test_a_customer_resets_with_a_link_that_works_once(client, customer, mailoutbox):
    assert ask(client, "Carol@Example.com").status_code == 302
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["carol@example.com"]
    assert message.subject == "Reset your Fintech password"
    link = link_in(message)
    named = link.removeprefix("http://testserver/accounts/password/reset/").split("/")[0]
    assert uuid.UUID(bytes=urlsafe_base64_decode(named)) == customer.public_id  # never the database key

    done = set_password_via(client, link)

    assert done.status_code == 302
    assert done["Location"] == "/accounts/password/reset/complete/"
    customer.refresh_from_db()
    assert customer.check_password(NEW_PASSWORD)
    assert password_mac_valid(customer)  # the new hash carries its MAC (issue 12)
    assert "_auth_user_id" not in client.session  # nobody is logged in by a link
    again = Client().get(link)
    assert again.status_code == 200
    assert again.context["validlink"] is False
    assert "This link is not valid" in again.content.decode()


def test_an_expired_link_is_refused(client, customer):
    generator = default_token_generator
    issued = generator._num_seconds(generator._now()) - django_settings.PASSWORD_RESET_TIMEOUT - 1
    expired = generator._make_token_with_timestamp(customer, issued, generator.secret)
    assert django_settings.PASSWORD_RESET_TIMEOUT == 3600

    response = client.get(link_for(customer, expired))

    assert response.status_code == 200
    assert response.context["validlink"] is False
    customer.refresh_from_db()
    assert customer.check_password(OLD_PASSWORD)


def test_a_tampered_link_is_refused(client, customer):
    other = customer_create(email="dave@example.com", password=OLD_PASSWORD)
    token = default_token_generator.make_token(customer)
    tampered = token[:-1] + ("a" if token[-1] != "a" else "b")

    for path in (
        link_for(customer, tampered),
        link_for(other, token),  # carol's token on dave's id
        f"/accounts/password/reset/not-an-id/{token}/",
        f"/accounts/password/reset/{urlsafe_base64_encode(uuid.uuid4().bytes)}/{token}/",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.context["validlink"] is False, path
    # Posting straight to the form URL without a token in the session changes nothing either.
    form_url = link_for(customer, "set-password")
    client.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    customer.refresh_from_db()
    assert customer.check_password(OLD_PASSWORD)


def test_a_weak_new_password_is_refused_and_the_link_still_works(client, customer, mailoutbox):
    ask(client, customer.email)
    link = link_in(mailoutbox[0])
    form_url = client.get(link)["Location"]

    response = client.post(form_url, {"new_password1": "password", "new_password2": "password"})

    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()
    assert set_password_via(client, link).status_code == 302


def test_a_reset_link_for_a_staff_account_is_refused_even_with_a_valid_token(client):
    staff = staff_create(email="ops@fintech.example", password=OLD_PASSWORD, roles=["operations"])
    token = default_token_generator.make_token(staff)  # made by hand: the flow never emails one

    response = client.get(link_for(staff, token))

    assert response.context["validlink"] is False
    with pytest.raises(PasswordResetNotAllowed):
        customer_password_reset_complete(user=staff, token=token, password=NEW_PASSWORD)
    staff.refresh_from_db()
    assert staff.check_password(OLD_PASSWORD)


# --- one answer for everyone ---------------------------------------------------------------------------


def test_unknown_staff_and_inactive_emails_get_the_customer_answer_and_no_email(customer, mailoutbox):
    staff_create(email="sec@fintech.example", password=OLD_PASSWORD, roles=["security_admin"])
    User.objects.create_superuser(email="root@fintech.example", password=OLD_PASSWORD)
    inactive = customer_create(email="gone@example.com", password=OLD_PASSWORD)
    User.objects.filter(pk=inactive.pk).update(is_active=False)

    answers = []
    for number, email in enumerate(
        ["carol@example.com", "nobody@example.com", "sec@fintech.example", "root@fintech.example", "gone@example.com"]
    ):
        browser = Client()
        response = ask(browser, email, address=f"198.51.100.{number + 1}")
        page = browser.get(response["Location"])
        answers.append((response.status_code, response["Location"], page.status_code, page.content))

    assert all(answer == answers[0] for answer in answers)
    assert answers[0][:3] == (302, SENT, 200)
    assert [message.to for message in mailoutbox] == [["carol@example.com"]]


def test_a_request_is_audited_without_the_email_in_clear(client, customer, mailoutbox):
    staff = staff_create(email="sec@fintech.example", password=None, roles=["security_admin"])
    for email in ("carol@example.com", "nobody@example.com", "sec@fintech.example"):
        ask(client, email)

    sent, unknown, staff_target = events("auth.password_reset_requested")
    assert (sent.outcome, sent.object_type, sent.object_id) == ("success", "accounts.user", str(customer.public_id))
    assert sent.payload["sent"] is True
    assert (unknown.outcome, unknown.object_id) == ("failure", "")
    assert unknown.payload == {"result": "no_account", "email_digest": email_digest("nobody@example.com")}
    assert (staff_target.outcome, staff_target.object_id) == ("denied", str(staff.public_id))
    assert staff_target.payload == {"result": "staff_account"}
    for event in AuditEvent.objects.all():
        recorded = json.dumps([event.payload, event.object_id, event.actor_user, event.actor_staff])
        for email in ("carol", "nobody", "sec@"):
            assert email not in recorded


# --- throttling --------------------------------------------------------------------------------------


def test_requests_for_one_email_are_throttled_from_any_address_whether_it_exists_or_not(customer, mailoutbox):
    for email in ("carol@example.com", "nobody@example.com"):
        statuses = [ask(Client(), email, address=f"203.0.113.{n}").status_code for n in range(1, 5)]
        assert statuses == [302, 302, 302, 429]

    refused = ask(Client(), "CAROL@example.com", address="203.0.113.99")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert "Too many password reset requests for this email address" in refused.content.decode()
    assert len(mailoutbox) == 3
    throttled = [e for e in events("auth.password_reset_requested") if e.payload.get("result") == "throttled"]
    assert [e.payload["scope"] for e in throttled] == ["email", "email"]  # one row per refusal period and email


def test_requests_from_one_address_are_throttled(settings, mailoutbox):
    settings.PASSWORD_RESET_REQUESTS_PER_ADDRESS = "5/1h"
    statuses = [ask(Client(), f"person{n}@example.com", address="192.0.2.7").status_code for n in range(7)]

    assert statuses == [302] * 5 + [429, 429]
    assert ask(Client(), "person0@example.com", address="192.0.2.8").status_code == 302  # another address
    # An IPv6 client holds its whole /64: moving within it does not help.
    v6 = [ask(Client(), f"v6-{n}@example.com", address=f"2001:db8:1:2::{n + 1}").status_code for n in range(6)]
    assert v6 == [302] * 5 + [429]


def test_redis_down_refuses_with_503_and_sends_nothing(client, customer, settings, mailoutbox):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    response = ask(client, customer.email)

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "Password reset is temporarily unavailable" in response.content.decode()
    assert mailoutbox == []
    assert events("auth.password_reset_requested") == []


# --- signed out everywhere -------------------------------------------------------------------------------


def test_a_completed_reset_ends_other_web_sessions_and_every_oauth_token(client, customer, mailoutbox):
    other_browser = Client()
    login = other_browser.post(
        "/accounts/login/", {"username": customer.email, "password": OLD_PASSWORD}, REMOTE_ADDR="198.51.100.30"
    )
    assert login.status_code == 302
    assert other_browser.get("/accounts/mfa/setup/").status_code == 200  # logged in
    apps = [mobile_client() for _ in range(3)]  # consent per app (a second request would be auto-approved)
    tokens = []
    for app in apps[:2]:  # two apps' logins: two refresh token families
        verifier, challenge = pkce_pair()
        code = obtain_code(other_browser, app, challenge)["code"]
        tokens.append((app, exchange_code(Client(), app, code, verifier).json()))
    _, unused_challenge = pkce_pair()
    obtain_code(other_browser, apps[2], unused_challenge)  # a code never exchanged
    assert Client().get("/v1/me", HTTP_AUTHORIZATION=f"Bearer {tokens[0][1]['access_token']}").status_code == 200

    ask(client, customer.email)
    set_password_via(client, link_in(mailoutbox[0]))

    after = other_browser.get("/accounts/mfa/setup/")
    assert after.status_code == 302
    assert after["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in other_browser.session
    assert not AccessToken.objects.filter(user=customer).exists()
    assert not RefreshToken.objects.filter(user=customer, revoked__isnull=True).exists()
    for app, issued in tokens:
        assert Client().get("/v1/me", HTTP_AUTHORIZATION=f"Bearer {issued['access_token']}").status_code == 401
        assert refresh(Client(), app, issued["refresh_token"]).status_code == 400
    (signed_out,) = events("auth.signed_out_everywhere")
    assert signed_out.object_id == str(customer.public_id)
    assert signed_out.payload == {
        "refresh_token_families": 2,
        "refresh_tokens": 2,
        "access_tokens": 2,
        "unexchanged_codes": 1,
    }
    (completed,) = events("auth.password_reset_completed")
    assert (completed.outcome, completed.actor_user, completed.object_id) == (
        "success",
        str(customer.public_id),
        str(customer.public_id),
    )
    login = other_browser.post(
        "/accounts/login/", {"username": customer.email, "password": NEW_PASSWORD}, REMOTE_ADDR="198.51.100.30"
    )
    assert login.status_code == 302  # the new password works


def test_a_used_token_is_refused_by_the_service_too(customer):
    token = default_token_generator.make_token(customer)
    customer_password_reset_complete(user=customer, token=token, password=NEW_PASSWORD)

    with pytest.raises(PasswordResetLinkInvalid):
        customer_password_reset_complete(user=customer, token=token, password="Another-Long-Passphrase-77")
    customer.refresh_from_db()
    assert customer.check_password(NEW_PASSWORD)


@pytest.mark.django_db(transaction=True)
def test_two_racing_submits_of_one_link_set_one_password():
    customer = customer_create(email="racer@example.com", password=OLD_PASSWORD)
    token = default_token_generator.make_token(customer)
    passwords = ["Racing-Walrus-Number-One", "Racing-Walrus-Number-Two"]
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def submit(password: str) -> None:
        try:
            user = User.objects.get(pk=customer.pk)
            barrier.wait()
            customer_password_reset_complete(user=user, token=token, password=password)
            outcomes[password] = "set"
        except PasswordResetLinkInvalid:
            outcomes[password] = "refused"
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(password,)) for password in passwords]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(outcomes.values()) == ["refused", "set"]
    (winner,) = [password for password, outcome in outcomes.items() if outcome == "set"]
    assert User.objects.get(pk=customer.pk).check_password(winner)
    assert AuditEvent.objects.filter(event_type="auth.password_reset_completed").count() == 1


# --- staff may only send the email ----------------------------------------------------------------------


@pytest.fixture
def security_admin():
    return staff_create(email=f"sec.{uuid.uuid4().hex[:8]}@fintech.example", password=None, roles=["security_admin"])


def admin_action(client, users: list[User]):
    return client.post(
        "/admin/accounts/user/",
        {"action": "password_reset_email_send", "_selected_action": [user.pk for user in users], "index": 0},
    )


def test_a_security_admin_sends_a_customer_the_reset_email_audited(customer, security_admin, mailoutbox):
    browser = Client()
    force_login_with_mfa(browser, security_admin)

    response = admin_action(browser, [customer])

    assert response.status_code == 302
    assert [message.to for message in mailoutbox] == [["carol@example.com"]]
    assert "support team sent you this link" in mailoutbox[0].body
    assert set_password_via(Client(), link_in(mailoutbox[0])).status_code == 302
    (triggered,) = events("auth.password_reset_triggered")
    assert (triggered.outcome, triggered.actor_staff, triggered.object_id) == (
        "success",
        str(security_admin.public_id),
        str(customer.public_id),
    )
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Sent a password reset email to 1 customer(s)."]


def test_the_admin_action_refuses_staff_targets(customer, security_admin, mailoutbox):
    colleague = staff_create(email="ops@fintech.example", password=OLD_PASSWORD, roles=["operations"])
    browser = Client()
    force_login_with_mfa(browser, security_admin)

    response = admin_action(browser, [colleague, security_admin])

    assert mailoutbox == []
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert len(messages) == 1
    assert messages[0].startswith("Refused 2 account(s): staff and inactive accounts are never reset by email")
    refused = events("auth.password_reset_triggered")
    assert sorted((e.outcome, e.object_id) for e in refused) == sorted(
        [("denied", str(colleague.public_id)), ("denied", str(security_admin.public_id))]
    )
    with pytest.raises(PasswordResetNotAllowed):
        customer_password_reset_send(user=colleague, actor=Actor(staff=str(security_admin.public_id)))


def test_the_admin_action_is_bounded_and_needs_change_user(customer, security_admin, mailoutbox):
    many = [customer_create(email=f"bulk{n}@example.com", password=None) for n in range(21)]
    browser = Client()
    force_login_with_mfa(browser, security_admin)

    response = admin_action(browser, many)

    assert mailoutbox == []
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Select at most 20 users at a time; nothing was sent."
    ]
    officer = staff_create(email="officer@fintech.example", password=None, roles=["compliance_officer"])
    officer_browser = Client()
    force_login_with_mfa(officer_browser, officer)
    admin_action(officer_browser, [customer])
    assert mailoutbox == []
    assert events("auth.password_reset_triggered") == []


def test_staff_sends_count_against_the_customers_email_limit(customer, security_admin, mailoutbox):
    actor = Actor(staff=str(security_admin.public_id))
    for _ in range(3):
        customer_password_reset_send(user=customer, actor=actor)
    browser = Client()
    force_login_with_mfa(browser, security_admin)

    response = admin_action(browser, [customer])

    assert len(mailoutbox) == 3
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Not sent: 1 rate-limited (too many recent emails), 0 refused by the mail server."
    ]


def test_no_staff_role_can_set_a_customers_password_in_the_admin(customer, security_admin):
    """Needs the UserAdmin rework of issue 11 (no password field, no password view for staff to use)."""
    browser = Client()
    force_login_with_mfa(browser, security_admin)

    page = browser.get(f"/admin/accounts/user/{customer.pk}/password/")
    attempt = browser.post(
        f"/admin/accounts/user/{customer.pk}/password/", {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    assert page.status_code in (403, 404)
    assert attempt.status_code in (403, 404)
    customer.refresh_from_db()
    assert customer.check_password(OLD_PASSWORD)
