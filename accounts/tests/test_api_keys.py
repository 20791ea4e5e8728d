"""Partner API keys: issued once, stored as a checksum, accepted only next to the same client's token."""

from __future__ import annotations

import base64
import logging
import threading
from datetime import timedelta
from io import StringIO
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, set_token_value

from accounts.api_keys.exceptions import (
    ApiKeyAlreadyRevoked,
    ApiKeyClientNotEligible,
    ApiKeyLifetimeInvalid,
    ApiKeyScopesInvalid,
)
from accounts.api_keys.keys import key_prefix
from accounts.api_keys.selectors import (
    partner_api_key_authenticate,
    partner_api_key_check,
    partner_api_key_last_used_touch,
)
from accounts.api_keys.services import partner_api_key_issue, partner_api_key_revoke
from accounts.models import PartnerApiKey
from accounts.oauth.token_macs import access_token_macs_store
from accounts.services import staff_create
from accounts.tests.mfa_helpers import force_login_with_mfa
from accounts.tests.operator_helpers import operator_create, operator_stdin
from audit.models import AuditEvent
from audit.services.events import Actor

WHOAMI = "/v1/partner/whoami"
PARTNER_SECRET = "partner-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
SYSTEM = Actor.system("test")


# --- Helpers ----------------------------------------------------------------------------


def confidential_client(name: str = "Partner") -> Application:
    return Application.objects.create(
        name=name,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=PARTNER_SECRET,
        hash_client_secret=True,
    )


def bearer_token(application: Application, scope: str = "accounts:read") -> str:
    """An access token as DOT issues it: hashed at rest, only the checksum stored."""
    raw = f"test-token-{application.client_id}-{scope.replace(' ', '-')}-{AccessToken.objects.count()}"
    token = AccessToken(application=application, user=None, scope=scope, expires=timezone.now() + timedelta(minutes=10))
    set_token_value(token, raw)
    token.save()
    access_token_macs_store([token])  # as the authorization server does when it issues one
    return raw


def issue(application: Application, scopes: str = "accounts:read", days: int = 90) -> tuple[PartnerApiKey, str]:
    return partner_api_key_issue(
        application=application, name="payouts server", scopes=scopes, expires_in_days=days, actor=SYSTEM
    )


def whoami(token: str | None, api_key: str | None, client: Client | None = None):
    headers = {}
    if token is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    if api_key is not None:
        headers["HTTP_X_API_KEY"] = api_key
    return (client or Client()).get(WHOAMI, **headers)


def denials() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type="auth.invalid_api_key").order_by("id"))


def key_updates(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith('UPDATE "accounts_partnerapikey"')]


def every_database_value() -> str:
    """Every row of every table of the default database, as text."""
    texts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT row_to_json(t)::text FROM {connection.ops.quote_name(table)} t")
            texts.extend(row[0] for row in cursor.fetchall())
    return "\n".join(texts)


def assert_refused(response, *, reason: str, prefix: str = "") -> AuditEvent:
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"] == 'Bearer realm="fintech"'
    assert response.json()["code"] == "invalid_api_key"
    event = denials()[-1]
    assert event.outcome == "denied"
    assert event.payload["reason"] == reason
    assert event.object_type == "accounts.partner_api_key"
    assert event.object_id == prefix
    return event


@pytest.fixture
def partner() -> Application:
    return confidential_client()


@pytest.fixture
def token(partner) -> str:
    return bearer_token(partner)


@pytest.fixture
def issued(partner) -> tuple[PartnerApiKey, str]:
    return issue(partner)


# --- The happy path ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_valid_key_with_a_token_of_the_same_client_is_accepted(partner, token, issued):
    api_key, raw_key = issued

    response = whoami(token, raw_key)

    assert response.status_code == 200
    assert response.json() == {
        "client_id": partner.client_id,
        "api_key_prefix": api_key.prefix,
        "scopes": ["accounts:read"],
    }
    assert denials() == []


@pytest.mark.django_db
def test_whoami_reports_the_scopes_both_credentials_hold(partner):
    token = bearer_token(partner, scope="accounts:read transfers:read")
    _, raw_key = issue(partner, scopes="accounts:read transfers:write")

    response = whoami(token, raw_key)

    assert response.status_code == 200
    assert response.json()["scopes"] == ["accounts:read"]


