"""Issue 12: a password hash written with the database login alone lets nobody in (accounts.password_macs).

The insider's move is a plain `UPDATE accounts_user SET password = ...` with a
hash of a password of their choosing, made as the runtime role, the way a
leaked DATABASE_URL would. Every password door refuses it (web login, so the
admin and OAuth's authorization step; operator commands) and the trail says so.
"""

from __future__ import annotations

import importlib
import io
import json
from types import SimpleNamespace

import pytest
from asgiref.sync import async_to_sync
from django.apps import apps
from django.conf import settings
from django.contrib.auth import aauthenticate, authenticate
from django.contrib.auth.hashers import make_password
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from oauth2_provider.models import Application

from accounts.api_keys.services import partner_api_key_issue
from accounts.models import PartnerApiKey, User
from accounts.password_macs import password_mac, password_mac_valid
from accounts.services import customer_create, staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa
from accounts.tests.oauth_helpers import exchange_code, mobile_client, obtain_code, pkce_pair
from accounts.tests.operator_helpers import operator_create, operator_stdin, totp_code_now
from audit.models import AuditEvent
from audit.services.events import Actor

pytestmark = pytest.mark.usefixtures("isolated_throttle")

PASSWORD = "correct horse battery staple"
CHOSEN = "the insider's own passphrase"
LOGIN = "/accounts/login/"
LOGIN_MFA = "/accounts/login/mfa/"
REVOKE = "partner_api_key_revoke"


def password_login(client, email: str, password: str, *, next_path: str = ""):
    data = {"username": email, "password": password, **({"next": next_path} if next_path else {})}
    return client.post(LOGIN, data, REMOTE_ADDR="198.51.100.30")


def stored(user: User) -> User:
    return User.objects.get(pk=user.pk)


def mac_refusals() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type="auth.password_mac_invalid").order_by("id"))


def api_key_issue() -> PartnerApiKey:
    application = Application.objects.create(
        name="Partner",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret="partner-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
        hash_client_secret=True,
    )
    key, _raw = partner_api_key_issue(
        application=application, name="payouts", scopes="accounts:read", expires_in_days=30, actor=Actor.system("t")
    )
    return key


def revoke(api_key: PartnerApiKey, stdin: io.StringIO) -> None:
    call_command(REVOKE, api_key.prefix, "--reason", "INC-7", stdin=stdin, stdout=io.StringIO(), stderr=io.StringIO())


# --- the application's own paths keep a valid MAC and still log in ------------------------------------


@pytest.mark.django_db
def test_every_way_the_application_sets_a_password_leaves_a_valid_mac():
    customer = customer_create(email="alice@example.com", password=PASSWORD)  # create_user: MAC after the INSERT
    assert password_mac_valid(stored(customer)) and stored(customer).password_mac == customer.password_mac
    nobody = customer_create(email="nobody@example.com", password=None)  # unusable
    assert password_mac_valid(stored(nobody))
    direct = User.objects.create(email="direct@example.com", password=make_password(PASSWORD))
    assert password_mac_valid(stored(direct))

    customer.set_password("another long passphrase")
    assert password_mac_valid(customer)  # in memory already
    customer.save(update_fields=["password"])  # Django's own way: the MAC is saved with it
    assert password_mac_valid(stored(customer)) and stored(customer).check_password("another long passphrase")

    staff = staff_create(email="ops@example.com", password=PASSWORD, roles=[])
    staff.set_unusable_password()
    staff.save(update_fields=["password"])  # what a second-factor reset does
    assert password_mac_valid(stored(staff)) and not stored(staff).has_usable_password()

    loaded = stored(customer)
    loaded.password = make_password("an invitation's hash")  # the invitation flow assigns a hash it made
    loaded.save(update_fields=["password"])
    assert password_mac_valid(stored(customer))


