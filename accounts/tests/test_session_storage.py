"""Web sessions are stored under a keyed hash of their key: a database row is no cookie (issue 12).

An insider holding only the web process's database login can read
`django_session`. These tests read it the same way and try the row's key as a
cookie, on the admin (past the second factor) and on the OAuth consent page.
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.test import Client
from oauth2_provider.models import Grant

from accounts.approvals.kinds_staff import staff_sessions_end
from accounts.services import customer_create, staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa
from accounts.tests.oauth_helpers import authorize_query, mobile_client, pkce_pair
from fintech.sessions import SessionStore, session_key_stored

PASSWORD = "correct horse battery staple"
LOGIN = "/accounts/login/"
PRIVATE = "/accounts/mfa/setup/"  # needs a logged-in user

pytestmark = [pytest.mark.usefixtures("isolated_throttle"), pytest.mark.django_db]


def cookie_of(client: Client) -> str:
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def browser_with_cookie(session_key: str) -> Client:
    browser = Client()
    browser.cookies[django_settings.SESSION_COOKIE_NAME] = session_key
    return browser


def rows_of(user) -> list[Session]:
    return [row for row in Session.objects.all() if row.get_decoded().get(SESSION_KEY) == str(user.pk)]


def test_the_row_of_a_logged_in_session_holds_a_keyed_hash_and_never_the_cookie(client):
    customer = customer_create(email="row.customer@example.com", password=PASSWORD)

    assert client.post(LOGIN, {"username": customer.email, "password": PASSWORD}).status_code == 302

    cookie = cookie_of(client)
    (row,) = rows_of(customer)
    assert row.session_key == session_key_stored(cookie) != cookie
    assert len(row.session_key) == 40
    assert not Session.objects.filter(session_key=cookie).exists()
    assert cookie not in row.session_data
    assert client.get(PRIVATE).status_code == 200  # the cookie itself still works


def test_a_rows_key_used_as_a_cookie_does_not_open_the_admin_past_the_second_factor():
    staff = staff_create(email="row.staff@fintech.example", password=None, roles=["operations"])
    staff_browser = Client()
    force_login_with_mfa(staff_browser, staff)
    assert staff_browser.get("/admin/").status_code == 200
    (row,) = rows_of(staff)

    thief = browser_with_cookie(row.session_key)
    response = thief.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert SESSION_KEY not in thief.session
    assert rows_of(staff) == [row]  # the staff member's session is untouched
    assert staff_browser.get("/admin/").status_code == 200


def test_a_rows_key_used_as_a_cookie_does_not_reach_the_oauth_consent_page(client):
    customer = customer_create(email="row.oauth@example.com", password=PASSWORD)
    app = mobile_client()
    client.force_login(customer)
    _, challenge = pkce_pair()
    query = authorize_query(app, challenge)
    assert client.get(f"/o/authorize/?{query}").status_code == 200
    (row,) = rows_of(customer)

    thief = browser_with_cookie(row.session_key)
    page = thief.get(f"/o/authorize/?{query}")
    posted = thief.post(f"/o/authorize/?{query}", {"allow": "Authorize"})

    assert page.status_code == 302 and page["Location"].startswith(LOGIN)
    assert posted.status_code in (302, 403) and "code=" not in posted.get("Location", "")
    assert not Grant.objects.exists()


def test_login_rotates_the_key_and_leaves_no_row_under_the_old_one(client):
    customer = customer_create(email="rotate@example.com", password=PASSWORD)
    anonymous = client.session
    anonymous["seen"] = True
    anonymous.save()
    before = cookie_of(client)
    assert Session.objects.filter(session_key=session_key_stored(before)).exists()

    assert client.post(LOGIN, {"username": customer.email, "password": PASSWORD}).status_code == 302

    after = cookie_of(client)
    assert after != before
    assert not Session.objects.filter(session_key=session_key_stored(before)).exists()
    assert [row.session_key for row in rows_of(customer)] == [session_key_stored(after)]
    assert browser_with_cookie(before).get(PRIVATE).status_code == 302  # the old key is dead


def test_logout_deletes_the_row(client):
    customer = customer_create(email="logout@example.com", password=PASSWORD)
    client.post(LOGIN, {"username": customer.email, "password": PASSWORD})
    cookie = cookie_of(client)

    assert client.post("/accounts/logout/").status_code == 302

    assert not Session.objects.filter(session_key=session_key_stored(cookie)).exists()
    assert rows_of(customer) == []
    assert browser_with_cookie(cookie).get(PRIVATE).status_code == 302


def test_the_store_finds_checks_and_deletes_by_the_cookie_key():
    store = SessionStore()
    store["kept"] = 1
    store.save()
    key = store.session_key

    assert SessionStore(key).load() == {"kept": 1}
    assert store.exists(key) and not store.exists(session_key_stored(key))
    assert SessionStore(session_key_stored(key)).load() == {}  # the row's key opens nothing
    SessionStore().delete(key)
    assert not Session.objects.exists()


def test_ending_a_staff_members_sessions_ends_theirs_only():
    staff = staff_create(email="ended.staff@fintech.example", password=None, roles=["operations"])
    colleague = staff_create(email="kept.staff@fintech.example", password=None, roles=["operations"])
    browsers = [Client(), Client()]
    for browser in browsers:
        force_login_with_mfa(browser, staff)
    colleague_browser = Client()
    force_login_with_mfa(colleague_browser, colleague)

    assert staff_sessions_end(staff) == 2

    assert rows_of(staff) == []
    assert all(browser.get("/admin/").status_code == 302 for browser in browsers)
    assert colleague_browser.get("/admin/").status_code == 200


def test_a_secret_rotation_keeps_sessions_while_the_old_secret_is_a_fallback(client, settings):
    customer = customer_create(email="rotation@example.com", password=PASSWORD)
    client.post(LOGIN, {"username": customer.email, "password": PASSWORD})
    cookie = cookie_of(client)
    old_secret = settings.SECRET_KEY

    settings.SECRET_KEY = "a-new-secret-" + "x" * 50
    settings.SECRET_KEY_FALLBACKS = [old_secret]
    assert client.get(PRIVATE).status_code == 200
    # Django cycles the key of a session whose auth hash matched only under a fallback; stored under the new secret.
    assert [row.session_key for row in rows_of(customer)] == [session_key_stored(cookie_of(client))]
    assert not Session.objects.filter(session_key__in=[session_key_stored(cookie, old_secret)]).exists()

    settings.SECRET_KEY = "a-newer-secret-" + "y" * 50
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get(PRIVATE).status_code == 302  # once out of the fallbacks, the session is lost


def test_a_row_found_under_a_fallback_secret_is_re_keyed_under_the_current_one(settings):
    old_secret = settings.SECRET_KEY
    store = SessionStore()
    store["kept"] = 1
    store.save()
    key = store.session_key
    settings.SECRET_KEY = "a-new-secret-" + "x" * 50
    settings.SECRET_KEY_FALLBACKS = [old_secret]

    loaded = SessionStore(key)
    assert loaded.load() == {"kept": 1}
    loaded["more"] = 2
    loaded.save()  # an update of the row: it must be found under the current secret's hash

    assert list(Session.objects.values_list("session_key", flat=True)) == [session_key_stored(key)]
    assert SessionStore(key).load() == {"kept": 1, "more": 2}


# --- as the runtime role ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_runtime_role_reads_the_rows_but_cannot_become_their_owner(runtime_connection):
    """Row keys as cookies; a staff session's data copied into, or its row renamed to, the insider's own row."""
    staff = staff_create(email="victim.staff@fintech.example", password=None, roles=["operations"])
    staff_browser = Client()
    force_login_with_mfa(staff_browser, staff)
    insider = customer_create(email="insider@example.com", password=PASSWORD)
    insider_browser = Client()
    assert insider_browser.post(LOGIN, {"username": insider.email, "password": PASSWORD}).status_code == 302
    staff_row, insider_row = rows_of(staff)[0].session_key, rows_of(insider)[0].session_key

    with runtime_connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == django_settings.DATABASE_RUNTIME_ROLES["default"]
        cursor.execute("SELECT session_key FROM django_session")
        stolen = [key for (key,) in cursor.fetchall()]
    assert sorted(stolen) == sorted([staff_row, insider_row])
    for key in stolen:
        assert browser_with_cookie(key).get("/admin/").status_code == 302

    with runtime_connection.cursor() as cursor:  # the staff member's signed data, under the insider's own key
        cursor.execute(
            "UPDATE django_session SET session_data = (SELECT session_data FROM django_session WHERE session_key = %s)"
            " WHERE session_key = %s",
            [staff_row, insider_row],
        )
    assert insider_browser.get("/admin/").status_code == 302
    assert SESSION_KEY not in insider_browser.session

    insider_browser = Client()
    assert insider_browser.post(LOGIN, {"username": insider.email, "password": PASSWORD}).status_code == 302
    (own_row,) = [row.session_key for row in rows_of(insider)]  # found by decoding session_data, as the insider can
    with runtime_connection.cursor() as cursor:  # the staff member's row itself, renamed to the insider's own key
        cursor.execute("DELETE FROM django_session WHERE session_key = %s", [own_row])
        cursor.execute("UPDATE django_session SET session_key = %s WHERE session_key = %s", [own_row, staff_row])
    assert insider_browser.get("/admin/").status_code == 302
    assert SESSION_KEY not in insider_browser.session