@pytest.mark.django_db
def test_a_token_from_the_token_endpoint_works_with_the_key(partner, issued):
    """The whole partner flow: client credentials at /o/token/, then the call with both credentials."""
    _, raw_key = issued
    basic = base64.b64encode(f"{partner.client_id}:{PARTNER_SECRET}".encode()).decode()

    token_response = Client().post(
        "/o/token/",
        data=urlencode({"grant_type": "client_credentials", "scope": "accounts:read"}),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    assert token_response.status_code == 200, token_response.content[:300]
    response = whoami(token_response.json()["access_token"], raw_key)

    assert response.status_code == 200
    assert response.json()["client_id"] == partner.client_id


@pytest.mark.django_db
def test_the_issued_key_has_the_documented_shape(partner, issued):
    api_key, raw_key = issued

    assert key_prefix(raw_key) == api_key.prefix
    assert len(raw_key) == len(api_key.prefix) + 1 + 43
    assert api_key.prefix.startswith("fk_live_") and len(api_key.prefix) == 16
    assert str(api_key) == api_key.prefix
    assert api_key.scopes == "accounts:read"
    assert api_key.created_by == "system"
    assert api_key.expires_at == api_key.created_at + timedelta(days=90)
    assert partner_api_key_authenticate(raw_key) == api_key
    event = AuditEvent.objects.get(event_type="api_key.issued")
    assert (event.actor_client, event.object_id) == ("system:test", api_key.prefix)
    assert event.payload["client_id"] == partner.client_id
    assert event.payload["scopes"] == ["accounts:read"]


# --- Refusals ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_call_without_the_key_is_refused(partner, token):
    response = whoami(token, None)

    event = assert_refused(response, reason="missing")
    assert event.actor_client == partner.client_id


@pytest.mark.django_db
def test_a_key_of_another_client_is_refused_and_its_owner_named_in_the_trail(partner, token):
    other = confidential_client("Other partner")
    other_key, other_raw_key = issue(other)

    response = whoami(token, other_raw_key)

    event = assert_refused(response, reason="other_client", prefix=other_key.prefix)
    assert event.actor_client == partner.client_id
    assert event.payload["key_client_id"] == other.client_id
    assert other_raw_key not in response.content.decode()
    assert PartnerApiKey.objects.get(pk=other_key.pk).last_used_at is None  # not a use


@pytest.mark.django_db
def test_an_expired_key_is_refused(token, issued):
    api_key, raw_key = issued
    PartnerApiKey.objects.filter(pk=api_key.pk).update(
        created_at=F("created_at") - timedelta(days=91), expires_at=F("expires_at") - timedelta(days=91)
    )

    assert_refused(whoami(token, raw_key), reason="expired", prefix=api_key.prefix)
    assert partner_api_key_authenticate(raw_key) is None


@pytest.mark.django_db
def test_a_revoked_key_is_refused(token, issued):
    api_key, raw_key = issued
    assert whoami(token, raw_key).status_code == 200

    partner_api_key_revoke(prefix=api_key.prefix, reason="INC-42 key leaked in a log", actor=SYSTEM)

    assert_refused(whoami(token, raw_key), reason="revoked", prefix=api_key.prefix)
    assert partner_api_key_authenticate(raw_key) is None


@pytest.mark.django_db
def test_an_unknown_key_is_refused_and_only_a_well_formed_prefix_recorded(token, issued):
    api_key, raw_key = issued
    forged = raw_key[:-4] + ("AAAA" if not raw_key.endswith("AAAA") else "BBBB")

    assert_refused(whoami(token, forged), reason="unknown", prefix=api_key.prefix)
    assert_refused(whoami(token, "fk_live_not-a-key-at-all"), reason="unknown", prefix="")
    assert_refused(whoami(token, raw_key + "x" * 500), reason="unknown", prefix="")
    assert partner_api_key_check(forged).api_key is None


@pytest.mark.django_db
def test_a_key_without_the_views_scope_is_refused_with_401(partner, token):
    """The key layer answers 401 invalid_api_key for every key problem, scopes included."""
    api_key, raw_key = issue(partner, scopes="transfers:read")

    event = assert_refused(whoami(token, raw_key), reason="scope", prefix=api_key.prefix)
    assert event.payload["missing_scopes"] == ["accounts:read"]


@pytest.mark.django_db
def test_a_token_without_the_views_scope_is_refused_with_403_before_the_key_is_looked_at(partner, issued):
    """The token layer answers first: RFC 6750 insufficient_scope, 403."""
    _, raw_key = issued
    token = bearer_token(partner, scope="transfers:read")

    response = whoami(token, raw_key)

    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]
    assert denials() == []


