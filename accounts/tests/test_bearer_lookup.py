"""The bearer lookup (accounts/authentication.py): one hand-built query, prepared once per session."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import AccessToken, set_token_value

from accounts.authentication import bearer_token_find
from accounts.oauth.token_macs import access_token_macs_store
from accounts.services import customer_create
from accounts.tests.oauth_helpers import mobile_client


def issue(user, application) -> str:
    raw = secrets.token_urlsafe(32)
    token = AccessToken(
        user=user, application=application, scope="profile:read", expires=timezone.now() + timedelta(hours=1)
    )
    set_token_value(token, raw)
    token.save()
    access_token_macs_store([token])
    return raw


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_lookup_is_prepared_once_per_session_then_executed():
    application = mobile_client()
    alice = customer_create(email="alice@example.com", password=None)
    raw = issue(alice, application)
    connection.close()  # a fresh session: nothing prepared on it yet

    with CaptureQueriesContext(connection) as queries:
        first = bearer_token_find(raw)
        second = bearer_token_find(raw)

    statements = [query["sql"] for query in queries.captured_queries]
    assert [sql.split(" ")[0] for sql in statements] == ["PREPARE", "EXECUTE", "EXECUTE"]
    assert first.pk == second.pk == AccessToken.objects.get(user=alice).pk


@pytest.mark.django_db
def test_the_token_comes_with_its_user_client_and_customer_profile_and_no_decrypted_pii():
    application = mobile_client()
    alice = customer_create(email="alice@example.com", password=None)
    raw = issue(alice, application)

    token = bearer_token_find(raw)

    with CaptureQueriesContext(connection) as queries:
        assert token.user.public_id == alice.public_id
        assert token.application.client_id == application.client_id
        assert token.user.customer_profile.status == "active"
    assert queries.captured_queries == []
    assert {"full_name", "phone", "date_of_birth"} <= token.user.customer_profile.get_deferred_fields()


@pytest.mark.django_db
def test_a_user_without_a_customer_profile_has_none_and_an_unknown_token_is_none():
    from accounts.models import User

    application = mobile_client()
    staff = User.objects.create_user(email="staff@example.com", password=None)
    token = bearer_token_find(issue(staff, application))

    assert token.user == staff
    assert not hasattr(token.user, "customer_profile")
    assert bearer_token_find("no-such-token") is None
    assert bearer_token_find("") is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("reset", ["DEALLOCATE ALL", "DISCARD ALL"])
def test_a_session_that_lost_the_prepared_lookup_still_authenticates(reset):
    """A pooler's server reset (PgBouncer's `DISCARD ALL`) or a `DEALLOCATE` drops the prepared statement
    while the Python connection object lives on: the lookup must not fail on every request of that session."""
    application = mobile_client()
    alice = customer_create(email="alice@example.com", password=None)
    raw = issue(alice, application)
    connection.close()
    assert bearer_token_find(raw).user_id == alice.pk  # prepared on this session
    with connection.cursor() as cursor:
        cursor.execute(reset)

    assert bearer_token_find(raw).user_id == alice.pk
    assert bearer_token_find(raw).user_id == alice.pk  # and prepared again for the next ones