@pytest.mark.django_db
def test_createsuperuser_sets_a_valid_mac(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", PASSWORD)
    call_command("createsuperuser", interactive=False, email="root@example.com", stdout=io.StringIO())
    root = User.objects.get(email="root@example.com")
    assert root.is_superuser and password_mac_valid(root) and root.check_password(PASSWORD)


@pytest.mark.django_db
def test_the_hasher_upgrade_at_login_keeps_a_valid_mac(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    customer = customer_create(email="alice@example.com", password=PASSWORD)
    assert stored(customer).password.startswith("md5$")
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]

    assert authenticate(request=None, username="alice@example.com", password=PASSWORD) is not None

    upgraded = stored(customer)
    assert upgraded.password.startswith("pbkdf2_sha256$")  # Django re-hashed and saved it (update_fields)
    assert password_mac_valid(upgraded)
    assert authenticate(request=None, username="alice@example.com", password=PASSWORD) is not None
    assert mac_refusals() == []


@pytest.mark.django_db
def test_a_rewritten_old_hash_is_refused_not_upgraded(settings):
    """An insider's hash with a weak hasher must not get a fresh MAC from Django's upgrade."""
    customer = customer_create(email="alice@example.com", password=PASSWORD)
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    weak = make_password(CHOSEN, hasher="md5")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_user SET password = %s WHERE id = %s", [weak, customer.pk])

    assert authenticate(request=None, username="alice@example.com", password=CHOSEN) is None
    assert stored(customer).password == weak  # not upgraded, so not re-MAC'd
    assert not password_mac_valid(stored(customer))
    assert [e.object_id for e in mac_refusals()] == [str(customer.public_id)]


@pytest.mark.django_db
def test_a_customer_logs_in_with_their_password_and_authorizes_an_oauth_client(client):
    customer_create(email="alice@example.com", password=PASSWORD)
    app = mobile_client()

    assert password_login(client, "alice@example.com", PASSWORD).status_code == 302
    verifier, challenge = pkce_pair()
    code = obtain_code(client, app, challenge)["code"]
    tokens = exchange_code(client, app, code, verifier)

    assert tokens.status_code == 200 and tokens.json()["access_token"]
    assert mac_refusals() == []


@pytest.mark.django_db
def test_staff_log_into_the_admin_with_password_and_code(client):
    staff = staff_create(email="ops@example.com", password=PASSWORD, roles=["operations"])
    device = TOTPDevice.objects.create(user=staff, name="Authenticator app", confirmed=True)

    assert password_login(client, "ops@example.com", PASSWORD, next_path="/admin/")["Location"] == LOGIN_MFA
    assert client.post(LOGIN_MFA, {"otp_code": totp_code_now(device)})["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    helper = Client()
    force_login_with_mfa(helper, staff)  # the tests' shortcut still opens the admin
    assert helper.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_an_operator_command_authenticates_its_operator():
    api_key = api_key_issue()
    operator = operator_create(roles=["security_admin"])

    revoke(api_key, operator_stdin(operator))

    assert PartnerApiKey.objects.get(pk=api_key.pk).revoked_at is not None
    assert mac_refusals() == []


@pytest.mark.django_db
def test_a_mac_made_under_a_fallback_secret_still_verifies(settings):
    customer = customer_create(email="alice@example.com", password=PASSWORD)
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-secret-" + "x" * 50
    assert not password_mac_valid(stored(customer))
    settings.SECRET_KEY_FALLBACKS = [old]
    assert password_mac_valid(stored(customer))
    assert authenticate(request=None, username="alice@example.com", password=PASSWORD) is not None


@pytest.mark.django_db
def test_the_migration_gives_existing_users_their_mac():
    customer = customer_create(email="alice@example.com", password=PASSWORD)
    User.objects.filter(pk=customer.pk).update(password_mac="")  # as before the migration
    assert authenticate(request=None, username="alice@example.com", password=PASSWORD) is None

    migration = importlib.import_module("accounts.migrations.0017_user_password_mac")
    migration.mac_existing_passwords(apps, SimpleNamespace(connection=connection))

    assert password_mac_valid(stored(customer))
    assert authenticate(request=None, username="alice@example.com", password=PASSWORD) is not None


# --- a hash written with the database login alone -----------------------------------------------------


@pytest.mark.django_db
def test_a_hash_and_mac_copied_from_another_account_do_not_verify(client):
    insider = customer_create(email="insider@example.com", password=CHOSEN)
    victim = customer_create(email="victim@example.com", password=PASSWORD)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_user SET password = %s, password_mac = %s WHERE id = %s",
            [stored(insider).password, stored(insider).password_mac, victim.pk],
        )

    assert password_login(client, "victim@example.com", CHOSEN).status_code == 200
    assert "_auth_user_id" not in client.session
    assert [e.object_id for e in mac_refusals()] == [str(victim.public_id)]


@pytest.mark.django_db
def test_saving_a_user_whose_hash_was_rewritten_does_not_give_it_a_mac():
    customer = customer_create(email="alice@example.com", password=PASSWORD)
    loaded = stored(customer)  # an instance read before the rewrite, refreshed after it
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_user SET password = %s WHERE id = %s", [make_password(CHOSEN), customer.pk])

    loaded.refresh_from_db()
    loaded.save()
    after = stored(customer)
    after.is_active = True
    after.save()  # an ordinary full save, as the admin or a service does

    assert not password_mac_valid(stored(customer))
    assert authenticate(request=None, username="alice@example.com", password=CHOSEN) is None


@pytest.mark.django_db
def test_the_async_doors_check_the_mac_too():
    customer = customer_create(email="alice@example.com", password=PASSWORD)
    assert async_to_sync(aauthenticate)(request=None, username="alice@example.com", password=PASSWORD) is not None
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_user SET password = %s WHERE id = %s", [make_password(CHOSEN), customer.pk])

    assert async_to_sync(aauthenticate)(request=None, username="alice@example.com", password=CHOSEN) is None
    assert async_to_sync(stored(customer).acheck_password)(CHOSEN) is False
    assert len(mac_refusals()) == 2


@pytest.mark.django_db(transaction=True)
def test_a_hash_rewritten_by_the_runtime_role_is_refused_everywhere_and_recorded(runtime_connection):
    customer = customer_create(email="alice@example.com", password=PASSWORD)
    operator = operator_create(roles=["security_admin"])
    api_key = api_key_issue()
    chosen_hash = make_password(CHOSEN)
    with runtime_connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == settings.DATABASE_RUNTIME_ROLES["default"]
        for user in (customer, operator):
            cursor.execute("UPDATE accounts_user SET password = %s WHERE id = %s", [chosen_hash, user.pk])
            assert cursor.rowcount == 1

    # The web login (the customer's way to OAuth, the staff member's way to the admin).
    web = Client()
    assert password_login(web, "alice@example.com", CHOSEN).status_code == 200
    assert "_auth_user_id" not in web.session
    admin = Client()
    assert password_login(admin, operator.email, CHOSEN, next_path="/admin/").status_code == 200
    assert "_auth_user_id" not in admin.session and admin.get("/admin/").status_code == 302
    # An operator command, with the right second factor.
    with pytest.raises(CommandError):
        revoke(api_key, operator_stdin(operator, password=CHOSEN))
    assert PartnerApiKey.objects.get(pk=api_key.pk).revoked_at is None
    # Any other comparison.
    assert stored(customer).check_password(CHOSEN) is False

    refusals = mac_refusals()
    assert [(e.object_type, e.object_id, e.outcome) for e in refusals] == [
        ("accounts.user", str(customer.public_id), "denied"),
        ("accounts.user", str(operator.public_id), "denied"),
        ("accounts.user", str(operator.public_id), "denied"),
        ("accounts.user", str(customer.public_id), "denied"),
    ]
    assert [e.payload["lookup"] for e in refusals] == ["login", "login", "login", "check_password"]
    assert refusals[0].source_ip == "198.51.100.30"
    recorded = json.dumps([[e.payload, e.object_id] for e in AuditEvent.objects.all()])
    assert chosen_hash not in recorded and CHOSEN not in recorded
    assert stored(customer).password == chosen_hash  # never re-MAC'd by anything above
    assert not AuditEvent.objects.filter(event_type="auth.operator_authenticated").exists()

    # Only code holding the key makes it a password again (what a reset would do).
    User.objects.filter(pk=customer.pk).update(password_mac=password_mac(customer.pk, chosen_hash))
    assert password_login(Client(), "alice@example.com", CHOSEN).status_code == 302