@pytest.mark.django_db
def test_a_key_alone_is_not_enough(issued):
    _, raw_key = issued

    response = whoami(None, raw_key)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


# --- Secrets stay secret ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_raw_key_is_stored_and_logged_nowhere(partner, token, caplog):
    caplog.set_level(logging.DEBUG)
    api_key, raw_key = issue(partner)
    secret_part = raw_key.removeprefix(api_key.prefix + "_")
    other = confidential_client("Other partner")

    responses = [
        whoami(token, raw_key),  # accepted
        whoami(bearer_token(other), raw_key),  # other_client
        whoami(bearer_token(partner, scope="transfers:read"), raw_key),  # 403 at the token layer
        whoami(token, raw_key[:-1]),  # unknown
    ]
    partner_api_key_revoke(prefix=api_key.prefix, reason="rotation", actor=SYSTEM)
    responses.append(whoami(token, raw_key))  # revoked

    assert [r.status_code for r in responses] == [200, 401, 403, 401, 401]
    stored = every_database_value()
    assert api_key.key_checksum in stored  # the search does see the key's row
    assert secret_part not in stored
    assert raw_key[:-1] not in stored
    logged = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    assert secret_part not in logged
    assert raw_key[:-1] not in logged
    assert all(secret_part not in r.content.decode() for r in responses)
    assert len(denials()) == 3


# --- last_used_at -------------------------------------------------------------------------


@pytest.mark.django_db
def test_last_used_at_is_written_once_a_minute_however_many_calls(token, issued):
    api_key, raw_key = issued

    with CaptureQueriesContext(connection) as queries:
        responses = [whoami(token, raw_key) for _ in range(5)]

    assert [r.status_code for r in responses] == [200] * 5
    assert len(key_updates(queries.captured_queries)) == 1
    first_use = PartnerApiKey.objects.get(pk=api_key.pk).last_used_at
    assert first_use is not None

    # A minute and a bit later the next call writes again.
    PartnerApiKey.objects.filter(pk=api_key.pk).update(last_used_at=F("last_used_at") - timedelta(seconds=61))
    with CaptureQueriesContext(connection) as queries:
        assert whoami(token, raw_key).status_code == 200
    assert len(key_updates(queries.captured_queries)) == 1
    assert PartnerApiKey.objects.get(pk=api_key.pk).last_used_at > first_use - timedelta(seconds=61)


@pytest.mark.django_db
def test_a_request_holding_a_stale_copy_of_the_key_does_not_write_again(issued):
    """The interleaving the threaded test provokes, made deterministic: both read, then both touch."""
    _, raw_key = issued
    first = partner_api_key_authenticate(raw_key)
    second = partner_api_key_authenticate(raw_key)

    assert partner_api_key_last_used_touch(api_key=first) is True
    with CaptureQueriesContext(connection) as queries:
        assert partner_api_key_last_used_touch(api_key=second) is False

    assert len(key_updates(queries.captured_queries)) == 1  # it asked; the condition said no
    assert PartnerApiKey.objects.get(pk=first.pk).last_used_at == first.last_used_at


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_calls_all_succeed_and_write_last_used_at_once():
    partner = confidential_client()
    token = bearer_token(partner)
    api_key, raw_key = issue(partner)
    threads_count = 8
    barrier = threading.Barrier(threads_count)
    lock = threading.Lock()
    statuses: list[int] = []
    rows_updated: list[int] = []

    def count_key_updates(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith('UPDATE "accounts_partnerapikey"'):
            with lock:
                rows_updated.append(context["cursor"].rowcount)
        return result

    def call() -> None:
        try:
            client = Client()
            barrier.wait(timeout=10)
            with connection.execute_wrapper(count_key_updates):
                status = whoami(token, raw_key, client).status_code
        except Exception as exc:
            status = -1
            logging.getLogger(__name__).error("thread failed: %r", exc)
        finally:
            connection.close()
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=call) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert statuses == [200] * threads_count
    assert sum(rows_updated) == 1  # one conditional UPDATE won; any others matched no row
    assert len(rows_updated) <= threads_count
    assert PartnerApiKey.objects.get(pk=api_key.pk).last_used_at is not None


# --- Issuing and revoking -------------------------------------------------------------------


@pytest.mark.django_db
def test_keys_are_refused_to_public_clients_and_to_other_grants():
    public = Application.objects.create(
        name="Mobile",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://app.example/cb",
    )
    confidential_code = Application.objects.create(
        name="Web",
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://web.example/cb",
        client_secret=PARTNER_SECRET,
    )

    for application in (public, confidential_code):
        with pytest.raises(ApiKeyClientNotEligible):
            issue(application)

    assert not PartnerApiKey.objects.exists()
    assert not AuditEvent.objects.filter(event_type="api_key.issued").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("scopes", "days", "error"), [
    ("accounts:read root", 90, ApiKeyScopesInvalid),
    ("", 90, ApiKeyScopesInvalid),
    ("accounts:read", 0, ApiKeyLifetimeInvalid),
    ("accounts:read", 366, ApiKeyLifetimeInvalid),
])  # fmt: skip
def test_bad_scopes_and_lifetimes_are_refused_and_nothing_written(partner, scopes, days, error):
    with pytest.raises(error):
        issue(partner, scopes=scopes, days=days)

    assert not PartnerApiKey.objects.exists()


@pytest.mark.django_db
def test_the_database_refuses_rows_the_service_would_refuse(partner, issued):
    api_key, _ = issued

    with pytest.raises(IntegrityError), transaction.atomic():
        PartnerApiKey.objects.filter(pk=api_key.pk).update(expires_at=F("created_at") + timedelta(days=366))
    with pytest.raises(IntegrityError), transaction.atomic():
        PartnerApiKey.objects.filter(pk=api_key.pk).update(expires_at=F("created_at"))
    with pytest.raises(IntegrityError), transaction.atomic():
        PartnerApiKey.objects.filter(pk=api_key.pk).update(revoked_at=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        PartnerApiKey.objects.filter(pk=api_key.pk).update(scopes="")


@pytest.mark.django_db
def test_revoking_twice_keeps_the_first_reason(issued):
    api_key, _ = issued
    partner_api_key_revoke(prefix=api_key.prefix, reason="first", actor=SYSTEM)

    with pytest.raises(ApiKeyAlreadyRevoked):
        partner_api_key_revoke(prefix=api_key.prefix, reason="second", actor=SYSTEM)

    assert PartnerApiKey.objects.get(pk=api_key.pk).revoked_reason == "first"
    assert AuditEvent.objects.filter(event_type="api_key.revoked").count() == 1


@pytest.mark.django_db
def test_the_issue_command_prints_the_key_once_and_audits(partner, token):
    stdout, stderr = StringIO(), StringIO()
    operator = operator_create(roles=["security_admin"])

    call_command(
        "partner_api_key_issue", partner.client_id, "--name", "ledger sync",
        "--scopes", "accounts:read transfers:write", "--expires-days", "30", stdout=stdout, stderr=stderr,
        stdin=operator_stdin(operator),
    )  # fmt: skip

    raw_key = stdout.getvalue().strip()
    api_key = PartnerApiKey.objects.get()
    assert key_prefix(raw_key) == api_key.prefix
    assert "only time the key is shown" in stderr.getvalue()
    assert raw_key not in stderr.getvalue()
    assert api_key.scopes == "accounts:read transfers:write"
    assert api_key.expires_at == api_key.created_at + timedelta(days=30)
    assert whoami(token, raw_key).status_code == 200
    event = AuditEvent.objects.get(event_type="api_key.issued")
    assert (event.actor_staff, event.actor_client, event.object_id) == (str(operator.public_id), "", api_key.prefix)


@pytest.mark.django_db
@pytest.mark.parametrize(("arguments", "message"), [
    (["--scopes", "accounts:read money:print"], "api_key_scopes_invalid"),
    (["--scopes", "accounts:read", "--expires-days", "400"], "api_key_lifetime_invalid"),
])  # fmt: skip
def test_the_issue_command_refuses_unknown_scopes_and_long_lifetimes(partner, arguments, message):
    stdin = operator_stdin(operator_create(roles=["security_admin"]))
    with pytest.raises(CommandError, match=message):
        call_command(
            "partner_api_key_issue", partner.client_id, "--name", "x", *arguments, stdout=StringIO(), stdin=stdin
        )

    assert not PartnerApiKey.objects.exists()


@pytest.mark.django_db
def test_the_issue_command_refuses_public_and_unknown_clients():
    public = Application.objects.create(
        name="Mobile",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://app.example/cb",
    )

    stdin = operator_stdin(operator_create(roles=["security_admin"]))
    with pytest.raises(CommandError, match="api_key_client_not_eligible"):
        call_command("partner_api_key_issue", public.client_id, "--name", "x", "--scopes", "accounts:read", stdin=stdin)
    with pytest.raises(CommandError, match="no OAuth client"):
        call_command("partner_api_key_issue", "nobody", "--name", "x", "--scopes", "accounts:read")

    assert not PartnerApiKey.objects.exists()


@pytest.mark.django_db
def test_the_revoke_command_needs_a_reason_and_audits(token, issued):
    api_key, raw_key = issued
    operator = operator_create(roles=["security_admin"])

    with pytest.raises(CommandError, match="--reason"):
        call_command("partner_api_key_revoke", api_key.prefix, stdin=operator_stdin(operator))
    with pytest.raises(CommandError, match="api_key_revoke_reason_required"):
        call_command("partner_api_key_revoke", api_key.prefix, "--reason", "   ", stdin=operator_stdin(operator))
    assert PartnerApiKey.objects.get(pk=api_key.pk).revoked_at is None

    stdout = StringIO()
    call_command(
        "partner_api_key_revoke", api_key.prefix, "--reason", "partner offboarded", stdout=stdout,
        stdin=operator_stdin(operator),
    )  # fmt: skip

    revoked = PartnerApiKey.objects.get(pk=api_key.pk)
    assert revoked.revoked_reason == "partner offboarded"
    assert f"revoked {api_key.prefix}" in stdout.getvalue()
    event = AuditEvent.objects.get(event_type="api_key.revoked")
    assert (event.actor_staff, event.actor_client) == (str(operator.public_id), "")
    assert event.object_id == api_key.prefix
    assert event.payload["reason"] == "partner offboarded"
    assert whoami(token, raw_key).status_code == 401


@pytest.mark.django_db
def test_the_revoke_command_refuses_an_unknown_prefix():
    stdin = operator_stdin(operator_create(roles=["security_admin"]))
    with pytest.raises(CommandError, match="api_key_not_found"):
        call_command("partner_api_key_revoke", "fk_live_aaaaaaaa", "--reason", "x", stdin=stdin)


# --- Admin ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_staff_revoke_selected_keys_in_the_admin_with_a_recorded_reason(partner, issued):
    api_key, _ = issued
    already, _ = issue(partner)
    partner_api_key_revoke(prefix=already.prefix, reason="earlier", actor=SYSTEM)
    officer = staff_create(email="sec@fintech.example", password=None, roles=[])
    officer.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="accounts", codename__in=["view_partnerapikey", "revoke_partnerapikey"]
        )
    )
    client = Client()
    force_login_with_mfa(client, officer)
    changelist = reverse("admin:accounts_partnerapikey_changelist")

    listing = client.get(changelist)
    response = client.post(changelist, {"action": "revoke_selected", "_selected_action": [api_key.pk, already.pk]})

    assert listing.status_code == 200
    assert api_key.prefix in listing.content.decode()
    assert response.status_code == 302
    revoked = PartnerApiKey.objects.get(pk=api_key.pk)
    assert revoked.revoked_reason == f"revoked in admin by {officer.public_id}"
    assert PartnerApiKey.objects.get(pk=already.pk).revoked_reason == "earlier"
    event = AuditEvent.objects.filter(event_type="api_key.revoked").latest("id")
    assert (event.actor_staff, event.object_id) == (str(officer.public_id), api_key.prefix)


@pytest.mark.django_db
def test_the_admin_cannot_add_change_or_delete_keys_and_hides_revoke_without_the_permission(issued):
    api_key, _ = issued
    viewer = staff_create(email="view@fintech.example", password=None, roles=[])
    viewer.user_permissions.add(
        Permission.objects.get(content_type__app_label="accounts", codename="view_partnerapikey")
    )
    client = Client()
    force_login_with_mfa(client, viewer)
    changelist = reverse("admin:accounts_partnerapikey_changelist")

    assert client.get(reverse("admin:accounts_partnerapikey_add")).status_code == 403
    assert client.get(reverse("admin:accounts_partnerapikey_delete", args=[api_key.pk])).status_code == 403
    assert "revoke_selected" not in client.get(changelist).content.decode()
    client.post(changelist, {"action": "revoke_selected", "_selected_action": [api_key.pk]})
    assert PartnerApiKey.objects.get(pk=api_key.pk).revoked_at is None
